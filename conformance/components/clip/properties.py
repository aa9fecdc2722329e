"""Clipping properties, each under a stable id (bound to strategies in conformance.components.clip).

M is max_norm (v the clip value), n = ‖g‖ the pre-clip norm, c the coefficient:
  clip-agreement       clipped tensors, norm and error flag vs the reference under the framework's convention
  clip-norm-bound      ‖clip(g)‖ <= M (max |clip(g)| <= v), within rounding
  clip-direction       clip(g) = c g with one c in [0, 1] (by value: no sign flips, no growth)
  clip-identity-below  M >= 2 ‖g‖₂ (v >= 2 max|g|): every tensor comes back bit for bit
  clip-idempotence     clip(clip(g)) = clip(g): within rounding, and within eps / M for torch's eps
  clip-threshold       n == M exactly: torch scales by M / (M + eps), optax rescales by M / n = 1
  clip-zero-max-norm   M = 0: gradients come back as zeros (finite), the norm as computed
  clip-nonfinite       inf / NaN entries: agreement, and NaN norm -> all NaN, inf norm -> finite
                       entries 0 and infinite ones NaN (tensorflow: all NaN), error_if_nonfinite
                       -> an error
  clip-isolation       parameters, autograd's saved activations and the unclipped copy unchanged
  clip-concatenated    one call on the tensors' concatenation (one long tensor) against the call on
                       the tensors: the same norm, and split back, the same clipped tensors, within
                       the rounding of the norm's other summation order (conformance.paths)
Non-finite values are compared through `split_special` (finite part and a code per entry,
the codes exactly), so that a NaN in one entry leaves the others their own bounds.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from conformance.backend import Backend
from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree, assert_identity, exact
from conformance.component import Property
from conformance.components.clip.reference import WITNESSES, ClipCaseSpec, primary
from conformance.paths import agree_with_twin
from conformance.tolerances import EPS, IDENTITY_RTOL

SPECIAL = {"finite": 0.0, "nan": 1.0, "+inf": 2.0, "-inf": 3.0}
EXACT = {dtype: eps / 4 for dtype, eps in EPS.items()}  # below one rounding: bit for bit


def split_special(arrays: Arrays) -> Arrays:
    """Each array as its finite part (non-finite entries 0) and a code per entry (SPECIAL)."""
    out: Arrays = {}
    for k, a in arrays.items():
        out[k] = np.where(np.isfinite(a), a, 0.0)
        code = np.where(np.isnan(a), SPECIAL["nan"], np.where(np.isposinf(a), SPECIAL["+inf"], 0.0))
        out[f"{k} (non-finite code)"] = np.where(np.isneginf(a), SPECIAL["-inf"], code)
    return out


def split_bound(bound: Arrays) -> Arrays:
    """A bound shaped like split_special's output: the finite part's, and 0 for the codes."""
    return {**bound, **{f"{k} (non-finite code)": np.zeros_like(v) for k, v in bound.items()}}


def tensors(outputs: Arrays, prefix: str = "clipped/") -> Arrays:
    return {k[len(prefix) :]: v for k, v in outputs.items() if k.startswith(prefix)}


def seen(case: Case, arrays: Arrays) -> Arrays:
    """The arrays as the implementation sees them: rounded to the dtype under test."""
    return {k: v.astype(case.spec.dtype).astype(np.float64) for k, v in arrays.items()}


def norm_of(arrays: Arrays, order: float) -> float:
    flat = np.concatenate([a.reshape(-1) for a in arrays.values()])
    return float(np.max(np.abs(flat)) if math.isinf(order) else np.sqrt(np.sum(flat**2)))


def agree(ctx: Context, outputs: Arrays, case: Case) -> None:
    """The primary outputs against the reference pair on `case`."""
    r64, bound = reference_and_bound(ctx.component, case)
    assert_agree(
        ctx,
        split_special(primary(outputs)),
        split_special(primary(r64.outputs)),
        split_bound(primary(bound.outputs)),
        kind="forward",
        label="output ",
    )


def assert_same(ctx: Context, label: str, actual: Arrays, expected: Arrays, rtol: float) -> None:
    """Per tensor, the worst element: |a - e| <= rtol · max |e| (NaN never passes)."""
    for k, e in expected.items():
        a = actual[k]
        if a.size == 0:
            continue
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isnan(a) | np.isnan(e), np.inf, np.abs(a - e))
        worst = np.unravel_index(np.argmax(diff), a.shape)
        where = f"{label}{k}{list(map(int, worst))}"
        scale = float(np.max(np.abs(e))) or 1.0  # all zeros: rtol in absolute terms
        assert_identity(ctx, where, float(a[worst]), float(e[worst]), scale=scale, rtol=rtol)


def with_threshold(case: Case, value: float) -> Case:
    field = "max_norm" if case.spec.kind == "global_norm" else "clip_value"
    return replace(case, spec=replace(case.spec, **{field: float(value)}))


def clip_agreement(ctx: Context, backend: Backend) -> None:
    agree(ctx, backend.run(ctx.case).outputs, ctx.case)


def clip_norm_bound(ctx: Context, backend: Backend) -> None:
    spec: ClipCaseSpec = ctx.case.spec
    clipped = tensors(backend.run(ctx.case).outputs)
    order = spec.norm_type if spec.kind == "global_norm" else math.inf
    excess = max(norm_of(clipped, order) - spec.threshold, 0.0)
    assert_identity(
        ctx,
        f"‖clip(g)‖ - {spec.threshold:.6g} (excess over the threshold)",
        excess,
        0.0,
        scale=spec.threshold,
        rtol=IDENTITY_RTOL[ctx.dtype],
    )


def clip_direction(ctx: Context, backend: Backend) -> None:
    spec: ClipCaseSpec = ctx.case.spec
    g = seen(ctx.case, ctx.case.inputs)
    clipped = tensors(backend.run(ctx.case).outputs)
    rtol = IDENTITY_RTOL[ctx.dtype]
    if spec.kind == "value":
        for k in g:
            grown = np.maximum(np.abs(clipped[k]) - np.abs(g[k]), 0.0)
            flipped = np.where(clipped[k] * g[k] < 0, np.abs(clipped[k]), 0.0)
            assert_identity(
                ctx,
                f"{k} (growth or sign flip)",
                float(np.max(grown + flipped)),
                0.0,
                scale=float(np.max(np.abs(g[k]))),
                rtol=rtol,
            )
        return
    c = sum(float(np.sum(clipped[k] * g[k])) for k in g) / sum(float(np.sum(g[k] ** 2)) for k in g)
    assert_identity(ctx, "coefficient c outside [0, 1]", c - min(max(c, 0.0), 1.0), 0.0, scale=1.0, rtol=rtol)
    assert_same(ctx, "clip(g) - c g: ", clipped, {k: c * v for k, v in g.items()}, rtol)


def clip_identity_below(ctx: Context, backend: Backend) -> None:
    got = backend.run(ctx.case).outputs
    assert_same(ctx, "clip(g) vs g: ", tensors(got), seen(ctx.case, ctx.case.inputs), EXACT[ctx.dtype])


def clip_idempotence(ctx: Context, backend: Backend) -> None:
    spec: ClipCaseSpec = ctx.case.spec
    once = tensors(backend.run(ctx.case).outputs)
    twice = tensors(backend.run(replace(ctx.case, inputs=once)).outputs)
    rtol = IDENTITY_RTOL[ctx.dtype]
    if spec.kind == "global_norm" and spec.convention == "torch":
        rtol += spec.eps / spec.threshold  # each pass shrinks by another factor >= 1 - eps / M
    assert_same(ctx, "clip(clip(g)) vs clip(g): ", twice, once, rtol)


def clip_threshold(ctx: Context, backend: Backend) -> None:
    """M set to the exact norm of the case (exact_norm_grads), then the convention's closed form."""
    spec: ClipCaseSpec = ctx.case.spec
    g = seen(ctx.case, ctx.case.inputs)
    order = spec.norm_type if spec.kind == "global_norm" else math.inf
    M = norm_of(g, order)
    case = with_threshold(ctx.case, M)
    got = backend.run(case).outputs
    agree(ctx, got, case)
    dtype = np.dtype(spec.dtype).type
    if spec.kind == "global_norm" and spec.convention == "torch":
        c = float(min(dtype(M) / (dtype(M) + dtype(spec.eps)), dtype(1.0)))  # M / (M + eps) < 1
        rtol = 2 * EPS[ctx.dtype]  # torch forms reciprocal(n + eps) · M: an ulp from M / (n + eps)
    elif spec.kind == "global_norm":
        c, rtol = 1.0, 2 * EPS[ctx.dtype]  # optax: (g / n) · M, two roundings of g
    else:
        c, rtol = 1.0, EXACT[ctx.dtype]  # clamp(g, -v, v) at v = max |g|: g itself
    assert_same(
        ctx, f"clip(g) at n == M = {M:.6g} vs {c!r} g: ", tensors(got), {k: c * v for k, v in g.items()}, rtol
    )


