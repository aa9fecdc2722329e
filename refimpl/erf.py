"""The error function erf and its complement erfc, vectorized (README, "Activations").

NumPy has no erf, and the exact GELU needs it: Φ(x) = ½ erfc(-x/√2). Two classical
expansions, each where it converges fast and without cancellation:

* |x| < 2: the series of positive terms (Abramowitz & Stegun 7.1.6)

      erf(x) = (2/√π) e^{-x²} Σ_{n≥0} 2ⁿ x^{2n+1} / (1·3·5···(2n+1)),

  each term the one before times 2x²/(2n+1); at |x| = 2 the 32nd is below 1e-17 of the sum.
* x >= 2: Laplace's continued fraction (A&S 7.1.14)

      erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ···))))),

  evaluated from the bottom up at depth 60 (at x = 2, depth 60 and 120 agree to the last
  bit), with e^{-x²} = e^{-h²} e^{-(x-h)(x+h)}, h = x rounded down to a multiple of 1/16,
  so that the rounding of x² (an error of ε·x² in the exponent) does not enter.

Elsewhere by symmetry: erf(-x) = -erf(x), erfc(x) = 1 - erf(x) for |x| < 2 and
erfc(-x) = 2 - erfc(x). Both are computed in float64 and returned in the argument's dtype.
Measured against `math.erf` and `math.erfc` (tests/test_ref_erf.py): erf within 6 ulps of
its value everywhere, erfc within 4 ulps of its value for x >= 2 (down to erfc(26.5) = 1e-307)
and within 5ε64 absolute for x < 2 (1 - erf there: near x = 2 that is 800 ulps of erfc's
value). erf(±inf) = ±1, erfc(+inf) = 0, erfc(-inf) = 2, NaN stays NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refimpl._validate import require_array

Array = NDArray[Any]

SERIES_BELOW = 2.0  # |x| < 2: the series; beyond, the continued fraction
SERIES_TERMS = 32
FRACTION_DEPTH = 60
ZERO_BEYOND = 28.0  # erfc(x) = e^{-x²}/(x√π)(1 + ...) < 1e-340 rounds to 0 for x >= 27.3
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _series(x: Array) -> Array:
    """erf(x) for |x| < 2 (float64), the series of positive terms."""
    x2 = x * x
    term = x.copy()  # n = 0: x
    total = x.copy()
    for n in range(1, SERIES_TERMS):
        term *= 2.0 * x2 / (2 * n + 1)
        total += term
    return _TWO_OVER_SQRT_PI * np.exp(-x2) * total


def _fraction(x: Array) -> Array:
    """erfc(x) for x >= 2 (float64), the continued fraction; 0 from ZERO_BEYOND on."""
    x = np.minimum(x, ZERO_BEYOND)  # erfc(∞) = erfc(28) = 0, and ∞ - ∞ never happens below
    f = x.copy()
    for k in range(FRACTION_DEPTH, 0, -1):
        f = x + (0.5 * k) / f
    h = np.floor(16.0 * x) / 16.0  # h² is exact: h has at most 9 significant bits here
    with np.errstate(under="ignore"):  # e^{-x²} below the subnormals is 0, the answer
        e = np.exp(-h * h) * np.exp(-(x - h) * (x + h))  # e^{-x²}
        return e / (math.sqrt(math.pi) * f)


def _split(x: Array) -> tuple[Array, Array, Array]:
    """x in float64, and the masks of the series (|x| < 2) and of the fraction (the rest)."""
    x64 = np.asarray(x, dtype=np.float64)
    series = np.abs(x64) < SERIES_BELOW
    return x64, series, ~series


def erf(x: Array) -> Array:
    """erf(x) = 2/√π ∫₀ˣ e^{-t²} dt, element-wise, in x's dtype (float32 or float64)."""
    require_array("x", x, finite=False)
    x64, series, fraction = _split(x)
    out = np.empty_like(x64)
    out[series] = _series(x64[series])
    far = x64[fraction]  # NaN lands here and stays NaN
    out[fraction] = np.sign(far) * (1.0 - _fraction(np.abs(far)))
    return out.astype(x.dtype, copy=False)


def erfc(x: Array) -> Array:
    """erfc(x) = 1 - erf(x), element-wise, in x's dtype; relatively accurate for x >= 2."""
    require_array("x", x, finite=False)
    x64, series, fraction = _split(x)
    out = np.empty_like(x64)
    out[series] = 1.0 - _series(x64[series])
    far = x64[fraction]
    tail = _fraction(np.abs(far))
    out[fraction] = np.where(far < 0, 2.0 - tail, tail)
    return out.astype(x.dtype, copy=False)
