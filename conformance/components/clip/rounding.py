"""Clipping's rounding bound: refimpl.clip in conformance.rounding's arithmetic.

With g every gradient entry rounded to the dtype and M, v, eps the constants:

    n = √(Σ g²) (one sum over every entry of every tensor, any grouping), or max |g|
    by value   clamp(g, -v, v)                1-Lipschitz: the larger of g's and v's bound
    torch      c = min(M · 1/(n + eps), 1),   g c
    optax      g if n < M else (g / n) M      either branch where n may fall on either side of M
    tensorflow s = M min(1/n, 1/M),           g s

Entries the reference computes as non-finite (a NaN or infinite norm, NaN inputs) are
compared by their codes, exactly: their bound is 0, as is that of nonfinite_error.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.clip.reference import ClipCaseSpec
from conformance.rounding import Arithmetic, Uncertain
from refimpl.clip import ClipSpec


def global_norm(ar: Arithmetic, grads: dict[str, Uncertain], order: float) -> Uncertain:
    """‖g‖ of order 2 or inf over every tensor, as if concatenated."""
    flat = ar.concatenate(list(grads.values()))
    if math.isinf(order):
        return ar.max(Uncertain(np.abs(flat.v), np.abs(flat.v + flat.d) - np.abs(flat.v)), axis=0)
    return ar.norm2(flat)


def clipped(
    ar: Arithmetic, spec: ClipSpec, grads: dict[str, Uncertain]
) -> tuple[dict[str, Uncertain], Uncertain]:
    """(clipped gradients, pre-clip norm of order spec.norm_type) with their deviations."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        norm = global_norm(ar, grads, spec.norm_type) if grads else ar.exact(0.0)
        if spec.kind == "value":
            assert spec.clip_value is not None  # ClipSpec's validation, for kind "value"
            v = ar.rounded(spec.clip_value)
            return {k: ar.clamp(g, v) for k, g in grads.items()}, norm
        assert spec.max_norm is not None  # ClipSpec's validation, for kind "global_norm"
        M = ar.rounded(spec.max_norm)
        if spec.convention == "torch":
            quotient = ar.mul(M, ar.div(ar.exact(1.0), ar.add(norm, ar.rounded(spec.eps))))
            one = ar.exact(1.0)
            coef = ar.select(quotient, one, quotient, one, threshold=1.0)
            return {k: ar.mul(g, coef) for k, g in grads.items()}, norm
        if spec.convention == "tensorflow":  # M min(1/n, 1/M) (+ n - n, 0 for a finite n)
            inverse_n, inverse_M = ar.div(ar.exact(1.0), norm), ar.div(ar.exact(1.0), M)
            smaller = ar.select(ar.sub(inverse_n, inverse_M), inverse_M, inverse_n, inverse_n)
            scale = ar.mul(M, smaller)
            return {k: ar.mul(g, scale) for k, g in grads.items()}, norm
        gap = ar.sub(norm, M)
        return {
            k: ar.select(gap, scaled, g, scaled)
            for k, g in grads.items()
            for scaled in [ar.mul(ar.div(g, norm), M)]
        }, norm


def clip_rounding(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """Rounding bounds for clip_reference's outputs; no gradients."""
    spec: ClipCaseSpec = case.spec
    ar = Arithmetic(spec.dtype)
    grads = {k: ar.rounded(v) for k, v in case.inputs.items()}
    out, norm = clipped(ar, spec.clip_spec(), grads)
    nonfinite = spec.kind == "global_norm" and not np.isfinite(norm.v)  # every entry 0 or NaN
    if nonfinite and spec.error_if_nonfinite:
        return Outcome({"nonfinite_error": np.zeros(())}, {}, {})

    def bound(x: Uncertain) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            b = ar.bound(x)
        return np.zeros_like(x.v) if nonfinite else np.where(np.isfinite(x.v) & np.isfinite(b), b, 0.0)

    outputs = {f"clipped/{k}": bound(x) for k, x in out.items()}
    if spec.kind == "global_norm":
        outputs["norm"] = np.asarray(bound(norm))
    outputs["nonfinite_error"] = np.zeros(())
    outputs.update({f"unclipped/{k}": bound(g) for k, g in grads.items()})
    return Outcome(outputs, {}, {})
