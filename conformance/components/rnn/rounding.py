"""The Elman RNN's rounding bound: refimpl.rnn and refimpl.bptt in conformance.rounding's arithmetic.

Forward, one sum of D + H + 2 terms per step (torch adds two GEMMs' results, flax one
Dense over the folded bias: any grouping is covered):

    z_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh,   h_t = f(z_t)
    Y = h_T W_outᵀ + b_out  (or every h_t)

Backward through time with window k (k = T: full BPTT), the carry stopping at each chunk
boundary as refimpl.bptt's:

    ∂L/∂h_t = ∂L/∂Y_t W_out + δ_{t+1} W_hh      one sum of C + H terms (the carry only
                                                inside a chunk)
    δ_t = f'(z_t) ⊙ ∂L/∂h_t
    ∂L/∂W_ih = Σ_{t,n} δ_{t,n}ᵀ x_{t,n}, ∂L/∂W_hh = Σ δᵀ h_{t-1}, ∂L/∂b = Σ δ   T·N terms, in
                                                any order (chunk by chunk, or all at once)
    ∂L/∂x_t = δ_t W_ih,  ∂L/∂h_0 = δ_1 W_hh

and ‖∂L/∂h_t‖ for the hidden-gradient profile (full BPTT, the loss as the objective).
"""

from __future__ import annotations

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.mlp.rounding import Grads, activation, derivative, loss_forward, upstream
from conformance.rounding import Arithmetic, Uncertain
from refimpl.rnn import RNNSpec


def _rows(ar: Arithmetic, x: Uncertain) -> Uncertain:
    """(T, N, K) -> (T N, K)."""
    return ar.reshape(x, (-1, x.v.shape[-1]))


def rnn_passes(
    ar: Arithmetic,
    spec: RNNSpec,
    p: Grads,
    X: Uncertain,
    h0: Uncertain,
    targets: np.ndarray,
    cotangents: Arrays | None,
    window: int | None,
) -> tuple[Uncertain, Uncertain, Grads, Uncertain]:
    """(Y, loss, grads, ‖∂L/∂h_t‖ for t = 1..T) with their bounds; window None: full BPTT."""
    T, N, _ = X.v.shape
    h, pre, states = h0, [], []
    for t in range(T):
        z = ar.linear_sum([(ar.take(X, t), p["W_ih"]), (h, p["W_hh"])], [p["b_ih"], p["b_hh"]])
        h = activation(ar, spec.nonlinearity, z, 0.0)
        pre.append(z)
        states.append(h)
    H_all = ar.stack(states)
    rows = _rows(ar, H_all) if spec.readout == "every" else states[-1]
    Y_rows = ar.affine(rows, p["W_out"], p["b_out"])
    C = spec.output_size
    labels = targets.reshape(-1) if spec.loss == "cross_entropy" else targets.reshape(-1, C)
    loss, cache = loss_forward(ar, spec.loss, Y_rows, labels)
    Y_shape = (T, N, C) if spec.readout == "every" else (N, C)
    Y = ar.reshape(Y_rows, Y_shape)
    grads: Grads = {}
    norms = ar.exact(np.zeros(T))
    if not cotangents:
        return Y, loss, grads, norms
    flat = {k: v.reshape(-1, C) for k, v in cotangents.items() if k == "Y"}
    flat.update({k: v for k, v in cotangents.items() if k != "Y"})
    dY = upstream(ar, spec.loss, cache, flat, Y_rows.v.shape)
    grads["W_out"] = ar.matmul(ar.transpose(dY), rows)
    grads["b_out"] = ar.sum(dY, axis=0)
    k = window or T
    zero = ar.exact(np.zeros((N, spec.hidden_size)))
    deltas: list[Uncertain] = [zero] * T
    carry: Uncertain | None = None
    norm_list: list[Uncertain] = [ar.exact(np.zeros(()))] * T
    for t in range(T - 1, -1, -1):
        readout_rows = (
            ar.take(dY, slice(t * N, (t + 1) * N)) if spec.readout == "every" else dY if t == T - 1 else None
        )
        products = [(readout_rows, ar.transpose(p["W_out"]))] if readout_rows is not None else []
        if carry is not None and (t + 1) % k != 0:
            products.append((carry, ar.transpose(p["W_hh"])))
        if spec.readout == "last" and t // k != (T - 1) // k:
            continue  # a chunk without a loss term: no gradient flows in it
        dh = ar.linear_sum(products, []) if products else zero
        norm_list[t] = ar.norm2(dh)
        deltas[t] = ar.mul(derivative(ar, spec.nonlinearity, pre[t], states[t], 0.0, "slope"), dh)
        carry = deltas[t]
    delta = ar.stack(deltas)
    H_prev = ar.stack([h0, *states[:-1]])
    grads["W_ih"] = ar.matmul(ar.transpose(_rows(ar, delta)), _rows(ar, X))
    grads["W_hh"] = ar.matmul(ar.transpose(_rows(ar, delta)), _rows(ar, H_prev))
    grads["b_ih"] = grads["b_hh"] = ar.sum(_rows(ar, delta), axis=0)
    grads["X"] = ar.stack([ar.matmul(deltas[t], p["W_ih"]) for t in range(T)])
    grads["h0"] = ar.matmul(deltas[0], p["W_hh"])
    return Y, loss, grads, ar.stack(norm_list)


def _run(
    case: Case, cotangents: Arrays | None, window: int | None
) -> tuple[Arithmetic, Uncertain, Uncertain, Grads, Uncertain]:
    spec: RNNSpec = case.spec
    ar = Arithmetic(spec.dtype)
    params = {k: ar.rounded(v) for k, v in case.params.items()}
    inputs = case.inputs
    return ar, *rnn_passes(
        ar,
        spec,
        params,
        ar.rounded(inputs["X"]),
        ar.rounded(inputs["h0"]),
        inputs["targets"],
        cotangents,
        window,
    )


def rnn_rounding(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """Error bounds for rnn_reference: outputs {"Y", "loss"}, grads of every parameter, "X", "h0"."""
    ar, Y, loss, grads, _ = _run(case, cotangents, case.spec.truncation)
    return Outcome({"Y": ar.bound(Y), "loss": ar.bound(loss)}, {k: ar.bound(g) for k, g in grads.items()}, {})


def hidden_norms_rounding(case: Case) -> np.ndarray:
    """The bound of ‖∂L/∂h_t‖ for t = 1..T (full BPTT, the loss as the objective)."""
    ar, _, _, _, norms = _run(case, {"loss": np.ones(())}, None)
    return ar.bound(norms)
