"""Training trajectories in JAX: `jax.value_and_grad`, `optax.chain(clip, optax.sgd(lr))`, `apply_updates`.

The networks are the adapters' own (FlaxMLP: nn.Dense layers and, with batch
norm, nn.BatchNorm in training mode, flax's default use_fast_variance, its
"batch_stats" collection mutable and carried from step to step as the state)
and, for the RNN, flax's nn.RNN over nn.SimpleCell (batch-major) and an
nn.Dense readout, with the reference's parameters mapped in (kernels
transposed; SimpleCell's one bias b = b_ih + b_hh on its input Dense "i"). One jitted step per
(network spec, clipping kind), static, and shapes; the learning rate and the
threshold are traced, weakly typed Python floats, as optax receives them. The
pre-clip norm reported is `optax.tree.norm(grads)`, the function
clip_by_global_norm calls. flax trains the one bias b, so the reference runs
with rnn_biases="one" (b_hh frozen) and the final b_ih is reported as b - b_hh⁰.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.mlp import jax_adapter as jax_mlp
from conformance.components.mlp_bn import jax_adapter as jax_mlp_bn
from conformance.components.trajectory.reference import MLP_CONVENTIONS, TrajectorySpec, batches
from conformance.frameworks.jax import enable_float64
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec

enable_float64()  # float64 cases need jax_enable_x64; float32 ones stay float32 (explicit dtypes)

CONVENTIONS: dict[str, object] = {
    **jax_mlp_bn.CONVENTIONS,  # leaky_relu'(0) and flax BatchNorm's running statistics
    "convention": "optax",  # clip_by_global_norm: g if n < M else (g / n) · M
    "norm_type": 2.0,  # L2 only
    "rnn_biases": "one",  # SimpleCell: one bias on the input Dense
}


def optimizer(clip_kind: str, lr: Any, threshold: Any) -> optax.GradientTransformation:
    sgd = optax.sgd(lr)
    if clip_kind == "global_norm":
        return optax.chain(optax.clip_by_global_norm(threshold), sgd)
    if clip_kind == "value":
        return optax.chain(optax.clip(threshold), sgd)
    return sgd


RNN_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


def rnn_loss(network: RNNSpec, variables: Any, batch: dict[str, jax.Array]) -> jax.Array:
    """nn.RNN(nn.SimpleCell) from h0 over X (T, N, D), time-major in, batch-major inside."""
    dtype = jnp.dtype(network.dtype)
    cell = nn.SimpleCell(
        network.hidden_size,
        activation_fn=RNN_ACTIVATIONS[network.nonlinearity],
        dtype=dtype,
        param_dtype=dtype,
    )
    # Module.apply returns (output, variables) only under mutable=...: here the output alone
    H_bm = cast(
        jax.Array, nn.RNN(cell).apply(variables["rnn"], batch["X"].swapaxes(0, 1), initial_carry=batch["h0"])
    )  # (N, T, H)
    dense = nn.Dense(network.output_size, dtype=dtype, param_dtype=dtype)
    if network.readout == "last":
        Y = cast(jax.Array, dense.apply(variables["readout"], H_bm[:, -1]))  # (N, C)
    else:  # (T, N, C), as the targets
        Y = cast(jax.Array, dense.apply(variables["readout"], H_bm)).swapaxes(0, 1)
    if network.loss == "mse":
        return optax.squared_error(Y, batch["targets"]).mean()
    rows = Y.reshape(-1, network.output_size)
    return optax.softmax_cross_entropy_with_integer_labels(rows, batch["targets"].reshape(-1)).mean()


def rnn_variables(params: Arrays) -> dict[str, Any]:
    b = params["b_ih"] + params["b_hh"]  # SimpleCell's one bias, in the dtype
    cell = {"i": {"kernel": params["W_ih"].T, "bias": b}, "h": {"kernel": params["W_hh"].T}}
    readout = {"kernel": params["W_out"].T, "bias": params["b_out"]}
    # jax.device_put compiles nothing (an eager jnp.asarray compiles a program per shape)
    return jax.device_put({"rnn": {"params": {"cell": cell}}, "readout": {"params": readout}})


def rnn_params(variables: dict[str, Any], b_hh: np.ndarray) -> Arrays:
    """The reference's names; b_ih = b - b_hh⁰ in the dtype (b_hh is held fixed)."""
    cell, readout = variables["rnn"]["params"]["cell"], variables["readout"]["params"]
    return {
        "W_ih": np.asarray(cell["i"]["kernel"], np.float64).T,
        "W_hh": np.asarray(cell["h"]["kernel"], np.float64).T,
        "b_ih": (np.asarray(cell["i"]["bias"]) - b_hh).astype(np.float64),
        "b_hh": b_hh.astype(np.float64),
        "W_out": np.asarray(readout["kernel"], np.float64).T,
        "b_out": np.asarray(readout["bias"], np.float64),
    }


