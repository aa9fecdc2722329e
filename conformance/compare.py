"""The one comparison helper every property goes through.

`assert_agree` compares named arrays against the float64 reference under the
tolerance table (a rounding bound per entry, conformance.tolerances); `assert_identity`
compares the two sides of a scalar identity. Both update the test's record (worst error,
in tolerances; the Context carries it) and, on failure, write the case as a reproducer to
the Context's file (the report row's, named by the run) and raise `ConformanceFailure`,
whose message names property, component, parameter, framework, dtype, the worst element
(index, both values, the tensor's size and its magnitude against the comparison's largest
entry), the bound split into its terms, the case (spec, shapes, seed) and the replay
command. The failure also carries these as data (`context`, `worst`, `reproducer`):
conformance.runner.arbitrate reruns the case and says "rounding" or "disagreement" in front.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conformance import record
from conformance.case import Arrays, Case
from conformance.component import Component
from conformance.tolerances import PRECISIONS, Allowed, allowed_error


class ConformanceFailure(AssertionError):
    """Two implementations disagree beyond tolerance (or an identity does not hold)."""

    def __init__(
        self,
        message: str,
        context: Context | None = None,
        detail: str = "",
        worst: record.Worst | None = None,
        reproducer: Path | None = None,
        verdict: str = "",
    ) -> None:
        super().__init__(message)
        self.context = context  # the property, framework, dtype and case that failed
        self.detail = detail  # the message's lines about what differs
        self.worst = worst
        self.reproducer = reproducer
        self.verdict = verdict  # "rounding" or "disagreement" once arbitrated (conformance.runner)


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

    Every failing example of a row writes the same file, so the last one written is the
    one the message names; conformance.runner.conclude writes the case of the failure it
    raises once more, so that holds when hypothesis found several failures too.
    """
    if ctx.reproducer is None:
        return None
    path = write_reproducer(ctx, ctx.reproducer)
    if ctx.record is not None:
        ctx.record.reproducer = str(path)
    return path


def failure_message(ctx: Context, detail: str, reproducer: Path | None, first: str = "") -> str:
    """The compact message: [first line,] what ran, the detail, the case, the replay command."""
    lines = [first] if first else []
    lines += [f"conformance failure: {ctx.header()}", detail, f"case: {ctx.case.describe()}"]
    if reproducer is not None:
        lines.append(f"replay: python -m conformance replay {reproducer}")
    return "\n  ".join(lines)


def fail(ctx: Context, detail: str, worst: record.Worst | None = None) -> None:
    """Raise ConformanceFailure for ctx with `detail`, leaving a reproducer to replay."""
    __tracebackhide__ = True
    path = keep_case(ctx)
    raise ConformanceFailure(failure_message(ctx, detail, path), ctx, detail, worst, path)


def observe(ctx: Context, worst: record.Worst) -> None:
    """Count `worst` in the test's record (the row's worst error and its case)."""
    if ctx.record is not None:
        ctx.record.observe(worst, ctx.case)


def _worst_element(
    name: str, actual: np.ndarray, expected: np.ndarray, allowed: np.ndarray, overflow: float = np.inf
) -> tuple[record.Worst, int]:
    """The element with the largest |a - e| / allowed (mismatched NaN/inf count as infinite),
    and its flat index. An infinite a of e's sign agrees where |e| + allowed reaches
    `overflow` (the dtype's, Precision.overflow): there ±inf is the dtype's rounding of e."""
    if not expected.size:
        return record.Worst(0.0, name, (), 0.0, 0.0), 0
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    with np.errstate(invalid="ignore"):
        overflowed = np.isinf(a) & (np.sign(a) == np.sign(e)) & (np.abs(e) + allowed >= overflow)
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e)) | overflowed
    special = ~np.isfinite(a) | ~np.isfinite(e)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ratio = np.where(special, np.where(same_special, 0.0, np.inf), np.abs(a - e) / allowed)
    flat = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
    worst = record.Worst(
        float(ratio.reshape(-1)[flat]), name, index, float(a.reshape(-1)[flat]), float(e.reshape(-1)[flat])
    )
    return worst, flat


