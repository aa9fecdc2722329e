"""The Elman RNN with backpropagation through time: "rnn" (full BPTT) and its variant
"rnn_truncated" (truncated BPTT, window k = spec.truncation), two rows of the matrix.

Reference refimpl.rnn and refimpl.bptt; torch through `nn.RNN` run chunk by chunk with
`.detach()` at the boundaries (torch_adapter.py), JAX through flax `nn.RNN(SimpleCell)`
with `lax.stop_gradient` on the carry at chunk boundaries (jax_adapter.py): one adapter
per framework serves both, following spec.truncation. Inputs "X" (T, N, D) and "h0"
(N, H); outputs "Y" and "loss". The BPTT invariants (properties.py) run inside each
framework: k >= T is full BPTT, k = 1 is T one-step problems, T = 1 is a dense layer,
the two biases act as one, and the per-step gradient profile matches the reference;
each framework's default initialization is held to the reference's scheme for it. Sizes,
layouts and paths (conformance.layouts, conformance.paths): widths and batches across vector
widths, X strided, transposed or batch-major to `nn.RNN(batch_first=True)` and flax's
`nn.RNN(time_major=True)`, `nn.RNNCell` stepped through time, JAX op by op, per-example
gradients by vmap, a batch of sequences by blocks.
"""

from __future__ import annotations

from functools import partial

from conformance import properties as p
from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.rnn import properties as rp
from conformance.components.rnn.boundary import BOUNDARY, TRUNCATED_BOUNDARY
from conformance.components.rnn.reference import rnn_init, rnn_reference
from conformance.components.rnn.rounding import rnn_rounding
from conformance.components.rnn.strategies import (
    RNN_CATALOG,
    TRUNCATED_CATALOG,
    extreme_cases,
    init_cases,
    path_cases,
    rnn_case,
    rnn_cases,
    truncated_cases,
    wide_cases,
)
from conformance.initialization import init_distribution
from conformance.isolation import isolation_cases, nonfinite_isolation
from conformance.layouts import LAYOUT_INVARIANCE, SIZE_AGREEMENT
from conformance.paths import PATH_AGREEMENT, Batching, batch_blocks, per_example_gradients
from refimpl.rnn import RNNSpec

ADAPTERS = {
    "torch": "conformance.components.rnn.torch_adapter",
    "jax": "conformance.components.rnn.jax_adapter",
}


def golden_case(seed: int) -> Case:
    """A deterministic full-BPTT case for the golden set."""
    return rnn_case(RNN_CATALOG[seed % len(RNN_CATALOG)], seed)


def golden_truncated_case(seed: int) -> Case:
    """A deterministic truncated-BPTT case for the golden set."""
    return rnn_case(TRUNCATED_CATALOG[seed % len(TRUNCATED_CATALOG)], seed, component="rnn_truncated")


def batch_axes(case: Case) -> dict[str, int]:
    """The batch: axis 1 of X (T, N, D), 0 of h0 (N, H), and of Y, the targets and the
    cotangents, (N, C) with readout "last" or (T, N, C) with "every" (conformance.paths)."""
    rows = 0 if case.spec.readout == "last" else 1
    return {"X": 1, "h0": 0, "Y": rows, "targets": rows, "dY": rows, "dY2": rows}


SEQUENCES = Batching(batch_axes)

RNN = Component(
    "rnn",
    RNNSpec,
    ("X", "h0"),
    ("Y", "loss"),
    rnn_reference,
    golden_case,
    checks=(
        Check(p.FORWARD_AGREEMENT, rnn_cases, "forward"),
        Check(p.GRADIENT_AGREEMENT, rnn_cases, "gradient"),
        Check(p.LOSS_GRADIENT_AGREEMENT, rnn_cases, "loss_gradient"),
        Check(p.FINITE_DIFFERENCES, rnn_cases, "finite_differences"),
        Check(p.REVERSE_VS_FORWARD, rnn_cases, "reverse_vs_forward"),
        Check(p.UPSTREAM_LINEARITY, rnn_cases, "upstream_linearity"),
        Check(p.EXTREME_AGREEMENT, extreme_cases, "extreme"),
        Check(rp.TWO_BIAS_MAPPING, rnn_cases, "two_bias_mapping"),
        Check(rp.ONE_STEP_DENSE, partial(rnn_cases, steps="one"), "one_step_dense"),
        Check(rp.HIDDEN_GRADIENT_PROFILE, rnn_cases, "hidden_gradient_profile"),
        Check(init_distribution(rnn_init), init_cases, "init_distribution"),
        # sizes, layouts and paths (conformance.layouts, conformance.paths)
        Check(SIZE_AGREEMENT, wide_cases, "size_agreement"),
        Check(LAYOUT_INVARIANCE, wide_cases, "layout_invariance"),
        Check(PATH_AGREEMENT, path_cases, "path_agreement"),
        Check(per_example_gradients(SEQUENCES), path_cases, "per_example_gradients"),
        Check(batch_blocks(SEQUENCES), partial(path_cases, blocks=True), "batch_blocks"),
        # special values (conformance.isolation)
        Check(
            nonfinite_isolation(SEQUENCES),
            partial(isolation_cases, cases=rnn_cases, batching=SEQUENCES),
            "isolation",
        ),
    ),
    adapters=ADAPTERS,
    rounding=rnn_rounding,
    boundary=BOUNDARY,
)

RNN_TRUNCATED = Component(
    "rnn_truncated",
    RNNSpec,
    ("X", "h0"),
    ("Y", "loss"),
    rnn_reference,
    golden_truncated_case,
    checks=(
        Check(p.FORWARD_AGREEMENT, truncated_cases, "truncated_forward"),
        Check(p.GRADIENT_AGREEMENT, truncated_cases, "truncated_gradient"),
        Check(p.LOSS_GRADIENT_AGREEMENT, truncated_cases, "truncated_loss_gradient"),
        Check(
            rp.TRUNCATED_FINITE_DIFFERENCES,
            partial(truncated_cases, steps="long"),
            "truncated_finite_differences",
        ),
        Check(p.REVERSE_VS_FORWARD, truncated_cases, "truncated_reverse_vs_forward"),
        Check(p.UPSTREAM_LINEARITY, truncated_cases, "truncated_upstream_linearity"),
        Check(
            rp.TRUNCATION_COVERS_SEQUENCE,
            partial(truncated_cases, window="covering"),
            "window_covers_sequence",
        ),
        Check(rp.TRUNCATION_WINDOW_ONE, partial(truncated_cases, window="one"), "window_one"),
    ),
    adapters=ADAPTERS,
    rounding=rnn_rounding,
    boundary=TRUNCATED_BOUNDARY,
)

COMPONENTS = (RNN, RNN_TRUNCATED)