def loss_of(network: MLPSpec | RNNSpec, variables: Any, stats: Any, batch: dict[str, jax.Array]) -> Any:
    """(loss, new batch_stats) of one training batch."""
    if isinstance(network, RNNSpec):
        return rnn_loss(network, variables, batch), stats
    model = jax_mlp.FlaxMLP(network, train=True, fast_variance=jax_mlp_bn.FLAX_FAST_VARIANCE)
    if network.batchnorm:
        Y, updates = model.apply({**variables, "batch_stats": stats}, batch["X"], mutable=["batch_stats"])
        stats = updates["batch_stats"]
    else:
        Y = model.apply(variables, batch["X"])
    return jax_mlp.loss_of(network, Y, batch["targets"]), stats


@partial(jax.jit, static_argnums=(0, 1))
def _step(
    network: Any,
    clip_kind: str,
    variables: Any,
    stats: Any,
    opt_state: Any,
    batch: Any,
    lr: Any,
    threshold: Any,
) -> Any:
    value_and_grad = jax.value_and_grad(partial(loss_of, network), has_aux=True)
    (loss, stats), grads = value_and_grad(variables, stats, batch)
    updates, opt_state = optimizer(clip_kind, lr, threshold).update(grads, opt_state, variables)
    return optax.apply_updates(variables, updates), stats, opt_state, loss, optax.tree.norm(grads)


def mlp_variables(network: MLPSpec, params: Arrays) -> dict[str, Any]:
    """{"params": Dense kernels and biases, BatchNorm scale γ and bias β}."""
    layers = dict(jax_mlp.to_variables(network, params)["params"])
    for l in jax_mlp.normalized_layers(network):
        layers[f"BatchNorm_{l}"] = jax.device_put({"scale": params[f"gamma{l}"], "bias": params[f"beta{l}"]})
    return {"params": layers}


def network_of(spec: TrajectorySpec) -> MLPSpec | RNNSpec:
    """spec.network in spec.dtype under the conventions the trajectory sets (flax's: CONVENTIONS),
    read from the fields here, not through the reference's TrajectorySpec.network_spec."""
    if isinstance(spec.network, RNNSpec):
        return replace(spec.network, dtype=spec.dtype)
    fixed = {k: getattr(spec, k) for k in MLP_CONVENTIONS if getattr(spec, k) is not None}
    return replace(spec.network, dtype=spec.dtype, **fixed)


def check_biases(spec: TrajectorySpec) -> None:
    if isinstance(spec.network, RNNSpec) and spec.rnn_biases != "one":
        raise ValueError(f"rnn_biases: flax's SimpleCell trains one bias, received {spec.rnn_biases!r}")


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    spec: TrajectorySpec = case.spec
    network = network_of(spec)
    if spec.convention != "optax" or spec.norm_type != 2.0:
        raise ValueError(
            f"convention, norm_type: optax implements 'optax', 2.0, received"
            f" {spec.convention!r}, {spec.norm_type}"
        )
    check_biases(spec)
    params = cast_floats(case.params, spec.dtype)
    stats: Any = {}
    if isinstance(network, MLPSpec):
        (jax_mlp_bn if network.batchnorm else jax_mlp).check_conventions(network)
        variables = mlp_variables(network, params)
        stats = jax_mlp_bn.to_batch_stats(network, cast_floats(case.state, spec.dtype))
    else:
        variables = rnn_variables(params)
    threshold = {"global_norm": spec.max_norm, "value": spec.clip_value}.get(spec.clip_kind, 0.0)
    opt_state = optimizer(spec.clip_kind, spec.lr, threshold).init(variables)
    losses, norms = [], []
    for step in batches(case):
        batch = jax.device_put(cast_floats(step, spec.dtype))
        variables, stats, opt_state, loss, norm = _step(
            network, spec.clip_kind, variables, stats, opt_state, batch, spec.lr, threshold
        )
        losses.append(float(loss))
        norms.append(float(norm))
    outputs = {"loss": np.array(losses, dtype=np.float64)}
    if spec.clip_kind == "global_norm":
        outputs["norm"] = np.array(norms, dtype=np.float64)
    state: Arrays = {}
    if isinstance(network, MLPSpec):
        final = jax_mlp_bn.params_from_variables(network, variables)
        state = jax_mlp_bn.from_batch_stats(network, stats)
    else:
        final = rnn_params(variables, params["b_hh"])
    outputs.update({f"final/{k}": v for k, v in final.items()})
    return Outcome(outputs, {}, state)
