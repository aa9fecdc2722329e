"""The Elman RNN on a padded batch of variable-length sequences (README, "Variable-length sequences").

X (T, N, D) holds N sequences, time-major, sequence n in its first L_n steps, padding after;
m_{t,n} = [t <= L_n] marks the valid steps. The padding has no influence on any output or
gradient, whatever it holds (NaN and inf too): it is replaced by 0 before any arithmetic.

Forward, step t = 1..T (reverse=True: t = T..1), with the recurrence of refimpl.rnn:

    z_t = x_t W_ihᵀ + b_ih + h_{t∓1} W_hhᵀ + b_hh                               (N, H)
    h_t = m_t ⊙ f(z_t) + (1 - m_t) ⊙ h_{t∓1}     a padded step carries the state through
    H_t = m_t ⊙ h_t                               the outputs: 0 at padded steps
    h_n = the state after the last step processed: h_{L_n} forward, h_1 reversed (h0 if L_n = 0)

Reversed, the padded steps come first and carry h0 through, so sequence n is read from step
L_n down to 1 and its padding stays at the end, as flax's `nn.RNN(reverse=True, seq_lengths=...)`
and the reverse direction of torch's packed bidirectional `nn.RNN` read it.

Readout "last": Y = h_n W_outᵀ + b_out (N, C); "every": Y_t = m_t ⊙ (H_t W_outᵀ + b_out)
(T, N, C), 0 at padded steps. The loss averages over what is valid: "last" over the N rows;
"every" over the Σ_n L_n valid (step, example) rows (mse: over their C entries too).

Backward, δ_t = ∂L/∂z_t, carried in the reverse of the processing order:

    g_t = m_t ⊙ ∂L/∂H_t + carry                   the readout term of a valid step, and what came back
    δ_t = m_t ⊙ f'(z_t) ⊙ g_t
    carry ← m_t ⊙ (δ_t W_hh) + (1 - m_t) ⊙ g_t    a padded step passes it on unchanged
    ∂L/∂h0 = the carry at the end; ∂L/∂x_t = δ_t W_ih (0 at padded steps)
    ∂L/∂W_ih = Σ_t δ_tᵀ x_t,  ∂L/∂W_hh = Σ_t δ_tᵀ h_{t∓1},  ∂L/∂b_ih = ∂L/∂b_hh = Σ_t Σ_n δ_t,n

with the carry starting at ∂L/∂h_n (readout "last": ∂L/∂Y W_out). A length of 0 is the
convention `zero_length`: "raise" (torch's pack_padded_sequence refuses it) or "allow" (h_n = h0,
no valid step, ∂L/∂h0 = ∂L/∂h_n).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import activations, losses, rnn
from refimpl._validate import describe, require_array, require_choice, require_instance
from refimpl.rnn import RECURRENT_KEYS, RNNSpec

Array = NDArray[Any]
ZERO_LENGTHS = ("raise", "allow")


@dataclass(frozen=True)
class VarLenRNNSpec(RNNSpec):
    """An RNNSpec (full BPTT only) read over padded sequences, forward or reversed."""

    reverse: bool = False  # read each sequence from its last valid step to its first
    zero_length: str = "raise"  # a sequence of length 0: "raise" (torch) or "allow" (h_n = h0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.truncation is not None:
            raise ValueError(
                f"truncation: padded sequences run full BPTT, expected None, received {self.truncation}"
            )
        if not isinstance(self.reverse, bool):
            raise TypeError(f"reverse: expected a bool, received {describe(self.reverse)}")
        require_choice("zero_length", self.zero_length, ZERO_LENGTHS)


class VarLenCache(NamedTuple):
    mask: Array  # (T, N) bool, m_t
    X: Array  # (T, N, D), the padding set to 0
    H_prev: Array  # (T, N, H), the state each step started from
    acts: tuple[activations.ActivationCache, ...]  # f's cache at every array index
    W_ih: Array
    W_hh: Array
    readout: rnn.ReadoutCache
    reverse: bool


def check_lengths(spec: VarLenRNNSpec, lengths: Any, T: int, N: int) -> Array:
    """Integer lengths (N,), each in [1, T] ([0, T] under zero_length "allow")."""
    require_instance("spec", spec, VarLenRNNSpec, "a VarLenRNNSpec")
    if not isinstance(lengths, np.ndarray) or lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected an integer numpy.ndarray, received {describe(lengths)}")
    if lengths.shape != (N,):
        raise ValueError(f"lengths: expected shape ({N},), received shape {lengths.shape}")
    low = 0 if spec.zero_length == "allow" else 1
    bad = (lengths < low) | (lengths > T)
    if bad.any():
        raise ValueError(
            f"lengths: expected lengths in [{low}, {T}] (zero_length={spec.zero_length!r}),"
            f" received {int(lengths[bad][0])} at example {int(np.argmax(bad))}"
        )
    return lengths.astype(np.int64)


def _step_mask(lengths: Array, T: int) -> Array:
    """m (T, N): m[t - 1, n] = [t <= L_n]."""
    return np.arange(T)[:, None] < lengths[None, :]


def varlen_forward(
    spec: VarLenRNNSpec, params: dict[str, Array], X: Array, lengths: Array, h0: Array | None
) -> tuple[Array, Array, Array, VarLenCache]:
    """(Y, H (T, N, H) with 0 at padded steps, h_n (N, H), cache); h0 = None means zeros."""
    require_instance("spec", spec, VarLenRNNSpec, "a VarLenRNNSpec")
    rnn.check_params(spec, params)
    require_array("X", X, shape=(None, None, spec.input_size), dtype=spec.dtype, finite=False)
    T, N = X.shape[:2]
    if T < 1 or N < 1:
        raise ValueError(f"X: expected shape (T, N, D) with T >= 1 and N >= 1, received {X.shape}")
    mask = _step_mask(check_lengths(spec, lengths, T, N), T)
    if not np.isfinite(X[mask]).all():
        raise ValueError(
            "X: expected finite values at the valid steps (padding may hold anything),"
            f" received {int(np.sum(~np.isfinite(X[mask])))} non-finite entries"
        )
    X = np.where(mask[..., None], X, 0.0).astype(spec.dtype)  # the padding never enters
    h = h0 = rnn.check_inputs(spec, params, X, h0)
    W_ih, W_hh, b_ih, b_hh = (params[key] for key in RECURRENT_KEYS)
    Z_in = X @ W_ih.T + (b_ih + b_hh)  # T, N, H
    H_all, H_prev = np.zeros_like(Z_in), np.empty_like(Z_in)
    acts: list[Any] = [None] * T
    for t in range(T - 1, -1, -1) if spec.reverse else range(T):
        H_prev[t] = h
        a, acts[t] = activations.activation_forward(spec.nonlinearity, Z_in[t] + h @ W_hh.T)
        h = np.where(mask[t][:, None], a, h)  # N, H: a padded step carries h through
        H_all[t] = np.where(mask[t][:, None], h, 0.0)
    Y, rcache = rnn.readout_forward(
        spec.readout, H_all if spec.readout == "every" else h[None], params["W_out"], params["b_out"]
    )
    if spec.readout == "every":
        Y = np.where(mask[..., None], Y, 0.0)
    return Y, H_all, h, VarLenCache(mask, X, H_prev, tuple(acts), W_ih, W_hh, rcache, spec.reverse)


def varlen_backward(
    cache: VarLenCache, dY: Array, dH: Array | None = None, dh_n: Array | None = None
) -> dict[str, Array]:
    """The gradients of Σ <dY, Y> + <dH, H> + <dh_n, h_n>: every parameter, "X" and "h0"."""
    mask, X, H_prev, acts, W_ih, W_hh, rcache, reverse = require_instance("cache", cache, VarLenCache)
    T, N, H = H_prev.shape
    dtype = H_prev.dtype.name
    dH = np.zeros_like(H_prev) if dH is None else require_array("dH", dH, shape=(T, N, H), dtype=dtype)
    dh_n = np.zeros((N, H), dtype) if dh_n is None else require_array("dh_n", dh_n, shape=(N, H), dtype=dtype)
    if rcache.readout == "every":
        dY = np.where(mask[..., None], require_array("dY", dY, shape=(T, N, None), dtype=dtype), 0.0)
    d_read, dW_out, db_out = rnn.readout_backward(dY, rcache)
    g_out = np.where(mask[..., None], dH + (d_read if rcache.readout == "every" else 0.0), 0.0)
    carry = dh_n + (d_read[0] if rcache.readout == "last" else 0.0)  # ∂L/∂h_n
    delta = np.zeros_like(H_prev)
    for t in range(T) if reverse else range(T - 1, -1, -1):
        g = g_out[t] + carry  # N, H
        valid = mask[t][:, None]
        delta[t] = np.where(valid, activations.activation_backward(g, acts[t]), 0.0)
        carry = np.where(valid, delta[t] @ W_hh, g)
    rows = delta.reshape(T * N, H)
    db = rows.sum(axis=0)
    return {
        "W_ih": rows.T @ X.reshape(T * N, -1),
        "W_hh": rows.T @ H_prev.reshape(T * N, H),
        "b_ih": db,
        "b_hh": db.copy(),
        "W_out": dW_out,
        "b_out": db_out,
        "X": delta @ W_ih,
        "h0": carry,
    }


def varlen_loss(spec: VarLenRNNSpec, Y: Array, targets: Array, lengths: Array) -> tuple[float, Array]:
    """The loss over the valid rows of Y and ∂L/∂Y (0 at padded steps); targets as
    refimpl.rnn.check_targets (their padded steps are ignored, but must be finite)."""
    require_instance("spec", spec, VarLenRNNSpec, "a VarLenRNNSpec")
    if spec.readout == "last":
        return rnn.readout_loss(spec, Y, targets)
    require_array("Y", Y, shape=(None, None, spec.output_size), dtype=spec.dtype)
    T, N = Y.shape[:2]
    rnn.check_targets(spec, targets, T, N)
    mask = _step_mask(check_lengths(spec, lengths, T, N), T)
    if not mask.any():
        raise ValueError(
            "lengths: expected at least one valid step (readout 'every' averages over"
            " them), received only lengths 0"
        )
    dY = np.zeros_like(Y)
    if spec.loss == "mse":
        loss, mcache = losses.mse_forward(Y[mask], targets[mask])
        dY[mask] = losses.mse_backward(1.0, mcache)
    else:
        loss, ccache = losses.cross_entropy_forward(Y[mask], targets[mask])
        dY[mask] = losses.cross_entropy_backward(1.0, ccache)
    return loss, dY


def loss_and_grads(
    spec: VarLenRNNSpec, params: dict[str, Array], X: Array, lengths: Array, h0: Array | None, targets: Array
) -> tuple[float, dict[str, Array]]:
    """The loss and its gradient for every parameter, "X" and "h0"."""
    Y, _, _, cache = varlen_forward(spec, params, X, lengths, h0)
    loss, dY = varlen_loss(spec, Y, targets, lengths)
    return loss, varlen_backward(cache, dY)
