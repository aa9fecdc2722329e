"""Which cases reach a known issue: the `reached` predicates of known_issues.toml.

Most known issues hold for a whole row (every case of a property, component, framework
and dtype). Some only for the cases that reach them: torch's float16 mean of a loss
overflows only where the per-row losses sum past the dtype's largest value, which a
dev or hunt draw reaches and the ci profile's draws do not. A row-wide strict xfail
would read "fixed" in CI and fail the draws that reach it elsewhere; an entry with
`reached = "module:function"` is judged case by case instead (conformance.testing):

    reached(case) -> True | False | None

on the case as the property sees it (its spec in the row's dtype, its values rounded
to it). True: the case reaches the issue, a failure there is the issue reproducing and
a pass means it no longer does; False: the case is judged as any other; None: the case
is at the edge of the issue (a sum within rounding of the overflow), where a failure is
the issue and a pass says nothing.
"""

from __future__ import annotations

import numpy as np

from conformance import frameworks
from conformance.case import Case
from conformance.dtypes import finfo

EDGE = 2.0**-5  # relative band around an overflow threshold in which the outcome is the dtype's rounding


def low_precision_mean_overflows(case: Case) -> bool | None:
    """A cross-entropy mean whose sum of per-row losses leaves the dtype's range though the
    mean does not: Σ_n L_n > max while (1/N) Σ_n L_n <= max, in float64 on the case's values
    (the loss and the row count are the reference's: loss = mean, rows = targets.size)."""
    dtype = case.spec.dtype
    if case.spec.loss != "cross_entropy" or dtype not in ("float16", "bfloat16"):
        return False
    reference = frameworks.backend(frameworks.REFERENCE.name).run(case.with_dtype("float64"))
    mean = float(reference.outputs["loss"])
    total, largest = mean * case.inputs["targets"].size, float(finfo(dtype).max)
    if not np.isfinite(total) or mean > largest * (1 - EDGE):
        return False  # the mean itself overflows: the reference is inf too
    if total > largest * (1 + EDGE):
        return True
    return None if total > largest * (1 - EDGE) else False