def clip_zero_max_norm(ctx: Context, backend: Backend) -> None:
    got = backend.run(ctx.case).outputs
    agree(ctx, got, ctx.case)  # the framework matches the reference's model of its arithmetic
    zeros = {k: np.zeros_like(v) for k, v in ctx.case.inputs.items()}
    assert_agree(
        ctx,
        split_special(tensors(got)),
        split_special(zeros),
        exact(split_special(zeros)),
        kind="forward",
        label="clip(g) with M = 0 vs zeros: ",
    )


def expected_nonfinite(spec: ClipCaseSpec, g: Arrays) -> Arrays:
    """What each convention gives on non-finite gradients (refimpl.clip: nan-norm, infinite-norm,
    tensorflow-nonfinite-scale)."""
    flat = np.concatenate([a.reshape(-1) for a in g.values()])
    if spec.kind == "value":  # exact at the threshold as the dtype holds it
        v = float(np.dtype(spec.dtype).type(spec.threshold))
        return {k: np.clip(a, -v, v) for k, a in g.items()}
    if np.isnan(flat).any() or spec.convention == "tensorflow":  # NaN < M is false, M / NaN is NaN;
        return {k: np.full_like(a, np.nan) for k, a in g.items()}  # tensorflow adds n - n = NaN
    return {k: np.where(np.isfinite(a), np.copysign(0.0, a), np.nan) for k, a in g.items()}  # n = inf


