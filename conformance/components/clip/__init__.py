"""Gradient clipping: by global norm (L2 or inf) and by value, under torch's and optax's
conventions, at the edges (the exact threshold, max_norm = 0, inf and NaN gradients).

Reference refimpl.clip; torch through `clip_grad_norm_` (both `foreach` paths) and
`clip_grad_value_` on real `.grad` tensors (torch_adapter.py), optax through
`clip_by_global_norm` and `clip` (jax_adapter.py). Nothing is differentiated: a case's
inputs are the gradient tensors, its outputs the clipped tensors, the norm, an error
flag and witnesses of isolation (reference.py). Sizes, layouts and paths
(conformance.layouts, conformance.paths): tensors across vector widths, .grad strided or
transposed, `foreach` against the loop (path against path), JAX op by op, and one call
on the tensors' concatenation against the call on the tensors.
"""

from __future__ import annotations

from functools import partial

from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.clip import properties as cp
from conformance.components.clip.boundary import BOUNDARY
from conformance.components.clip.range_ends import (
    CLIP_RANGE_OVERFLOW,
    CLIP_RANGE_UNDERFLOW,
    overflow_cases,
    underflow_cases,
)
from conformance.components.clip.reference import GOLDEN_LAYOUTS, ClipCaseSpec, clip_reference
from conformance.components.clip.rounding import clip_rounding
from conformance.components.clip.strategies import (
    clip_case,
    clip_cases,
    nonfinite_cases,
    path_cases,
    threshold_cases,
    wide_cases,
    zero_cases,
)
from conformance.layouts import LAYOUT_INVARIANCE, SIZE_AGREEMENT
from conformance.paths import PATH_AGREEMENT


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set: M = ‖g‖₂ / 2, so every implementation clips."""
    return clip_case(ClipCaseSpec(), GOLDEN_LAYOUTS[seed % len(GOLDEN_LAYOUTS)], seed, ratio=0.5)


CLIP = Component(
    "clip",
    ClipCaseSpec,
    (),
    ("clipped", "norm"),
    clip_reference,
    golden_case,
    checks=(
        Check(cp.CLIP_AGREEMENT, clip_cases, "agreement"),
        Check(cp.CLIP_NORM_BOUND, clip_cases, "norm_bound"),
        Check(cp.CLIP_DIRECTION, clip_cases, "direction"),
        Check(cp.CLIP_IDENTITY_BELOW, partial(clip_cases, regime="below"), "identity_below"),
        Check(cp.CLIP_IDEMPOTENCE, partial(clip_cases, regime="above"), "idempotence"),
        Check(cp.CLIP_THRESHOLD, threshold_cases, "threshold"),
        Check(cp.CLIP_ZERO_MAX_NORM, zero_cases, "zero_max_norm"),
        Check(cp.CLIP_NONFINITE, nonfinite_cases, "nonfinite"),
        Check(cp.CLIP_ISOLATION, clip_cases, "isolation"),
        # sizes, layouts and paths (conformance.layouts, conformance.paths)
        Check(SIZE_AGREEMENT, wide_cases, "size_agreement"),
        Check(LAYOUT_INVARIANCE, wide_cases, "layout_invariance"),
        Check(PATH_AGREEMENT, path_cases, "path_agreement"),
        Check(cp.CLIP_CONCATENATED, partial(path_cases, wide=True), "concatenated"),
        Check(CLIP_RANGE_OVERFLOW, overflow_cases, "range_ends_overflow"),
        Check(CLIP_RANGE_UNDERFLOW, underflow_cases, "range_ends_underflow"),
    ),
    adapters={
        "torch": "conformance.components.clip.torch_adapter",
        "jax": "conformance.components.clip.jax_adapter",
    },
    rounding=clip_rounding,
    boundary=BOUNDARY,
)

COMPONENTS = (CLIP,)
