"""torch for "rnn_truncated": the same adapter as "rnn" (rnn.py), whose chunked run follows
spec.truncation. Calls go through the rnn module at call time, so a fault injected there
reaches both components."""

from __future__ import annotations

import torch

from conformance.backends.base import Outcome
from conformance.backends.torch_adapter import rnn
from conformance.case import Arrays, Case

CONVENTIONS = rnn.CONVENTIONS


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    return rnn.run(case, cotangents, device)


def jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    return rnn.jvp(case, tangents, device)
