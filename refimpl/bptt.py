"""Truncated backpropagation through time with window k, chunk by chunk.

Definition. The T steps are split into chunks of k consecutive steps,
c = 0, 1, ..., m: steps ck+1 .. min((c+1)k, T), array indices [ck, min((c+1)k, T));
the last chunk may be shorter. The forward pass is the ordinary one: chunk c starts
from s_c, the last hidden state of chunk c - 1 (s_0 = h0). The backward pass holds
every boundary state s_c, c >= 1, constant (torch: `h = h.detach()` at each chunk
boundary; jax: `lax.stop_gradient`): the result is the exact gradient of the surrogate

    L̃(θ, X, h0) = loss(Y computed chunk by chunk from s_0 = h0 and the constants s_1..s_m)

at the point where the constants equal the forward run's boundary states. Hence

* ∂L̃/∂h0 holds only the paths inside chunk 0;
* ∂L̃/∂x_t holds only the paths from x_t to the outputs of its own chunk;
* ∂L̃/∂θ = Σ_c (gradient of the loss terms of chunk c, backpropagated inside chunk c);
* readout "every": the loss term of step t (weight 1/(T·N·C) for mse, 1/(T·N) for
  cross-entropy, as in the full mean) feeds the chunk holding t; readout "last":
  only the final chunk has a loss term, so every other chunk contributes zero.

With k >= T there is one chunk and the result is full BPTT, bit for bit.

Memory. The driver runs forward over one chunk keeping its caches, backward over the
same chunk, then drops the caches and continues from the chunk's last hidden state:
caches of at most two chunks, O(k N H), are alive at any time, never O(T N H). Only
what is returned grows with T: ∂L/∂X (T, N, D).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refimpl import rnn
from refimpl._validate import describe, raise_if_overflowed, require_array, require_int, require_real
from refimpl.rnn import (
    RECURRENT_KEYS,
    RNNSpec,
    readout_backward,
    readout_forward,
    readout_loss,
    rnn_sequence_backward,
    rnn_sequence_forward,
)

Array = NDArray[Any]

# (start, stop, Y_chunk) -> (the chunk's share of the scalar, ∂/∂Y_chunk). Y_chunk is
# (stop - start, N, C) for readout "every" and (N, C) for "last" (final chunk only).
OutputGrad = Callable[[int, int, Array], tuple[float, Array]]


def truncated_bptt(
    spec: RNNSpec,
    params: dict[str, Array],
    X: Array,
    h0: Array | None,
    k: int,
    output_grad: OutputGrad,
) -> tuple[float, dict[str, Array]]:
    """The scalar Σ_c (chunk shares) and its truncated gradient: params keys, "X", "h0".

    Window k >= 1 (any k, whatever spec.truncation says); h0 = None means zeros;
    `output_grad(start, stop, Y_c)` returns a real share and ∂/∂Y_c shaped like Y_c.
    """
    h0 = rnn.check_inputs(spec, params, X, h0)
    k = require_int("k", k)
    if not callable(output_grad):
        raise TypeError(
            f"output_grad: expected a callable (start, stop, Y_c) -> (share, dY_c),"
            f" received {describe(output_grad)}"
        )
    return _chunks(spec, params, X, h0, k, output_grad)


def _share(result: Any, Y_c: Array) -> tuple[float, Array]:
    """output_grad's (share, dY_c): a real number and a finite array shaped like Y_c."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"output_grad: expected a tuple (share, dY_c), received {describe(result)}")
    share, dY_c = result
    share = require_real("output_grad's share", share)
    require_array("output_grad's dY_c", dY_c, shape=Y_c.shape, dtype=Y_c.dtype.name)
    return share, dY_c


