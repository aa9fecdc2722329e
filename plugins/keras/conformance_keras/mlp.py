"""The MLP in Keras: `keras.layers.Dense`, Keras's activation layers and losses.

Each layer runs through `Layer.stateless_call(trainable, non_trainable, x)`, Keras's
documented way to use its layers as pure functions on the JAX backend, and JAX
differentiates the whole (`jax.vjp`, `jax.jvp`) under `jax.jit`, compiled once per
spec, mode and shape; the path "eager" (conformance.paths) runs the same under
`jax.disable_jit()`, op by op. Every layer and the loss are built with `dtype=spec.dtype`
(Keras's default policy would compute in float32).

Layout: `Dense` computes y = x K + b with a kernel K of shape (in, out), so the
reference's W (out, in) goes in as K = Wᵀ and ∂L/∂W comes back as (∂L/∂K)ᵀ.
Activations: `Activation("tanh" | "sigmoid" | "relu" | "linear" | "gelu" | "selu" | "silu" |
"softplus")`, `LeakyReLU(negative_slope)`, `ELU(alpha)` and, for "gelu_tanh",
`Activation(keras.activations.gelu with approximate=True)`: `keras.activations.gelu` defaults
to the exact form (`keras.ops.gelu` to the approximation). Losses, both with Keras's default reduction
"sum_over_batch_size": `MeanSquaredError` (the mean over the last axis, then over
rows: the mean over all elements) and `SparseCategoricalCrossentropy(from_logits=True)`
(the mean over rows).

With spec.batchnorm a `BatchNormalization` follows each hidden Dense (the component
"mlp_bn", mlp_bn.py); this module's `run` takes specs without. A zero added to each
Zˡ (the Dense output) carries δˡ = ∂L/∂Zˡ out as its gradient ("Z1", ...).
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.frameworks.jax_paths import on_path
from conformance.frameworks.jax_paths import paths as paths
from conformance_keras import enable_float64
from refimpl.mlp import MLPSpec

enable_float64()

CONVENTIONS: dict[str, object] = {
    # keras.layers.LeakyReLU -> keras.ops.leaky_relu -> jax.nn.leaky_relu: where(x >= 0, x, slope x)
    "leaky_kink": "one",
    "elu_kink": "negative",  # ELU, "selu" -> keras.ops.elu, selu -> jax.nn.elu, selu
    "softplus_beta": 1.0,  # "softplus" -> keras.ops.softplus -> jax.nn.softplus: logaddexp(x, 0),
    "softplus_threshold": None,  # no β, no threshold
}

# Keras variable name -> reference name (with the layer number appended)
REFERENCE_NAMES = {
    "kernel": "W",
    "bias": "b",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
TRANSPOSED = ("W",)  # Dense kernels: K = Wᵀ


def activation_layer(name: str, spec: MLPSpec) -> keras.layers.Layer:
    dtype = spec.dtype
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=spec.slope, dtype=dtype)
    if name == "elu":
        return keras.layers.ELU(alpha=spec.elu_alpha, dtype=dtype)
    if name == "gelu_tanh":
        return keras.layers.Activation(partial(keras.activations.gelu, approximate=True), dtype=dtype)
    return keras.layers.Activation("linear" if name == "identity" else name, dtype=dtype)


def loss_object(loss: str, dtype: str) -> keras.losses.Loss:
    if loss == "mse":
        return keras.losses.MeanSquaredError(dtype=dtype)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)


class Network:
    """The Keras layers of one spec, each built, and how their variables map to the reference's."""

    def __init__(self, spec: MLPSpec) -> None:
        dtype, depth = spec.dtype, len(spec.sizes) - 1
        normalized = set(range(1, depth)) if spec.batchnorm else set()
        self.depth = depth
        self.layers: list[tuple[int, keras.layers.Layer]] = []  # (layer number l, layer)
        for l in range(1, depth + 1):
            dense = keras.layers.Dense(spec.sizes[l], use_bias=l not in normalized, dtype=dtype)
            dense.build((None, spec.sizes[l - 1]))
            self.layers.append((l, dense))
            if l in normalized:
                norm = keras.layers.BatchNormalization(
                    momentum=spec.bn_momentum, epsilon=spec.bn_eps, dtype=dtype
                )
                norm.build((None, spec.sizes[l]))
                self.layers.append((l, norm))
            activation = spec.hidden_activation if l < depth else spec.output_activation
            self.layers.append((l, activation_layer(activation, spec)))
        self.loss = loss_object(spec.loss, dtype)

    @staticmethod
    def names(l: int, variables: list[Any]) -> list[str]:
        return [f"{REFERENCE_NAMES[v.name]}{l}" for v in variables]

    def trainable_names(self) -> list[str]:
        return [n for l, layer in self.layers for n in self.names(l, layer.trainable_variables)]

    def state_names(self) -> list[str]:
        return [n for l, layer in self.layers for n in self.names(l, layer.non_trainable_variables)]

    def forward(
        self, params: dict[str, Any], state: dict[str, Any], X: Any, taps: dict[str, Any], train: bool
    ) -> tuple[Any, dict[str, Any]]:
        """(Y, new state) through every layer's stateless_call; taps[f"Z{l}"] is added to Zˡ."""
        new_state = {}
        for l, layer in self.layers:
            trainable = [params[n] for n in self.names(l, layer.trainable_variables)]
            stateful = self.names(l, layer.non_trainable_variables)
            mode = {"training": train} if isinstance(layer, keras.layers.BatchNormalization) else {}
            X, updated = layer.stateless_call(trainable, [state[n] for n in stateful], X, **mode)
            new_state.update(zip(stateful, updated, strict=True))
            if isinstance(layer, keras.layers.Dense):
                X = X + taps[f"Z{l}"]
        return X, new_state


