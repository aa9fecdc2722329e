"""The batch-normalized MLP in JAX: `flax.linen.Dense` -> `flax.linen.BatchNorm` -> activation.

Variables: "params" (Dense kernels Wᵀ and biases, BatchNorm "scale" γ and "bias"
β), "batch_stats" (BatchNorm "mean" and "var", the running statistics) and
"perturbations" (zeros added to every Zˡ by `Module.perturb`, whose gradient is
δˡ = ∂L/∂Zˡ, reported as "Z1", ...). Training mode applies the model with
`use_running_average=False` and `mutable=["batch_stats"]` and reads the new
running statistics from the returned collection; eval mode uses them and
returns them unchanged. Compiled functions are cached per spec, mode and
variance formula (static) and shape.

`use_fast_variance`: flax's default (True) computes σ² = E[x²] - E[x]², which
cancels when a feature's mean is far larger than its spread; the reference
computes E[(x - μ)²]. case.meta["bn_variance"] chooses: "two-pass"
(use_fast_variance=False, the computation the reference models, and what a
case without the key runs: even a batch of two rows with |x₁ + x₂| >> |x₁ - x₂|
shows the cancellation in float32), "fast" (True) or "default" (flax's own
default, True in the flax versions the suite supports). The property
bn-ill-conditioned runs "default" on inputs of mean 1e4 and names the
difference (known_issues.toml: flax-batchnorm-fast-variance).
"""

from __future__ import annotations

from dataclasses import fields
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from conformance.backend import Outcome, cast_floats, require_conventions
from conformance.case import Arrays, Case
from conformance.components.mlp import jax_adapter as mlp
from conformance.frameworks.jax import enable_float64
from refimpl.mlp import MLPSpec

enable_float64()  # float64 cases need jax_enable_x64; float32 ones stay float32 (explicit dtypes)

# flax.linen.BatchNorm (flax/linen/normalization.py): ra = momentum ra + (1 - momentum) batch,
# momentum 0.99, the biased batch variance in both the normalization and the running
# average, and no error for a batch of one (σ² = 0).
CONVENTIONS: dict[str, object] = {
    **mlp.CONVENTIONS,
    "bn_momentum": 0.99,
    "bn_momentum_convention": "flax",
    "bn_running_var": "biased",
    "bn_eps": 1e-5,
    "bn_single_example": "allow",
}
_FIXED = ("bn_momentum_convention", "bn_running_var", "bn_single_example")
FLAX_FAST_VARIANCE = bool(next(f.default for f in fields(nn.BatchNorm)
                               if f.name == "use_fast_variance"))  # True in flax 0.10 to 0.12


default_init = mlp.default_init  # FlaxMLP builds the batch norms too


def check_conventions(spec: MLPSpec) -> None:
    mlp.check_conventions(spec, batchnorm=True)
    require_conventions("flax", spec, CONVENTIONS, _FIXED)


VARIANCE = {"two-pass": False, "fast": True, "default": FLAX_FAST_VARIANCE}


def fast_variance(case: Case) -> bool:
    """The use_fast_variance a case runs with (meta["bn_variance"], default "two-pass")."""
    choice = case.meta.get("bn_variance", "two-pass")
    if choice not in VARIANCE:
        raise ValueError(f"meta['bn_variance']: expected one of {sorted(VARIANCE)},"
                         f" received {choice!r}")
    return VARIANCE[choice]


def to_variables(spec: MLPSpec, params: Arrays, N: int) -> dict[str, Any]:
    """"params" (Dense and BatchNorm layers) and zero "perturbations" for a batch of N rows."""
    variables = mlp.to_variables(spec, params)
    layers = dict(variables["params"])
    for l in mlp.normalized_layers(spec):
        layers[f"BatchNorm_{l}"] = {"scale": jnp.asarray(params[f"gamma{l}"]),
                                    "bias": jnp.asarray(params[f"beta{l}"])}
    zeros = {f"Z{l}": jnp.zeros((N, width), spec.dtype) for l, width in enumerate(spec.sizes[1:], 1)}
    return {"params": layers, "perturbations": zeros}


def to_batch_stats(spec: MLPSpec, state: Arrays) -> dict[str, Any]:
    return {f"BatchNorm_{l}": {"mean": jnp.asarray(state[f"running_mean{l}"]),
                               "var": jnp.asarray(state[f"running_var{l}"])}
            for l in mlp.normalized_layers(spec)}


