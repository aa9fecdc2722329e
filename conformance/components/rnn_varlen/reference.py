"""The padded-sequence RNN's reference runner: refimpl.varlen answering the backend contract.

Inputs "X" (T, N, D) time-major with padding past each length, "h0" (N, H), both differentiable,
and "lengths" (N,), integers; outputs "Y" ((N, C) for readout "last", (T, N, C) for "every", 0 at
padded steps), "H" (T, N, H), every step's state, 0 at padded steps, "h_n" (N, H), the final
state, and "loss" (the mean over the valid steps). Cotangents may be given for any of them.
"""

from __future__ import annotations

import numpy as np

from conformance.backend import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from refimpl import varlen
from refimpl.varlen import VarLenRNNSpec


def varlen_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    spec: VarLenRNNSpec = case.spec
    params = cast_floats(case.params, spec.dtype)
    x = cast_floats(case.inputs, spec.dtype)
    Y, H, h_n, cache = varlen.varlen_forward(spec, params, x["X"], x["lengths"], x["h0"])
    loss, dL_dY = varlen.varlen_loss(spec, Y, x["targets"], x["lengths"])
    outputs = {"Y": Y, "H": H, "h_n": h_n, "loss": np.asarray(loss)}
    grads: Arrays = {}
    if cotangents:
        cot = cast_floats(cotangents, spec.dtype)
        dY = dL_dY * float(cot.get("loss", 0.0))  # stays in spec.dtype
        if "Y" in cot:
            dY = dY + cot["Y"]
        grads = varlen.varlen_backward(cache, dY, cot.get("H"), cot.get("h_n"))
    return Outcome(as_float64(outputs), as_float64(grads), {})
