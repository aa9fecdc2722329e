"""Clipping's boundary cases for `python -m conformance stress`.

One-element and 0-d tensors beside larger ones, every norm type, convention and torch
path, thresholds at and just around the norm (ratios 0.999, 1, 1.001, where the branch
can go either way), gradients from 1e-18 to 1e15 (the ends of float32's range, where
the reference rescales and the frameworks do not, are docs/findings/range-ends.md's), and
non-finite entries.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from conformance.case import Case
from conformance.component import Boundary
from conformance.components.clip import properties as cp
from conformance.components.clip.reference import ClipCaseSpec
from conformance.components.clip.strategies import Layout, clip_case, with_threshold


class Shape(NamedTuple):
    layout: Layout
    spec: ClipCaseSpec
    nonfinite: bool = False


def case(shape: Shape, seed: int) -> Case:
    """Gradients of scale 10^U(-18, 15) (a third of the seeds; float32 squares stay normal, the
    range where every framework sums them plainly), or 10^U(-3, 3), the threshold at a ratio
    of the norm from (0.5, 0.999, 1, 1.001, 2)."""
    rng = np.random.default_rng([seed, 0xB0])
    ratio = float(rng.choice([0.5, 0.999, 1.0, 1.001, 2.0]))
    drawn = clip_case(shape.spec, shape.layout, seed, ratio=ratio)
    if seed % 3 == 0:
        largest = max(float(np.max(np.abs(v), initial=0.0)) for v in drawn.inputs.values())
        factor = 10 ** rng.uniform(-18, 15) / max(largest, 1e-300)
        drawn = replace(
            drawn,
            inputs={k: np.asarray(v * factor) for k, v in drawn.inputs.items()},
            spec=with_threshold(drawn.spec, drawn.spec.threshold * factor),
        )
    if shape.nonfinite:
        grads = {k: v.copy() for k, v in drawn.inputs.items()}
        flat = grads[next(iter(grads))].reshape(-1)
        flat[int(rng.integers(flat.size))] = rng.choice([np.nan, np.inf, -np.inf])
        drawn = replace(drawn, inputs=grads)
    return drawn


ONE = (("b", (1,)),)
# fmt: off
LAYOUTS: tuple[Layout, ...] = (
    ONE,
    (("scale", ()),),
    (("W", (1, 1)), ("b", (1,))),
    (("W1", (3, 2)), ("b1", (3,)), ("s", ())),
    (("w", (7,)), ("k", (2, 2, 2))),
)
SPECS = (
    ClipCaseSpec("global_norm", 1.0, None, 2.0, "torch", foreach=True),
    ClipCaseSpec("global_norm", 1.0, None, 2.0, "torch", foreach=False),
    ClipCaseSpec("global_norm", 1.0, None, math.inf, "torch"),
    ClipCaseSpec("global_norm", 1.0, None, 2.0, "optax"),
    ClipCaseSpec("value", None, 1.0, 2.0, "torch"),
    ClipCaseSpec("value", None, 1.0, 2.0, "optax"),
)
# fmt: on
SHAPES = tuple(Shape(layout, spec) for layout in LAYOUTS for spec in SPECS) + tuple(
    Shape(layout, spec, nonfinite=True) for layout in LAYOUTS[2:4] for spec in SPECS[::2]
)

BOUNDARY = Boundary(SHAPES, case, (cp.CLIP_AGREEMENT,))
