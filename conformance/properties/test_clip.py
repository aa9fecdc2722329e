"""Clipping properties: one line each, bound to the clipping case strategies."""

from conformance.strategies_clip import (
    clip_cases,
    nonfinite_cases,
    threshold_cases,
    zero_cases,
)
from conformance.testing import conformance_test

test_agreement = conformance_test("clip", "clip-agreement", clip_cases())
test_norm_bound = conformance_test("clip", "clip-norm-bound", clip_cases())
test_direction = conformance_test("clip", "clip-direction", clip_cases())
test_identity_below = conformance_test("clip", "clip-identity-below", clip_cases(regime="below"))
test_idempotence = conformance_test("clip", "clip-idempotence", clip_cases(regime="above"))
test_threshold = conformance_test("clip", "clip-threshold", threshold_cases())
test_zero_max_norm = conformance_test("clip", "clip-zero-max-norm", zero_cases())
test_nonfinite = conformance_test("clip", "clip-nonfinite", nonfinite_cases())
test_isolation = conformance_test("clip", "clip-isolation", clip_cases())