@cache
def network(spec: MLPSpec) -> Network:
    return Network(spec)


def to_keras(params: Arrays) -> dict[str, jax.Array]:
    """Reference parameters in Keras's layout (kernels transposed), on the device: `jax.device_put`
    compiles nothing, where an eager `jnp.asarray` or `jnp.zeros` compiles a program per shape."""
    return {k: jax.device_put(v.T if k.rstrip("0123456789") in TRANSPOSED else v) for k, v in params.items()}


def from_keras(arrays: dict[str, Any]) -> Arrays:
    return {
        k: np.asarray(v, np.float64).T if k.rstrip("0123456789") in TRANSPOSED else np.asarray(v, np.float64)
        for k, v in arrays.items()
    }


def _outputs(spec: MLPSpec, train: bool, targets: Any, state: Any, params: Any, X: Any, taps: Any) -> Any:
    net = network(spec)
    Y, new_state = net.forward(params, state, X, taps, train)
    return (Y, net.loss(targets, Y)), new_state


@partial(jax.jit, static_argnums=(0, 1))
def _vjp(
    spec: MLPSpec,
    train: bool,
    params: Any,
    state: Any,
    X: Any,
    taps: Any,
    targets: Any,
    cot_Y: Any,
    cot_loss: Any,
) -> Any:
    (Y, loss), pullback, new_state = jax.vjp(
        partial(_outputs, spec, train, targets, state), params, X, taps, has_aux=True
    )
    # Keras may return float32 from a float64 network (known issue keras-float64-computed-in-float32):
    # the cotangents take the dtype of what came out
    return Y, loss, new_state, pullback((cot_Y.astype(Y.dtype), cot_loss.astype(loss.dtype)))


@partial(jax.jit, static_argnums=(0, 1))
def _jvp(
    spec: MLPSpec,
    train: bool,
    params: Any,
    state: Any,
    X: Any,
    taps: Any,
    targets: Any,
    t_params: Any,
    t_X: Any,
) -> Any:
    zero = jax.tree.map(jnp.zeros_like, taps)
    _, tangents, _ = jax.jvp(
        partial(_outputs, spec, train, targets, state), (params, X, taps), (t_params, t_X, zero), has_aux=True
    )
    return tangents


