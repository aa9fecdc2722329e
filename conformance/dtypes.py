"""The dtypes a run can be in, as NumPy holds them, and the rounding of a case into one.

float32 and float64 are NumPy's own; float16 is NumPy's IEEE half; bfloat16 is
`ml_dtypes.bfloat16` (8 exponent bits as float32, 8 significand bits), the type JAX
uses, registered with NumPy under its name when ml_dtypes is imported here.

The reference stays float64 whatever the dtype. A case's masters are float64; a
framework run in a low-precision dtype receives them rounded to it (round to nearest,
ties to even: NumPy's and ml_dtypes' cast, torch's `.to`, JAX's `astype` agree). So that
the comparison is about the computation and not about that first rounding, a case run
in a low-precision dtype is rounded once before anything sees it (`rounded_case`): the
reference then computes in float64 on exactly the numbers the framework holds, and the
input's rounding (5e-4 relative in float16, 4e-3 in bfloat16, more than most of the
computation's own error) is no part of either side. float32 and float64 keep their
float64 masters as they were drawn (the tolerance table counts float32's input rounding,
6e-8, in its bound).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import ml_dtypes
import numpy as np

if TYPE_CHECKING:
    from conformance.case import Arrays, Case

DTYPES = ("float32", "float64", "float16", "bfloat16")  # the order of the report's columns
LOW_PRECISION = ("float16", "bfloat16")  # rounded before the reference sees them
_NUMPY = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype of a run's dtype name (bfloat16 through ml_dtypes)."""
    if name not in _NUMPY:
        raise ValueError(f"dtype: expected one of {list(DTYPES)}, received {name!r}")
    return _NUMPY[name]


def finfo(name: str) -> ml_dtypes.finfo:
    """max, tiny (smallest normal), smallest_subnormal, eps of the dtype (ml_dtypes.finfo
    answers for NumPy's types too)."""
    return ml_dtypes.finfo(numpy_dtype(name))  # type: ignore[no-untyped-call]


def round_to(arrays: Arrays, name: str) -> Arrays:
    """Floating arrays rounded to the dtype and back to float64 (integers, labels, unchanged).
    A value beyond the dtype's range becomes ±inf, as it would in the framework."""
    dtype = numpy_dtype(name)
    with np.errstate(over="ignore"):
        return {
            k: (np.asarray(v.astype(dtype), np.float64) if v.dtype.kind == "f" else v)
            for k, v in arrays.items()
        }


def rounded_case(case: Case) -> Case:
    """The case as a run in case.spec.dtype holds it: masters rounded once where the dtype is a
    low-precision one (module notes), unchanged otherwise."""
    dtype = case.spec.dtype
    if dtype not in LOW_PRECISION:
        return case
    return replace(
        case,
        params=round_to(case.params, dtype),
        inputs=round_to(case.inputs, dtype),
        state=round_to(case.state, dtype),
    )
