"""The one comparison helper every property goes through.

`assert_agree` compares named arrays against the float64 reference under the
tolerance table; `assert_identity` compares the two sides of a scalar identity.
Both update the running record (worst error, in tolerances) and, on failure,
write the case as a reproducer and raise `ConformanceFailure` with a message
naming property, component, parameter, framework, dtype, the worst element
(index and both values) and the replay command.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conformance import record
from conformance.case import Arrays, Case
from conformance.tolerances import allowed_error

REPRODUCER_DIR_ENV = "CONFORMANCE_REPRODUCERS"
DEFAULT_REPRODUCER_DIR = ".conformance/reproducers"


class ConformanceFailure(AssertionError):
    """Two implementations disagree beyond tolerance (or an identity does not hold)."""


@dataclass(frozen=True)
class Context:
    property: str
    component: str
    framework: str  # the implementation under test: "numpy", "torch" or "jax"
    version: str
    dtype: str
    device: str
    case: Case

    def header(self) -> str:
        return (
            f"property {self.property}, component {self.component}, framework {self.framework}"
            f" {self.version} on {self.device}, dtype {self.dtype}"
        )


def reproducer_dir() -> Path:
    return Path(os.environ.get(REPRODUCER_DIR_ENV, DEFAULT_REPRODUCER_DIR))


def write_reproducer(ctx: Context, directory: Path | None = None) -> Path:
    """Save ctx.case with what replay needs: property, framework, dtype, device."""
    directory = reproducer_dir() if directory is None else directory
    key = f"{ctx.property}|{ctx.framework}|{ctx.dtype}|{ctx.case.describe()}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    name = f"{ctx.component}-{ctx.property}-{ctx.framework}-{ctx.dtype}-{digest}.npz"
    return ctx.case.save(
        directory / name,
        property=ctx.property,
        framework=ctx.framework,
        dtype=ctx.dtype,
        device=ctx.device,
    )


def _fail(ctx: Context, detail: str) -> None:
    __tracebackhide__ = True
    path = write_reproducer(ctx)
    raise ConformanceFailure(
        f"conformance failure: {ctx.header()}\n  {detail}\n  case: {ctx.case.describe()}\n"
        f"  replay: python -m conformance replay {path}"
    )


def _observe(ctx: Context, worst: record.Worst) -> None:
    rec = record.current()
    if rec is not None:
        rec.observe(worst, ctx.case)


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
        _fail(ctx, f"{label}: {ctx.framework} returned no {missing} (it returned {sorted(actual)})")
    worst: record.Worst | None = None
    for name, r64 in reference64.items():
        a = np.asarray(actual[name])
        if a.shape != r64.shape:
            _fail(ctx, f"{label}{name}: expected shape {r64.shape}, {ctx.framework} gave {a.shape}")
        allowed = allowed_error(ctx.dtype, kind, r64, reference32[name])
        w = _worst_element(label + name, a, r64, allowed)
        w_allowed = float(allowed.reshape(-1)[0]) if allowed.size else 0.0
        if worst is None or not w.ratio <= worst.ratio:
            worst, worst_allowed = w, w_allowed
    if worst is None:
        return
    _observe(ctx, worst)
    if not worst.ratio <= 1.0:
        _fail(
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
    _observe(ctx, record.Worst(float(ratio), name, (), float(lhs), float(rhs)))
    if not ratio <= 1.0:
        _fail(
            ctx,
            f"parameter {name}: left side = {lhs!r}, right side = {rhs!r};"
            f" |difference| = {diff:.3g} = {ratio:.3g} tolerances"
            f" (allowed {allowed:.3g} = {rtol:g} x scale {scale:.3g})",
        )
