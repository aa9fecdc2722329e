"""The component "rnn_truncated": the Elman RNN with truncated BPTT, window k = spec.truncation.

Its own component so that the matrix shows full and truncated BPTT as separate
rows. Same reference runner as "rnn" (refimpl.bptt runs the truncated gradient
chunk by chunk); the adapters are the same modules too (see
backends/*/rnn_truncated.py). The window's definition is in refimpl/bptt.py and
the README ("Truncated BPTT").
"""

from __future__ import annotations

from conformance.case import Case
from conformance.components.base import Component
from conformance.components.rnn import rnn_reference
from refimpl.rnn import RNNSpec


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set."""
    from conformance.strategies_rnn import TRUNCATED_CATALOG, rnn_case

    shape = TRUNCATED_CATALOG[seed % len(TRUNCATED_CATALOG)]
    return rnn_case(shape, seed, component="rnn_truncated")


COMPONENT = Component(
    "rnn_truncated", RNNSpec, ("X", "h0"), ("Y", "loss"), rnn_reference, golden_case
)