def check_spec(spec: MLPSpec, *, batchnorm: bool) -> None:
    if spec.batchnorm != batchnorm:
        expected = "with" if batchnorm else "without"
        raise ValueError(
            f"batchnorm: this adapter runs specs {expected} batch norm, received batchnorm={spec.batchnorm}"
        )
    used = {spec.hidden_activation, spec.output_activation}
    if "leaky_relu" in used and spec.leaky_kink != CONVENTIONS["leaky_kink"]:
        raise ValueError(f"leaky_kink: keras implements 'one', received {spec.leaky_kink!r}")
    if used & {"elu", "selu"} and spec.elu_kink != CONVENTIONS["elu_kink"]:
        raise ValueError(f"elu_kink: keras implements 'negative', received {spec.elu_kink!r}")
    if "softplus" in used and (spec.softplus_beta, spec.softplus_threshold) != (1.0, None):
        raise ValueError(
            "softplus_beta, softplus_threshold: keras's softplus implements (1.0, None),"
            f" received {(spec.softplus_beta, spec.softplus_threshold)}"
        )


def prepare(
    case: Case,
) -> tuple[MLPSpec, dict[str, Any], dict[str, Any], jax.Array, dict[str, Any], jax.Array]:
    """(spec, parameters, state, X, zero taps, targets) as JAX arrays in spec.dtype."""
    spec: MLPSpec = case.spec
    inputs = cast_floats(case.inputs, spec.dtype)
    X = jax.device_put(inputs["X"])
    params = to_keras(cast_floats(case.params, spec.dtype))
    state = jax.device_put(cast_floats(case.state, spec.dtype))
    taps = {f"Z{l}": np.zeros((X.shape[0], spec.sizes[l]), spec.dtype) for l in range(1, len(spec.sizes))}
    return spec, params, state, X, jax.device_put(taps), jax.device_put(inputs["targets"])


def run_network(case: Case, cotangents: Arrays | None, *, deltas: bool) -> Outcome:
    """Outputs, new state and (with cotangents) gradients, δˡ as "Zˡ" too when deltas."""
    spec, params, state, X, taps, targets = prepare(case)
    cot = cast_floats(cotangents or {}, spec.dtype)
    Y_shape = (X.shape[0], spec.sizes[-1])
    cot_Y = jax.device_put(cot["Y"] if "Y" in cot else np.zeros(Y_shape, spec.dtype))
    cot_loss = jax.device_put(np.asarray(cot.get("loss", 0.0), dtype=spec.dtype))
    with on_path(case):  # meta "path" "eager": the layers op by op (conformance.paths)
        Y, loss, new_state, (d_params, dX, d_taps) = _vjp(
            spec, case.train, params, state, X, taps, targets, cot_Y, cot_loss
        )
    outputs = {"Y": np.asarray(Y, np.float64), "loss": np.asarray(loss, np.float64)}
    new = {k: np.asarray(v, np.float64) for k, v in new_state.items()}
    if not cotangents:
        return Outcome(outputs, {}, new)
    grads = {**from_keras(d_params), "X": np.asarray(dX, np.float64)}
    if deltas:
        grads.update({k: np.asarray(v, np.float64) for k, v in d_taps.items()})
    return Outcome(outputs, grads, new)


def jvp_network(case: Case, tangents: Arrays) -> Arrays:
    spec, params, state, X, taps, targets = prepare(case)
    t = cast_floats(tangents, spec.dtype)
    t_params = to_keras({k: t[k] for k in case.params})
    dY, dloss = _jvp(spec, case.train, params, state, X, taps, targets, t_params, jax.device_put(t["X"]))
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    check_spec(case.spec, batchnorm=False)
    return run_network(case, cotangents, deltas=False)


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    check_spec(case.spec, batchnorm=False)
    return jvp_network(case, tangents)
