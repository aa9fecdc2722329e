"""Padded sequences in Keras: `keras.layers.SimpleRNN(return_sequences=True, return_state=True,
go_backwards=..., zero_output_for_mask=True)` called with a step mask, a `keras.layers.Dense`
readout, Keras's loss functions.

Parameters as in rnn.py (one bias b = b_ih + b_hh, its gradient reported under both names),
X (T, N, D) batch-major. The mask is Keras's own variable-length mechanism: `mask[n, t] =
t < L_n`; at a masked step the layer keeps the state and, with `zero_output_for_mask`, outputs 0
(keras.src.backend.jax.rnn), so a length of 0 gives h_n = h0 (zero_length "allow").
`go_backwards` reverses the time axis, padding and mask included: the padded steps come first
and carry h0, as the reference's reversed sequences do, and the outputs come back in reversed
order (flipped here). The readout's outputs at padded steps are set to 0 with the mask and the
loss of readout "every" is the mean over the valid steps (`keras.losses.mean_squared_error`,
`sparse_categorical_crossentropy(from_logits=True)` per row, masked). The lengths are data:
one compiled program per (spec, shapes, dtype).
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from conformance.backend import Outcome, Unsupported
from conformance.case import Arrays, Case
from conformance.components.rnn_varlen.properties import adapter_arguments
from conformance_keras import enable_float64
from conformance_keras.mlp import loss_object
from conformance_keras.rnn import from_keras, to_keras
from refimpl.varlen import VarLenRNNSpec

enable_float64()

CONVENTIONS: dict[str, object] = {
    "zero_length": "allow",  # a fully masked sequence keeps its initial state
}


class Network:
    def __init__(self, spec: VarLenRNNSpec) -> None:
        dtype = spec.dtype
        self.rnn = keras.layers.SimpleRNN(
            spec.hidden_size,
            activation=spec.nonlinearity,
            use_bias=True,
            return_sequences=True,
            return_state=True,
            go_backwards=spec.reverse,
            zero_output_for_mask=True,
            dtype=dtype,
        )
        self.rnn.build((None, None, spec.input_size))
        self.readout = keras.layers.Dense(spec.output_size, dtype=dtype)
        self.readout.build((None, spec.hidden_size))
        self.loss = loss_object(spec.loss, dtype)
        names = {"kernel": "K", "recurrent_kernel": "R", "bias": "b"}
        self.rnn_names = [names[v.name] for v in self.rnn.trainable_variables]
        self.rnn_state = [v.value for v in self.rnn.non_trainable_variables]
        self.readout_names = [
            {"kernel": "K_out", "bias": "b_out"}[v.name] for v in self.readout.trainable_variables
        ]


@cache
def network(spec: VarLenRNNSpec) -> Network:
    return Network(spec)


def _outputs(spec: VarLenRNNSpec, targets: Any, lengths: Any, params: Any, X: Any, h0: Any) -> Any:
    net = network(spec)
    T = X.shape[0]
    mask = jnp.arange(T)[:, None] < lengths[None, :]  # (T, N)
    (H_bm, h_n), _ = net.rnn.stateless_call(
        [params[n] for n in net.rnn_names],
        net.rnn_state,
        jnp.swapaxes(X, 0, 1),
        initial_state=[h0],
        mask=mask.T,
    )
    if spec.reverse:
        H_bm = H_bm[:, ::-1]  # go_backwards returns the outputs in the order it read them
    H = jnp.swapaxes(H_bm, 0, 1)  # (T, N, H), 0 at the padded steps
    readout = [params[n] for n in net.readout_names]
    if spec.readout == "last":
        Y, _ = net.readout.stateless_call(readout, [], h_n)
        return Y, H, h_n, net.loss(targets, Y)
    Y, _ = net.readout.stateless_call(readout, [], H)
    Y = jnp.where(mask[..., None], Y, 0)
    if spec.loss == "mse":
        per_row = keras.losses.mean_squared_error(targets, Y)
    else:
        per_row = keras.losses.sparse_categorical_crossentropy(targets, Y, from_logits=True)
    loss = jnp.sum(jnp.where(mask, per_row, 0)) / jnp.sum(mask)
    return Y, H, h_n, loss


@partial(jax.jit, static_argnums=0)
def _evaluate(
    spec: VarLenRNNSpec, params: Any, X: Any, h0: Any, lengths: Any, targets: Any, cot: Any, tangents: Any
) -> Any:
    f = partial(_outputs, spec, targets, lengths)
    outputs, pullback = jax.vjp(f, params, X, h0)
    # Keras may return float32 from a float64 network (known issue keras-float64-computed-in-float32)
    cot = tuple(c.astype(o.dtype) for c, o in zip(cot, outputs, strict=True))
    _, tangents_out = jax.jvp(f, (params, X, h0), tangents)
    return outputs, pullback(cot), tangents_out


def _call(case: Case, cotangents: Arrays | None, tangents: Arrays | None) -> Any:
    params, x, cot, d = adapter_arguments(case, cotangents, tangents)
    T = x["X"].shape[0]
    if int(np.max(x["lengths"], initial=0)) > T:  # varlen-length-beyond-t: no Keras call to ask
        raise Unsupported(
            f"keras: SimpleRNN takes a mask of the T = {T} steps, not lengths; a length past T"
            f" ({int(np.max(x['lengths']))}) has no mask, so Keras never sees it"
        )
    t = (to_keras(d), jax.device_put(d["X"]), jax.device_put(d["h0"]))
    return _evaluate(
        case.spec,
        to_keras(params),
        *jax.device_put((x["X"], x["h0"], x["lengths"].astype(np.int32), x["targets"], tuple(cot))),
        t,
    )


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    (Y, H, h_n, loss), (d_params, dX, dh0), _ = _call(case, cotangents, None)
    outputs = {k: np.asarray(v, np.float64) for k, v in {"Y": Y, "H": H, "h_n": h_n, "loss": loss}.items()}
    if not cotangents:
        return Outcome(outputs, {}, {})
    grads = {**from_keras(d_params), "X": np.asarray(dX, np.float64), "h0": np.asarray(dh0, np.float64)}
    return Outcome(outputs, grads, {})


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    """jax.jvp along tangents for every parameter, X and h0 (b_ih and b_hh both move the one bias)."""
    _, _, (dY, _, _, dloss) = _call(case, None, tangents)
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}
