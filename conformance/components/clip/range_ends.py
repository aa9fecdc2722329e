"""Clipping at the ends of each dtype's range: gradients whose squares overflow or underflow
the dtype though their norm does not (docs/findings/range-ends.md, R1-R7).

    clip-range-ends-overflow    ‖g‖ representable, g² not:  float64 [1e200, 1], [1e300, 1];
                                float32 and bfloat16 [1e20, 1], [3e38, 3e38]; float16 [300, 1],
                                [4e4, 4e4] (squares beyond 65504, norms 300 and 5.7e4)
    clip-range-ends-underflow   g² below the dtype's smallest subnormal, ‖g‖ a normal number:
                                float64 [1e-200, 1e-200]; float32 and bfloat16 [1e-30, -1e-30];
                                float16 [1e-4, -1e-4]; with M = 1 (nothing to clip), M = 0
                                (everything to 0) and M just below ‖g‖

The math defines the answer: the reference (refimpl.clip, which scales before squaring as
LAPACK's nrm2) in float64 on the numbers the dtype holds, under the framework's convention,
its norm rounded to the dtype (a float32 norm of 4.2e38 can only be inf). A result within
RANGE_ENDS_ULPS of it agrees (tolerances.py); an infinite norm that turns every entry into 0,
or a norm that underflowed to 0, does not. The cases are fixed per dtype (the profile's): a
strategy draws one of them and torch's `foreach` path.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from conformance.backend import Backend
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree
from conformance.component import Property
from conformance.components.clip.properties import split_bound, split_special
from conformance.components.clip.reference import ClipCaseSpec, primary
from conformance.dtypes import round_to
from conformance.profiles import Profile
from conformance.tolerances import RANGE_ENDS_ULPS, precision

Cases = tuple[tuple[tuple[float, ...], float], ...]  # ((gradient entries, M), ...)
_LARGE32: Cases = (((1e20, 1.0), 1.0), ((3e38, 3e38), 1.0))
OVERFLOW: dict[str, Cases] = {
    "float64": (((1e200, 1.0), 1.0), ((1e300, 1.0), 1e-20)),
    "float32": _LARGE32,
    "bfloat16": _LARGE32,
    "float16": (((300.0, 1.0), 1.0), ((4e4, 4e4), 1.0)),
}
_SMALL32: Cases = (((1e-30, -1e-30), 1.0), ((1e-30, -1e-30), 0.0), ((1e-30, -1e-30), 1e-30))
UNDERFLOW: dict[str, Cases] = {
    "float64": (((1e-200, 1e-200), 1e-201), ((1e-200, -1e-200), 0.0), ((1e-200, 1e-200), 1.0)),
    "float32": _SMALL32,
    "bfloat16": _SMALL32,
    "float16": (((1e-4, -1e-4), 1.0), ((1e-4, -1e-4), 0.0), ((1e-4, -1e-4), 1e-4)),
}


def range_case(dtype: str, grad: tuple[float, ...], max_norm: float, foreach: bool, seed: int) -> Case:
    """One gradient tensor "g" as the dtype holds it, parameters of ones."""
    g = round_to({"g": np.array(grad, np.float64)}, dtype)
    spec = ClipCaseSpec(max_norm=max_norm, foreach=foreach, dtype=dtype)
    return Case("clip", spec, {"g": np.ones(len(grad))}, g, seed=seed)


@st.composite
def overflow_cases(draw: st.DrawFn, profile: Profile) -> Case:
    grad, M = draw(st.sampled_from(OVERFLOW[profile.dtype]))
    return range_case(profile.dtype, grad, M, draw(st.booleans()), 0)


@st.composite
def underflow_cases(draw: st.DrawFn, profile: Profile) -> Case:
    grad, M = draw(st.sampled_from(UNDERFLOW[profile.dtype]))
    return range_case(profile.dtype, grad, M, draw(st.booleans()), 0)


def expected(ctx: Context) -> Arrays:
    """The reference in float64 on the case's numbers, each output rounded to the dtype."""
    r64 = ctx.component.reference(ctx.case.with_dtype("float64"), None)
    return round_to(primary(r64.outputs), ctx.dtype)


def clip_range_ends(ctx: Context, backend: Backend) -> None:
    want = expected(ctx)
    got = primary(backend.run(ctx.case).outputs)
    ulps = RANGE_ENDS_ULPS * precision(ctx.dtype).eps
    bound = {k: ulps * np.abs(np.where(np.isfinite(v), v, 0.0)) for k, v in want.items()}
    assert_agree(
        ctx,
        split_special(got),
        split_special(want),
        split_bound(bound),
        kind="forward",
        label=f"‖g‖ at the end of the {ctx.dtype} range, output ",
    )


CLIP_RANGE_OVERFLOW = Property(
    "clip-range-ends-overflow", clip_range_ends, frameworks_only=True, low_precision=True
)
CLIP_RANGE_UNDERFLOW = Property(
    "clip-range-ends-underflow", clip_range_ends, frameworks_only=True, low_precision=True
)
