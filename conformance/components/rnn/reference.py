"""The Elman RNN's reference runner: refimpl.rnn, and refimpl.bptt for the gradients.

Inputs "X" (T, N, D) time-major and "h0" (N, H), both differentiable; outputs
"Y" ((N, C) for readout "last", (T, N, C) for "every") and "loss". The same
runner serves "rnn" (full BPTT) and "rnn_truncated", whose specs carry a BPTT
window k: the outputs are unchanged and the gradients are refimpl.bptt's
truncated ones.
"""

from __future__ import annotations

import numpy as np

from conformance.backend import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from conformance.initialization import INIT_SALT, stacked
from refimpl import bptt, init, rnn
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


def rnn_init(case: Case, scheme: str, draws: int) -> tuple[Arrays, dict[str, init.Init]]:
    """`draws` initializations by refimpl.rnn.init_params under `scheme`, from one generator
    seeded by the case, stacked; and refimpl.init's law of each tensor."""
    spec: RNNSpec = case.spec
    rng = np.random.default_rng([case.seed, INIT_SALT])
    drawn = stacked(lambda: rnn.init_params(spec, rng, scheme), draws)
    return drawn, init.rnn_inits(spec.input_size, spec.hidden_size, spec.output_size, scheme)
