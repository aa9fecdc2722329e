"""Sizes and memory layouts: the answer must not depend on either.

A vectorized kernel runs its body over whole vector registers (4 or 8 float64, 8 or 16
float32, often unrolled four times) and a scalar tail over what is left; BLAS and XLA
pick kernels by size and by the layout of their operands. `VECTOR_WIDTHS` are sizes on
both sides of those boundaries (1, a register's worth and one more or less, ..., 129),
drawn for the innermost dimension and the batch, so the body and the tail both run.

A case's `meta["layout"]` says how the framework receives its inputs; the adapter builds
it with the framework's own operations (and lists what it honours in its capability
`layouts(case, device)`):

  contiguous   row-major, as drawn (what a case without the field runs)
  strided      a view of every other element along the last axis of a tensor twice as
               wide (torch: `repeat_interleave(2)[..., ::2]`, strides (2D, 2); JAX: the
               strided slice inside the compiled program, differentiated through)
  transposed   stored in the reverse axis order and handed over transposed (torch:
               `.permute` of a contiguous tensor, strides reversed; JAX: the transpose
               inside the program)
  reordered    the layer built for the other axis order and fed its input that way
               (the RNN: torch `nn.RNN(batch_first=True)` on (N, T, D), flax
               `nn.RNN(time_major=True)` on (T, N, D))

Ids:
  size-agreement     outputs, gradients (random upstream) and state against the reference
                     at sizes that cross vector widths, under the case's layout
  layout-invariance  the same case in every layout the adapter honours gives the contiguous
                     answer within rounding, not bit for bit: a transposed operand may send a
                     product to another kernel (BLAS's transposed-operand path, another XLA
                     layout) that sums in another order, which neither framework rules out
"""

from __future__ import annotations

import numpy as np

from conformance.backend import Backend, Unsupported
from conformance.bounds import reference_and_bound
from conformance.case import Case
from conformance.compare import Context, assert_agree
from conformance.component import NotApplicable, Property
from conformance.paths import agree_outcomes, offered, with_meta
from conformance.properties import upstream

VECTOR_WIDTHS = (1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129)
LAYOUTS = ("contiguous", "strided", "transposed", "reordered")


def layout_of(meta: dict[str, object]) -> str:
    """meta["layout"], "contiguous" when absent; an unknown name is a ValueError naming it."""
    layout = meta.get("layout", "contiguous")
    if layout not in LAYOUTS:
        raise ValueError(f"meta['layout']: expected one of {list(LAYOUTS)}, received {layout!r}")
    return str(layout)


def _cotangents(ctx: Context) -> dict[str, np.ndarray] | None:
    return upstream(ctx.case) if ctx.component.inputs else None  # clipping differentiates nothing


def honoured(case: Case, backend: Backend) -> Case:
    """The case in its layout if the adapter honours it (capability `layouts`), else contiguous."""
    layout = layout_of(case.meta)
    try:
        layouts = tuple(backend.call(case, "layouts")) if layout != "contiguous" else (layout,)
    except Unsupported:
        layouts = ("contiguous",)
    return case if layout in layouts else with_meta(case, layout="contiguous")


def size_agreement(ctx: Context, backend: Backend) -> None:
    """At the case's sizes, in its layout where the adapter honours it (contiguous elsewhere)."""
    case = honoured(ctx.case, backend)
    cot = _cotangents(ctx)
    r64, bound = reference_and_bound(ctx.component, case, cot)
    got = backend.run(case, cot)
    label = f"layout {layout_of(case.meta)}: "
    assert_agree(ctx, got.outputs, r64.outputs, bound.outputs, kind="forward", label=label + "output ")
    if r64.grads:
        assert_agree(ctx, got.grads, r64.grads, bound.grads, kind="gradient", label=label)
    if r64.state:
        assert_agree(ctx, got.state, r64.state, bound.state, kind="state", label=label + "state ")


def layout_invariance(ctx: Context, backend: Backend) -> None:
    """Every layout the adapter honours and the case allows (meta "layouts", default all)."""
    allowed = ctx.case.meta.get("layouts", LAYOUTS)
    honoured = tuple(lay for lay in offered(ctx, backend, "layouts") if lay != "contiguous")
    layouts = tuple(lay for lay in honoured if lay in allowed)
    if not layouts:
        raise NotApplicable(
            f"layout-invariance: {ctx.framework}'s adapter for {ctx.component.name}"
            f" honours {list(honoured)} beside the contiguous layout, this profile"
            f" runs {list(allowed)} here"
        )
    cot = _cotangents(ctx)
    base_case = with_meta(ctx.case, layout="contiguous")
    _, bound = reference_and_bound(ctx.component, base_case, cot)
    base = backend.run(base_case, cot)
    for layout in layouts:
        twin = backend.run(with_meta(ctx.case, layout=layout), cot)
        agree_outcomes(ctx, twin, base, bound, f"layout {layout} vs contiguous:")


SIZE_AGREEMENT = Property("size-agreement", size_agreement, frameworks_only=True)
LAYOUT_INVARIANCE = Property("layout-invariance", layout_invariance, frameworks_only=True)