def from_batch_stats(spec: MLPSpec, stats: dict[str, Any]) -> Arrays:
    state = {}
    for l in mlp.normalized_layers(spec):
        state[f"running_mean{l}"] = np.asarray(stats[f"BatchNorm_{l}"]["mean"], np.float64)
        state[f"running_var{l}"] = np.asarray(stats[f"BatchNorm_{l}"]["var"], np.float64)
    return state


def params_from_variables(spec: MLPSpec, variables: dict[str, Any]) -> Arrays:
    """W, b (kernels transposed back) and γ, β (flax's BatchNorm scale and bias), by reference name."""
    params = mlp.from_variables(spec, variables)
    for l in mlp.normalized_layers(spec):
        layer = variables["params"][f"BatchNorm_{l}"]
        params[f"gamma{l}"] = np.asarray(layer["scale"], np.float64)
        params[f"beta{l}"] = np.asarray(layer["bias"], np.float64)
    return params


def from_variables(spec: MLPSpec, variables: dict[str, Any]) -> Arrays:
    """Gradients: W, b, γ, β and δˡ from the perturbations."""
    grads = params_from_variables(spec, variables)
    for l in range(1, len(spec.sizes)):
        grads[f"Z{l}"] = np.asarray(variables["perturbations"][f"Z{l}"], np.float64)
    return grads


def _outputs(spec: MLPSpec, train: bool, fast: bool, targets: Any, stats: Any,
             variables: Any, X: Any) -> Any:
    """((Y, loss), new batch_stats)."""
    model = mlp.FlaxMLP(spec, train, fast)
    full = {**variables, "batch_stats": stats}
    if train:
        Y, updates = model.apply(full, X, mutable=["batch_stats"])
        stats = updates["batch_stats"]
    else:
        Y = model.apply(full, X)
    return (Y, mlp.loss_of(spec, Y, targets)), stats


@partial(jax.jit, static_argnums=(0, 1, 2))
def _vjp(spec: MLPSpec, train: bool, fast: bool, variables: Any, stats: Any, X: Any, targets: Any,
         cot_Y: Any, cot_loss: Any) -> Any:
    (Y, loss), pullback, new_stats = jax.vjp(
        partial(_outputs, spec, train, fast, targets, stats), variables, X, has_aux=True)
    d_variables, dX = pullback((cot_Y, cot_loss))
    return Y, loss, new_stats, d_variables, dX


@partial(jax.jit, static_argnums=(0, 1, 2))
def _jvp(spec: MLPSpec, train: bool, fast: bool, variables: Any, stats: Any, X: Any, targets: Any,
         t_vars: Any, t_X: Any) -> Any:
    _, tangents_out, _ = jax.jvp(partial(_outputs, spec, train, fast, targets, stats),
                                 (variables, X), (t_vars, t_X), has_aux=True)
    return tangents_out


def _prepare(case: Case) -> tuple[MLPSpec, Any, Any, jax.Array, jax.Array]:
    spec: MLPSpec = case.spec
    check_conventions(spec)
    params = cast_floats(case.params, spec.dtype)
    inputs = cast_floats(case.inputs, spec.dtype)
    stats = to_batch_stats(spec, cast_floats(case.state, spec.dtype))
    X = jnp.asarray(inputs["X"])
    return spec, to_variables(spec, params, X.shape[0]), stats, X, jnp.asarray(inputs["targets"])


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    spec, variables, stats, X, targets = _prepare(case)
    cot = cast_floats(cotangents or {}, spec.dtype)
    dtype = jnp.dtype(spec.dtype)
    cot_Y = jnp.asarray(cot["Y"]) if "Y" in cot else jnp.zeros((X.shape[0], spec.sizes[-1]), dtype)
    cot_loss = jnp.asarray(cot.get("loss", np.zeros((), spec.dtype)), dtype=dtype)
    Y, loss, new_stats, d_variables, dX = _vjp(spec, case.train, fast_variance(case), variables,
                                               stats, X, targets, cot_Y, cot_loss)
    outputs = {"Y": np.asarray(Y, np.float64), "loss": np.asarray(loss, np.float64)}
    state = from_batch_stats(spec, new_stats)
    if not cotangents:
        return Outcome(outputs, {}, state)
    grads = from_variables(spec, d_variables)
    grads["X"] = np.asarray(dX, np.float64)
    return Outcome(outputs, grads, state)


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    spec, variables, stats, X, targets = _prepare(case)
    t = cast_floats(tangents, spec.dtype)
    t_vars = to_variables(spec, t, X.shape[0])
    dY, dloss = _jvp(spec, case.train, fast_variance(case), variables, stats, X, targets, t_vars,
                     jnp.asarray(t["X"]))
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}
