"""The Elman RNN component "rnn" (full BPTT): refimpl.rnn answering the backend contract.

Inputs "X" (T, N, D) time-major and "h0" (N, H), both differentiable; outputs
"Y" ((N, C) for readout "last", (T, N, C) for "every") and "loss". The same
runner serves "rnn_truncated" (conformance/components/rnn_truncated.py), whose
specs carry a BPTT window k: the outputs are unchanged and the gradients are
refimpl.bptt's truncated ones. The RNN-specific properties live in
conformance/checks_rnn.py, imported here so that they register with the component.
"""

from __future__ import annotations

import numpy as np

from conformance import checks_rnn  # noqa: F401  (registers the RNN properties)
from conformance.backends.base import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from conformance.components.base import Component
from refimpl import bptt, rnn
from refimpl.rnn import RNNSpec


def rnn_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.rnn in case.spec.dtype: outputs {"Y", "loss"}; grads of Σ <cot, out> w.r.t.
    every parameter, "X" and "h0" (truncated BPTT, refimpl.bptt, when spec.truncation is set)."""
    spec: RNNSpec = case.spec
    params = cast_floats(case.params, spec.dtype)
    inputs = cast_floats(case.inputs, spec.dtype)
    X, h0, targets = inputs["X"], inputs["h0"], inputs["targets"]
    rnn.check_targets(spec, targets, *X.shape[:2])
    Y, _, cache = rnn.rnn_forward(spec, params, X, h0)
    loss, dL_dY = rnn.readout_loss(spec, Y, targets)
    outputs: dict[str, object] = {"Y": Y, "loss": np.asarray(loss)}
    grads: dict[str, object] = {}
    if cotangents:
        dY = dL_dY * float(cotangents.get("loss", 0.0))  # stays in spec.dtype
        if "Y" in cotangents:
            dY = dY + cotangents["Y"].astype(spec.dtype)
        if spec.truncation is None:
            grads.update(rnn.rnn_backward(dY, cache))
        else:  # chunk by chunk, refimpl.bptt
            grads.update(bptt.vjp(spec, params, X, h0, dY))
    return Outcome(as_float64(outputs), as_float64(grads), {})


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set."""
    from conformance.strategies_rnn import RNN_CATALOG, rnn_case

    return rnn_case(RNN_CATALOG[seed % len(RNN_CATALOG)], seed)


COMPONENT = Component("rnn", RNNSpec, ("X", "h0"), ("Y", "loss"), rnn_reference, golden_case)