def clip_nonfinite(ctx: Context, backend: Backend) -> None:
    spec: ClipCaseSpec = ctx.case.spec
    got = backend.run(ctx.case).outputs
    agree(ctx, got, ctx.case)
    raised = float(got["nonfinite_error"])
    must_raise = float(spec.kind == "global_norm" and spec.error_if_nonfinite)
    assert_identity(
        ctx, "nonfinite_error (raised on a non-finite norm)", raised, must_raise, scale=1.0, rtol=0.5
    )
    if not raised:
        expected = split_special(expected_nonfinite(spec, seen(ctx.case, ctx.case.inputs)))
        assert_agree(
            ctx,
            split_special(tensors(got)),
            expected,
            exact(expected),
            kind="forward",
            label="clip(g) with non-finite g: ",
        )


def clip_isolation(ctx: Context, backend: Backend) -> None:
    got = backend.run(ctx.case).outputs
    originals = {"unclipped/": ctx.case.inputs, "param/": ctx.case.params, "activation/": ctx.case.inputs}
    if not tensors(got, "unclipped/"):
        assert_identity(ctx, "unclipped/* (no witness returned)", 1.0, 0.0, scale=1.0, rtol=0.5)
    for prefix in WITNESSES:
        witness = tensors(got, prefix)
        if witness:
            assert_same(ctx, prefix, witness, seen(ctx.case, originals[prefix]), EXACT[ctx.dtype])


# ---------------------------------------------------------------- the properties, by id


def clip_concatenated(ctx: Context, backend: Backend) -> None:
    case = ctx.case
    shapes = {k: v.shape for k, v in case.inputs.items()}

    def joined(arrays: Arrays) -> Arrays:
        return {"all": np.concatenate([a.reshape(-1) for a in arrays.values()])}

    long = replace(case, inputs=joined(case.inputs), params=joined(case.params))
    whole = backend.run(long).outputs
    pieces = np.split(whole["clipped/all"], np.cumsum([math.prod(s) for s in shapes.values()])[:-1])
    split = {f"clipped/{k}": piece.reshape(shapes[k]) for k, piece in zip(shapes, pieces, strict=True)}
    split.update({k: v for k, v in whole.items() if k in ("norm", "nonfinite_error")})
    _, bound = reference_and_bound(ctx.component, case)
    agree_with_twin(
        ctx,
        split,
        primary(backend.run(case).outputs),
        primary(bound.outputs),
        kind="forward",
        label="the concatenation vs the tensors: output ",
    )


CLIP_AGREEMENT = Property("clip-agreement", clip_agreement, frameworks_only=True, low_precision=True)
CLIP_NORM_BOUND = Property("clip-norm-bound", clip_norm_bound)
CLIP_DIRECTION = Property("clip-direction", clip_direction)
CLIP_IDENTITY_BELOW = Property("clip-identity-below", clip_identity_below)
CLIP_IDEMPOTENCE = Property("clip-idempotence", clip_idempotence)
CLIP_THRESHOLD = Property("clip-threshold", clip_threshold)
CLIP_ZERO_MAX_NORM = Property("clip-zero-max-norm", clip_zero_max_norm)
CLIP_NONFINITE = Property("clip-nonfinite", clip_nonfinite)
CLIP_ISOLATION = Property("clip-isolation", clip_isolation)
CLIP_CONCATENATED = Property("clip-concatenated", clip_concatenated)
