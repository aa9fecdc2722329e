"""Sums of squares at the ends of the floating-point range (private: used by clip and batchnorm).

A square overflows once |x| > √max (float64: 1.3e154, float32: 1.8e19) and underflows
below √tiny (float64: 1.5e-154, float32: 1.1e-19), though √(Σ x²) and the batch-norm
statistics built from it are representable for every finite x. As LAPACK's `nrm2`,
the reference scales before squaring, but only where the plain sum needs it:

* The plain sum S = Σ x² (or a mean of squares) in the array's dtype is kept when it is
  finite and S >= size · tiny: each square is off by at most u x² + u tiny (gradual
  underflow), so S is off by at most u S + size · u tiny <= 2 u S. This is the
  ordinary range, computed exactly as before, at no extra cost.
* Otherwise, with m = max |x| = f 2^e (f in [0.5, 1), `np.frexp`), Σ x² = 2^{2e} Σ (x 2^{-e})²:
  x 2^{-e} is exact (a power of two) and in (-1, 1), so no square overflows and the ones
  that underflow are below u² of the largest. The result is kept as (r, e) with
  √(Σ x²) = r 2^e, r in [0.5, √size], for callers whose answer is representable when
  the norm itself is not.

Vectorized: one max and one scaled pass over each array, only for the arrays (or
columns) that left the ordinary range.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def plain_sum_is_accurate(total: Any, threshold: Any) -> Any:
    """S finite and S >= threshold (size · tiny, summed over the arrays): the plain sum holds."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(total) & (total >= threshold)


def tiny_times_size(arrays: Iterable[Array]) -> float:
    """Σ_k size_k · tiny(dtype_k), the threshold of `plain_sum_is_accurate` for a sum over arrays."""
    return float(sum(a.size * float(np.finfo(a.dtype).tiny) for a in arrays))


def scaled_l2(arrays: list[Array]) -> tuple[float, int]:
    """(r, e) with √(Σ_k Σ_i a_{k,i}²) = r 2^e, for finite arrays with some nonzero entry.

    r is float64; each array's scaled squares are summed in its own dtype, as the plain
    sum is, then added in float64.
    """
    m = max(float(np.max(np.abs(a))) for a in arrays if a.size)
    e = int(np.frexp(m)[1])
    with np.errstate(under="ignore"):
        total = sum(float(np.sum(np.square(np.ldexp(a, -e)), dtype=a.dtype)) for a in arrays)
    return float(np.sqrt(total)), e


def scaled_moments(X: Array) -> tuple[Array, Array, Array, Array]:
    """Per column of a finite X (N, D): (μ, Cs, vs, K) with X - μ = Cs 2^K and σ² = vs 2^{2K}.

    μ = 2^{e1} mean(X 2^{-e1}) with 2^{e1} > max |X_d|, so the sum cannot overflow; the
    centered column X 2^{-e1} - μ 2^{-e1} is scaled again by 2^{-e2} > 1/ max of it, so
    |Cs| < 1 and vs = mean(Cs²) in [0, 1). K = e1 + e2 (int, (D,)).
    """
    with np.errstate(under="ignore"):
        e1 = np.frexp(np.max(np.abs(X), axis=0))[1]  # D
        Xs = np.ldexp(X, -e1)  # N, D; |Xs| < 1
        mus = Xs.mean(axis=0)  # D
        C = Xs - mus  # N, D; |C| < 2
        e2 = np.frexp(np.max(np.abs(C), axis=0))[1]  # D
        Cs = np.ldexp(C, -e2)  # N, D; |Cs| < 1
        vs = (Cs * Cs).mean(axis=0)  # D
        return np.ldexp(mus, e1), Cs, vs, e1 + e2