def _chunks(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array, k: int, output_grad: OutputGrad
) -> tuple[float, dict[str, Array]]:
    """truncated_bptt on validated input, chunk by chunk (module docstring)."""
    T = X.shape[0]
    W_ih, W_hh, b_ih, b_hh = (params[key] for key in RECURRENT_KEYS)
    grads = {key: np.zeros_like(value) for key, value in params.items()}
    grads["X"] = np.zeros_like(X)  # stays zero for chunks without a loss term
    grads["h0"] = np.zeros_like(h0)
    total = 0.0
    h = h0
    for start in range(0, T, k):
        stop = min(start + k, T)
        H_c, seq = rnn_sequence_forward(X[start:stop], h, W_ih, W_hh, b_ih, b_hh, spec.nonlinearity)
        h = H_c[-1]  # s_{c+1}: passed forward; a constant for every later chunk's backward
        if spec.readout == "last" and stop < T:
            continue  # no loss term in this chunk, so no gradient flows in it
        try:
            Y_c, rcache = readout_forward(spec.readout, H_c, params["W_out"], params["b_out"])
        except ValueError as err:
            raise_if_overflowed(err, "params", "the forward pass (the hidden states H)", H_c)
        share, dY_c = _share(output_grad(start, stop, Y_c), Y_c)
        total += share
        dH_c, dW_out, db_out = readout_backward(dY_c, rcache)
        g = rnn_sequence_backward(dH_c, seq)  # stops at s_c: nothing crosses the boundary
        grads["X"][start:stop] = g.dX
        if start == 0:
            grads["h0"] = g.dh0
        chunk = {
            "W_ih": g.dW_ih,
            "W_hh": g.dW_hh,
            "b_ih": g.db_ih,
            "b_hh": g.db_hh,
            "W_out": dW_out,
            "b_out": db_out,
        }
        for key, value in chunk.items():
            grads[key] += value
    return total, grads


def truncated_loss_and_grads(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None, targets: Array
) -> tuple[float, dict[str, Array]]:
    """The loss (unchanged by truncation) and the truncated gradient, window spec.truncation."""
    k = _window(spec)
    h0 = rnn.check_inputs(spec, params, X, h0)
    rnn.check_targets(spec, targets, *X.shape[:2])
    T = X.shape[0]

    def loss_share(start: int, stop: int, Y_c: Array) -> tuple[float, Array]:
        if spec.readout == "last":
            return readout_loss(spec, Y_c, targets)
        # the chunk's mean, weighted by its share of the T steps, is its part of the full mean
        return readout_loss(spec, Y_c, targets[start:stop], (stop - start) / T)

    return _chunks(spec, params, X, h0, k, loss_share)


def truncated_vjp(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None, dY: Array
) -> dict[str, Array]:
    """The truncated gradient of Σ Y ⊙ dY for an upstream gradient dY shaped like Y."""
    k = _window(spec)
    h0 = rnn.check_inputs(spec, params, X, h0)
    require_array("dY", dY, shape=rnn.output_shape(spec, *X.shape[:2]), dtype=spec.dtype)

    def upstream(start: int, stop: int, Y_c: Array) -> tuple[float, Array]:
        dY_c = dY if spec.readout == "last" else dY[start:stop]
        return float(np.sum(Y_c * dY_c)), dY_c

    return _chunks(spec, params, X, h0, k, upstream)[1]


def _window(spec: RNNSpec) -> int:
    k = rnn.require_spec(spec).truncation
    if k is None:
        raise ValueError("truncation: expected an integer >= 1 for truncated BPTT, received None")
    return k


# ---------------------------------------------------------------- entry points: full or truncated


def vjp(spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None, dY: Array) -> dict[str, Array]:
    """Jᵀ dY for an upstream gradient dY shaped like Y: every parameter, "X" and "h0";
    truncated with window spec.truncation, full BPTT (refimpl.rnn) when it is None."""
    if rnn.require_spec(spec).truncation is not None:
        return truncated_vjp(spec, params, X, h0, dY)
    h0 = rnn.check_inputs(spec, params, X, h0)
    require_array("dY", dY, shape=rnn.output_shape(spec, *X.shape[:2]), dtype=spec.dtype)
    return rnn.rnn_backward(dY, rnn.rnn_forward(spec, params, X, h0)[2])


def loss_and_grads(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None, targets: Array
) -> tuple[float, dict[str, Array]]:
    """The loss and its gradient for every parameter, "X" and "h0"; truncated with window
    spec.truncation, full BPTT (refimpl.rnn) when it is None."""
    if rnn.require_spec(spec).truncation is None:
        return rnn.loss_and_grads(spec, params, X, h0, targets)
    return truncated_loss_and_grads(spec, params, X, h0, targets)
