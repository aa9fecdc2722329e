"""The one comparison helper every property goes through.

`assert_agree` compares named arrays against the float64 reference under the
tolerance table; `assert_identity` compares the two sides of a scalar identity.
Both update the test's record (worst error, in tolerances; the Context carries
it) and, on failure, write the case as a reproducer to the Context's file (the report
row's, named by the run) and raise `ConformanceFailure` with a message naming
property, component, parameter, framework, dtype, the worst element (index and both
values) and the replay command of that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conformance import record
from conformance.case import Arrays, Case
from conformance.component import Component
from conformance.tolerances import allowed_error


class ConformanceFailure(AssertionError):
    """Two implementations disagree beyond tolerance (or an identity does not hold)."""


@dataclass(frozen=True)
class Context:
    """One property on one case: what is compared, and where results go."""

    property: str
    component: Component  # the case's component record (its reference runner, inputs, ...)
    framework: str  # the implementation under test: "numpy", "torch", "jax", or a plugin's
    version: str
    dtype: str
    device: str
    case: Case
    record: record.Record | None = None  # the report row this check contributes to
    reproducer: Path | None = None  # the file a failure writes its case to; None: no file

    def header(self) -> str:
        return (
            f"property {self.property}, component {self.component.name}, framework {self.framework}"
            f" {self.version} on {self.device}, dtype {self.dtype}"
        )


def write_reproducer(ctx: Context, path: Path) -> Path:
    """Save ctx.case to `path` with what replay needs: property, framework, dtype, device."""
    return ctx.case.save(
        path,
        property=ctx.property,
        framework=ctx.framework,
        dtype=ctx.dtype,
        device=ctx.device,
    )


def keep_case(ctx: Context) -> Path | None:
    """Write ctx.case to the row's reproducer file (if it has one) and note it in the record.

    Every failing example of a row writes the same file, so the last one written (the
    example hypothesis shrank to, which it raises last) is the one the message names.
    """
    if ctx.reproducer is None:
        return None
    path = write_reproducer(ctx, ctx.reproducer)
    if ctx.record is not None:
        ctx.record.reproducer = str(path)
    return path


def fail(ctx: Context, detail: str) -> None:
    """Raise ConformanceFailure for ctx with `detail`, leaving a reproducer to replay."""
    __tracebackhide__ = True
    path = keep_case(ctx)
    replay = "" if path is None else f"\n  replay: python -m conformance replay {path}"
    raise ConformanceFailure(
        f"conformance failure: {ctx.header()}\n  {detail}\n  case: {ctx.case.describe()}{replay}"
    )


def observe(ctx: Context, worst: record.Worst) -> None:
    """Count `worst` in the test's record (the row's worst error and its case)."""
    if ctx.record is not None:
        ctx.record.observe(worst, ctx.case)


def _worst_element(
    name: str, actual: np.ndarray, expected: np.ndarray, allowed: np.ndarray
) -> record.Worst:
    """The element with the largest |a - e| / allowed; mismatched NaN/inf count as infinite."""
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
    special = ~np.isfinite(a) | ~np.isfinite(e)
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.where(special, np.where(same_special, 0.0, np.inf), np.abs(a - e) / allowed)
    flat = int(np.argmax(ratio)) if ratio.size else 0
    index = tuple(int(i) for i in np.unravel_index(flat, ratio.shape)) if ratio.size else ()
    if not ratio.size:
        return record.Worst(0.0, name, (), 0.0, 0.0)
    return record.Worst(
        float(ratio.reshape(-1)[flat]), name, index, float(a.reshape(-1)[flat]),
        float(e.reshape(-1)[flat]),
    )


def assert_agree(
    ctx: Context,
    actual: Arrays,
    reference64: Arrays,
    reference32: Arrays,
    *,
    kind: str,
    label: str = "",
) -> None:
    """Every entry of reference64 is matched by actual within the tolerance for ctx.dtype.

    reference32 is the reference on the same case in float32, the error estimate
    of conformance.tolerances. `kind` is "forward", "gradient" or "state".
    """
    __tracebackhide__ = True
    missing = sorted(set(reference64) - set(actual))
    if missing:
        fail(ctx, f"{label}: {ctx.framework} returned no {missing} (it returned {sorted(actual)})")
    worst: record.Worst | None = None
    for name, r64 in reference64.items():
        a = np.asarray(actual[name])
        if a.shape != r64.shape:
            fail(ctx, f"{label}{name}: expected shape {r64.shape}, {ctx.framework} gave {a.shape}")
        allowed = allowed_error(ctx.dtype, kind, r64, reference32[name])
        w = _worst_element(label + name, a, r64, allowed)
        w_allowed = float(allowed.reshape(-1)[0]) if allowed.size else 0.0
        if worst is None or not w.ratio <= worst.ratio:
            worst, worst_allowed = w, w_allowed
    if worst is None:
        return
    observe(ctx, worst)
    if not worst.ratio <= 1.0:
        fail(
            ctx,
            f"parameter {worst.parameter}: worst element {list(worst.index)}:"
            f" {ctx.framework} = {worst.actual!r}, reference = {worst.expected!r};"
            f" |difference| = {abs(worst.actual - worst.expected):.3g} ="
            f" {worst.ratio:.3g} tolerances (allowed {worst_allowed:.3g}, {kind}, {ctx.dtype})",
        )


def assert_identity(
    ctx: Context, name: str, lhs: float, rhs: float, *, scale: float, rtol: float
) -> None:
    """|lhs - rhs| <= rtol · scale, where scale is the size of the terms summed.

    Differences below the dtype's smallest normal number are subnormal rounding
    (a gradient that vanished through 64 steps, say) and always pass.
    """
    __tracebackhide__ = True
    allowed = max(rtol * scale, float(np.finfo(ctx.dtype).tiny))
    diff = abs(lhs - rhs)
    ratio = diff / allowed if np.isfinite(diff) else float("inf")
    observe(ctx, record.Worst(float(ratio), name, (), float(lhs), float(rhs)))
    if not ratio <= 1.0:
        fail(
            ctx,
            f"parameter {name}: left side = {lhs!r}, right side = {rhs!r};"
            f" |difference| = {diff:.3g} = {ratio:.3g} tolerances"
            f" (allowed {allowed:.3g} = {rtol:g} x scale {scale:.3g})",
        )