def _largest(arrays: Arrays) -> float:
    finite = [np.abs(v[np.isfinite(v)]) for v in arrays.values() if np.size(v)]
    return max((float(np.max(f)) for f in finite if f.size), default=0.0)


def agreement_detail(
    ctx: Context, worst: record.Worst, r64: np.ndarray, allowed: Allowed, flat: int, largest: float, kind: str
) -> str:
    """The worst element with its tensor's size and magnitude, and the bound's terms there."""
    size = float(np.max(np.abs(r64[np.isfinite(r64)]), initial=0.0))
    share = f"{size / largest:.2g} of the largest {kind} entry, {largest:.3g}" if largest else "all 0"
    terms = (
        float(allowed.rounding.reshape(-1)[flat]),
        float(allowed.reference.reshape(-1)[flat]),
        allowed.floor,
    )
    return (
        f"parameter {worst.parameter}: worst element {list(worst.index)} of {r64.size} entries"
        f" (max |{worst.parameter.split()[-1]}| = {size:.3g}, {share}):"
        f" {ctx.framework} = {worst.actual!r}, reference = {worst.expected!r};"
        f" |difference| = {abs(worst.actual - worst.expected):.3g} = {worst.ratio:.3g} tolerances\n"
        f"  allowed {sum(terms):.3g} = {ctx.dtype} rounding {terms[0]:.3g} + reference float64"
        f" rounding {terms[1]:.3g} + floor {terms[2]:.3g} ({kind}; conformance/tolerances.py)"
    )


def assert_agree(
    ctx: Context, actual: Arrays, reference64: Arrays, bound: Arrays, *, kind: str, label: str = ""
) -> None:
    """Every entry of reference64 is matched by actual within its allowed error in ctx.dtype.

    `bound` holds the rounding bound B_d of every entry (conformance.bounds, or zeros where
    the expected values are exact); `kind` ("forward", "gradient", "state") names what is
    compared in the message.
    """
    __tracebackhide__ = True
    missing = sorted(set(reference64) - set(actual))
    if missing:
        fail(ctx, f"{label}: {ctx.framework} returned no {missing} (it returned {sorted(actual)})")
    largest = _largest(reference64)
    found: tuple[record.Worst, str, int, Allowed] | None = None
    for name, r64 in reference64.items():
        a = np.asarray(actual[name])
        if a.shape != r64.shape:
            fail(ctx, f"{label}{name}: expected shape {r64.shape}, {ctx.framework} gave {a.shape}")
        allowed = allowed_error(ctx.dtype, np.broadcast_to(bound[name], r64.shape))
        w, flat = _worst_element(label + name, a, r64, allowed.total, PRECISIONS[ctx.dtype].overflow)
        if found is None or not w.ratio <= found[0].ratio:
            found = (w, name, flat, allowed)
    if found is None:
        return
    worst, name, flat, allowed = found
    observe(ctx, worst)
    if not worst.ratio <= 1.0:
        fail(ctx, agreement_detail(ctx, worst, reference64[name], allowed, flat, largest, kind), worst)


def assert_identity(ctx: Context, name: str, lhs: float, rhs: float, *, scale: float, rtol: float) -> None:
    """|lhs - rhs| <= rtol · scale, where scale is the size of the terms summed.

    Differences below the dtype's smallest normal number are subnormal rounding (a
    gradient that vanished through 64 steps, say) and always pass.
    """
    __tracebackhide__ = True
    allowed = max(rtol * scale, PRECISIONS[ctx.dtype].smallest_normal)
    diff = abs(lhs - rhs)
    ratio = diff / allowed if np.isfinite(diff) else float("inf")
    worst = record.Worst(float(ratio), name, (), float(lhs), float(rhs))
    observe(ctx, worst)
    if not ratio <= 1.0:
        fail(
            ctx,
            f"parameter {name}: left side = {lhs!r}, right side = {rhs!r};"
            f" |difference| = {diff:.3g} = {ratio:.3g} tolerances"
            f" (allowed {allowed:.3g} = {rtol:g} x scale {scale:.3g})",
            worst,
        )


def exact(expected: Arrays) -> Arrays:
    """The bound of values every implementation must produce exactly (zeros): only the floor."""
    return {k: np.zeros(np.shape(v)) for k, v in expected.items()}
