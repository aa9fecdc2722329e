"""The reference and its rounding bound on a case: what `assert_agree` compares against.

`reference_and_bound(component, case, cotangents)` runs the component's reference in
float64 and its rounding module (`Component.rounding`, conformance.rounding) in the
case's dtype: the bound B_d of conformance.tolerances for every output, gradient and
state entry. A component without a rounding module gets the sampled bound of the table:
the reference in float32, once as given and SAMPLED_RUNS times on inputs moved by one
float32 rounding each (so that every operation rounds differently), the largest
difference per tensor scaled and floored (tolerances.sampled_bound).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.component import Component
from conformance.tolerances import PRECISIONS, SAMPLED_RUNS, sampled_bound


def reference_and_bound(
    component: Component, case: Case, cotangents: Arrays | None = None
) -> tuple[Outcome, Outcome]:
    """(the float64 reference, the rounding bound in case.spec.dtype) on `case`."""
    r64 = component.reference(case.with_dtype("float64"), cotangents)
    if component.rounding is not None:
        return r64, component.rounding(case, cotangents)
    return r64, sampled(component, case, cotangents, r64)


def _moved(arrays: Arrays, rng: np.random.Generator) -> Arrays:
    """Floating arrays times 1 ± u_32 (a sign per entry); integer arrays (labels) unchanged."""
    u = PRECISIONS["float32"].unit_roundoff
    return {
        k: v * (1 + u * rng.choice([-1.0, 1.0], v.shape)) if v.dtype.kind == "f" else v
        for k, v in arrays.items()
    }


def sampled(component: Component, case: Case, cotangents: Arrays | None, r64: Outcome) -> Outcome:
    """The sampled bound of every entry of r64 (tolerances.sampled_bound)."""
    rng = np.random.default_rng([case.seed, 0x5A4D])
    cases = [case] + [
        replace(
            case,
            params=_moved(case.params, rng),
            inputs=_moved(case.inputs, rng),
            state=_moved(case.state, rng),
        )
        for _ in range(SAMPLED_RUNS)
    ]
    runs = [component.reference(c.with_dtype("float32"), cotangents) for c in cases]
    dtype = case.spec.dtype

    def part(index: int) -> Arrays:
        return {k: sampled_bound(dtype, r, [run[index][k] for run in runs]) for k, r in r64[index].items()}

    return Outcome(part(0), part(1), part(2))
