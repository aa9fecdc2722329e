"""The padded-sequence RNN's rounding bound: refimpl.varlen in conformance.rounding's arithmetic.

The RNN's steps (components/rnn/rounding.py) with each sequence's mask m_t = [t <= L_n], exact:
a padded step carries the state through and contributes nothing,

    z_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh        one sum of D + H + 2 terms
    h_t = m_t f(z_t) + (1 - m_t) h_{t-1},  H_t = m_t h_t  (a selection, no rounding)
    Y = h_n W_outᵀ + b_out, or Y_t = m_t (H_t W_outᵀ + b_out); the loss over the valid rows

and back (in reading order reversed; `reverse` reads each sequence from its last valid step):

    g_t = m_t (∂L/∂H_t + ∂L/∂Y_t W_out) + carry           one more rounding per step
    δ_t = m_t f'(z_t) ⊙ g_t,  carry = m_t δ_t W_hh + (1 - m_t) g_t
    ∂L/∂W_ih = Σ δᵀ x, ∂L/∂W_hh = Σ δᵀ h_{t-1}, ∂L/∂b = Σ δ   T·N terms in any order
    ∂L/∂x_t = δ_t W_ih,  ∂L/∂h_0 = the last carry
"""

from __future__ import annotations

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.mlp.rounding import Grads, activation, derivative, loss_forward, upstream
from conformance.rounding import Arithmetic, Uncertain
from refimpl.varlen import VarLenRNNSpec


def varlen_rounding(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """Error bounds for varlen_reference: outputs {"Y", "H", "h_n", "loss"}, grads of every
    parameter, "X" and "h0"."""
    spec: VarLenRNNSpec = case.spec
    ar = Arithmetic(spec.dtype)
    p = {k: ar.rounded(v) for k, v in case.params.items()}
    lengths = np.asarray(case.inputs["lengths"])
    T, N, _ = case.inputs["X"].shape
    H, C = spec.hidden_size, spec.output_size
    mask = np.arange(T)[:, None] < lengths[None, :]
    X = ar.rounded(np.where(mask[..., None], case.inputs["X"], 0.0))  # the padding never enters
    h = ar.rounded(case.inputs["h0"])
    zero = ar.exact(np.zeros((N, H)))
    order = range(T - 1, -1, -1) if spec.reverse else range(T)
    pre: list[Uncertain] = [zero] * T
    acts: list[Uncertain] = [zero] * T
    H_prev: list[Uncertain] = [zero] * T
    H_all: list[Uncertain] = [zero] * T
    for t in order:
        H_prev[t] = h
        z = ar.linear_sum([(ar.take(X, t), p["W_ih"]), (h, p["W_hh"])], [p["b_ih"], p["b_hh"]])
        pre[t], acts[t] = z, activation(ar, spec.nonlinearity, z, 0.0)
        h = ar.where(mask[t][:, None], acts[t], h)
        H_all[t] = ar.where(mask[t][:, None], h, zero)
    states = ar.stack(H_all)
    every = spec.readout == "every"
    rows = ar.reshape(states, (T * N, H)) if every else h
    Y_rows = ar.affine(rows, p["W_out"], p["b_out"])
    valid = mask.reshape(-1) if every else np.ones(N, bool)
    targets = case.inputs["targets"]
    labels = targets.reshape(-1)[valid] if spec.loss == "cross_entropy" else targets.reshape(-1, C)[valid]
    loss, cache = loss_forward(ar, spec.loss, ar.take(Y_rows, (valid,)), labels)
    Y_rows = ar.where(valid[:, None], Y_rows, ar.exact(np.zeros(Y_rows.v.shape)))
    Y = ar.reshape(Y_rows, (T, N, C)) if every else Y_rows
    outputs = {"Y": Y, "H": states, "h_n": h, "loss": loss}
    grads: Grads = {}
    if cotangents:
        cot = dict(cotangents)
        on_loss = {"loss": cot["loss"]} if "loss" in cot else {}
        dY_loss = upstream(ar, spec.loss, cache, on_loss, (int(valid.sum()), C))
        dY = ar.scatter(dY_loss, valid, C)
        if "Y" in cot:
            dY = ar.where(valid[:, None], ar.add(dY, ar.rounded(cot["Y"].reshape(-1, C))), dY)
        d_read = ar.matmul(dY, p["W_out"])
        grads["W_out"] = ar.matmul(ar.transpose(dY), rows)
        grads["b_out"] = ar.sum(dY, axis=0)
        dH = ar.rounded(cot["H"]) if "H" in cot else ar.exact(np.zeros((T, N, H)))
        carry = ar.rounded(cot["h_n"]) if "h_n" in cot else zero
        if not every:
            carry = ar.add(carry, d_read)
        else:
            dH = ar.add(dH, ar.reshape(d_read, (T, N, H)))
        deltas: list[Uncertain] = [zero] * T
        for t in range(T) if spec.reverse else range(T - 1, -1, -1):
            m = mask[t][:, None]
            g = ar.add(ar.where(m, ar.take(dH, t), zero), carry)
            f_prime = derivative(ar, spec.nonlinearity, pre[t], acts[t], 0.0, "slope")
            deltas[t] = ar.where(m, ar.mul(f_prime, g), zero)
            carry = ar.where(m, ar.matmul(deltas[t], p["W_hh"]), g)
        delta = ar.reshape(ar.stack(deltas), (T * N, H))
        grads["W_ih"] = ar.matmul(ar.transpose(delta), ar.reshape(X, (T * N, -1)))
        grads["W_hh"] = ar.matmul(ar.transpose(delta), ar.reshape(ar.stack(H_prev), (T * N, H)))
        grads["b_ih"] = grads["b_hh"] = ar.sum(delta, axis=0)
        grads["X"] = ar.stack([ar.matmul(deltas[t], p["W_ih"]) for t in range(T)])
        grads["h0"] = carry
    return Outcome(
        {k: ar.bound(v) for k, v in outputs.items()}, {k: ar.bound(g) for k, g in grads.items()}, {}
    )
