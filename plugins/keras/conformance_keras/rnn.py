"""The Elman RNN in Keras: `keras.layers.SimpleRNN` and a `keras.layers.Dense` readout.

SimpleRNN (keras 3, layers/rnn/simple_rnn.py) computes h' = f(x K + b + h R), one bias,
batch-major (N, T, D), from `initial_state` (zeros if omitted). The reference maps in as

    kernel = W_ihᵀ (D, H),  recurrent_kernel = W_hhᵀ (H, H),  bias = b_ih + b_hh,
    readout kernel = W_outᵀ (H, C), readout bias = b_out,  X (T, N, D) -> (N, T, D),

and the one bias gradient ∂L/∂b is reported under both "b_ih" and "b_hh" (each of
the reference's two biases has the gradient of their sum). `return_sequences=True`
gives every h_t; readout "last" reads h_T, "every" each h_t (Y back to (T, N, C)).
Losses as in mlp.py: `MeanSquaredError` (mean over all elements) and
`SparseCategoricalCrossentropy(from_logits=True)` (mean over the T·N rows).

Truncated BPTT with window k (refimpl/bptt.py): the layer runs over chunks of k steps,
each chunk from the last state of the one before, passed through `jax.lax.stop_gradient`
(what torch's `.detach()` does): the forward is unchanged and no gradient crosses a
boundary. The window is static: one program per (spec, T, N, dtype).
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
from conformance_keras.mlp import loss_object
from refimpl.rnn import RNNSpec

enable_float64()

CONVENTIONS: dict[str, object] = {}  # the one-bias mapping is in the parameters, not the spec


class Network:
    def __init__(self, spec: RNNSpec) -> None:
        dtype = spec.dtype
        self.rnn = keras.layers.SimpleRNN(
            spec.hidden_size, activation=spec.nonlinearity, use_bias=True, return_sequences=True, dtype=dtype
        )
        self.rnn.build((None, None, spec.input_size))
        self.readout = keras.layers.Dense(spec.output_size, dtype=dtype)
        self.readout.build((None, spec.hidden_size))
        self.loss = loss_object(spec.loss, dtype)
        names = {"kernel": "K", "recurrent_kernel": "R", "bias": "b"}
        self.rnn_names = [names[v.name] for v in self.rnn.trainable_variables]
        self.rnn_state = [v.value for v in self.rnn.non_trainable_variables]  # its dropout seed
        self.readout_names = [
            {"kernel": "K_out", "bias": "b_out"}[v.name] for v in self.readout.trainable_variables
        ]


@cache
def network(spec: RNNSpec) -> Network:
    return Network(spec)


def _outputs(spec: RNNSpec, targets: Any, params: Any, X: Any, h0: Any) -> Any:
    """(Y, loss) for X (T, N, D) time-major, chunk by chunk for truncated BPTT."""
    net = network(spec)
    T = X.shape[0]
    k = T if spec.truncation is None else spec.truncation
    rnn_vars = [params[n] for n in net.rnn_names]
    h, states = h0, []
    for start in range(0, T, k):
        if start > 0:
            h = jax.lax.stop_gradient(h)  # truncated BPTT: nothing flows back across the boundary
        chunk = jnp.swapaxes(X[start : start + k], 0, 1)  # (N, k, D), batch-major
        seq, _ = net.rnn.stateless_call(rnn_vars, net.rnn_state, chunk, initial_state=[h])
        states.append(seq)
        h = seq[:, -1]
    H_all = jnp.concatenate(states, axis=1)  # (N, T, H)
    read = H_all[:, -1] if spec.readout == "last" else H_all
    Y, _ = net.readout.stateless_call([params[n] for n in net.readout_names], [], read)
    if spec.readout == "every":
        Y = jnp.swapaxes(Y, 0, 1)  # (T, N, C), the reference's layout
    return Y, net.loss(targets, Y)


def to_keras(params: Arrays) -> dict[str, jax.Array]:
    """On the device by `jax.device_put`, which compiles nothing (an eager jnp.asarray compiles a
    program per shape)."""
    keras_params = {
        "K": params["W_ih"].T,
        "R": params["W_hh"].T,
        "b": params["b_ih"] + params["b_hh"],
        "K_out": params["W_out"].T,
        "b_out": params["b_out"],
    }
    return jax.device_put(keras_params)


def from_keras(grads: dict[str, Any]) -> Arrays:
    g = {k: np.asarray(v, np.float64) for k, v in grads.items()}
    return {
        "W_ih": g["K"].T,
        "W_hh": g["R"].T,
        "b_ih": g["b"],
        "b_hh": g["b"].copy(),
        "W_out": g["K_out"].T,
        "b_out": g["b_out"],
    }


@partial(jax.jit, static_argnums=0)
def _vjp(spec: RNNSpec, params: Any, X: Any, h0: Any, targets: Any, cot_Y: Any, cot_loss: Any) -> Any:
    (Y, loss), pullback = jax.vjp(partial(_outputs, spec, targets), params, X, h0)
    # Keras may return float32 from a float64 network (known issue keras-float64-computed-in-float32)
    return Y, loss, pullback((cot_Y.astype(Y.dtype), cot_loss.astype(loss.dtype)))


@partial(jax.jit, static_argnums=0)
def _jvp(
    spec: RNNSpec, params: Any, X: Any, h0: Any, targets: Any, t_params: Any, t_X: Any, t_h0: Any
) -> Any:
    return jax.jvp(partial(_outputs, spec, targets), (params, X, h0), (t_params, t_X, t_h0))[1]


def _prepare(case: Case) -> tuple[RNNSpec, dict[str, jax.Array], dict[str, jax.Array]]:
    spec: RNNSpec = case.spec
    params = to_keras(cast_floats(case.params, spec.dtype))
    inputs = jax.device_put(cast_floats(case.inputs, spec.dtype))
    return spec, params, inputs


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    spec, params, t = _prepare(case)
    cot = cast_floats(cotangents or {}, spec.dtype)
    Y_shape = case.inputs["dY"].shape
    cot_Y = jax.device_put(cot["Y"] if "Y" in cot else np.zeros(Y_shape, spec.dtype))
    cot_loss = jax.device_put(np.asarray(cot.get("loss", 0.0), dtype=spec.dtype))
    with on_path(case):  # meta "path" "eager": the layers op by op (conformance.paths)
        Y, loss, (d_params, dX, dh0) = _vjp(spec, params, t["X"], t["h0"], t["targets"], cot_Y, cot_loss)
    outputs = {"Y": np.asarray(Y, np.float64), "loss": np.asarray(loss, np.float64)}
    if not cotangents:
        return Outcome(outputs, {}, {})
    grads = {**from_keras(d_params), "X": np.asarray(dX, np.float64), "h0": np.asarray(dh0, np.float64)}
    return Outcome(outputs, grads, {})


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    """jax.jvp along tangents for every parameter, X and h0 (b_ih and b_hh both move the one bias)."""
    spec, params, t = _prepare(case)
    d = cast_floats(tangents, spec.dtype)
    t_X, t_h0 = jax.device_put((d["X"], d["h0"]))
    dY, dloss = _jvp(spec, params, t["X"], t["h0"], t["targets"], to_keras(d), t_X, t_h0)
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}
