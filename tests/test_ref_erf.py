"""refimpl.erf against Python's `math.erf` and `math.erfc` (the C library's, correctly rounded
to within an ulp or so) over the whole range where they are not constant, at the seam of the
two expansions (|x| = 2) and at the special values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refimpl.erf import SERIES_BELOW, erf, erfc

EPS = float(np.finfo(np.float64).eps)
GRID = np.concatenate(
    [
        np.linspace(-30.0, 30.0, 120_001),
        np.geomspace(1e-300, 1.0, 600),
        -np.geomspace(1e-300, 1.0, 600),
        np.nextafter(SERIES_BELOW, [0.0, 3.0]),
        -np.nextafter(SERIES_BELOW, [0.0, 3.0]),
        [SERIES_BELOW],
    ]
)


def exact(function: str, x: np.ndarray) -> np.ndarray:
    f = getattr(math, function)
    return np.array([f(float(v)) for v in x.reshape(-1)]).reshape(x.shape)


def test_erf_is_within_8_ulps_of_its_value_everywhere() -> None:
    want = exact("erf", GRID)
    ulps = np.abs(erf(GRID) - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny) / EPS
    assert ulps.max() <= 8.0, (GRID[np.argmax(ulps)], ulps.max())


def test_erfc_is_within_8_ulps_of_its_value_from_2_on() -> None:
    x = GRID[GRID >= SERIES_BELOW]
    want = exact("erfc", x)
    normal = want >= np.finfo(np.float64).tiny  # down to erfc(26.5) ~ 1e-307
    ulps = np.abs(erfc(x[normal]) - want[normal]) / want[normal] / EPS
    assert normal.sum() > 45_000 and ulps.max() <= 8.0, ulps.max()
    subnormal = np.abs(erfc(x[~normal]) - want[~normal])  # where erfc is 0 or subnormal: a few of its ulps
    assert subnormal.max() <= 1e-320


def test_erfc_below_2_is_within_8_eps_absolute() -> None:
    x = GRID[GRID < SERIES_BELOW]
    assert np.abs(erfc(x) - exact("erfc", x)).max() <= 8 * EPS


def test_special_values() -> None:
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    got = erf(x)
    np.testing.assert_array_equal(got, [1.0, -1.0, np.nan, 0.0, -0.0])
    assert math.copysign(1.0, got[4]) == -1.0  # erf(-0) = -0, an odd function
    np.testing.assert_array_equal(erfc(x), [0.0, 2.0, np.nan, 1.0, 1.0])


def test_float32_in_float32_out_rounded_once() -> None:
    x = np.linspace(-6, 6, 4001, dtype=np.float32)
    got = erf(x)
    want = exact("erf", x.astype(np.float64)).astype(np.float32)
    assert got.dtype == np.float32
    ulps = np.abs(got.astype(np.float64) - want) / np.spacing(np.maximum(np.abs(want), 1e-30))
    assert ulps.max() <= 1.0


def test_shape_is_kept_and_no_floating_point_warning_is_raised() -> None:
    x = np.array([[-40.0, -3.0, 0.5], [2.0, 27.0, 1e300]])
    with np.errstate(all="raise"):
        assert erf(x).shape == erfc(x).shape == (2, 3)


@pytest.mark.parametrize("function", [erf, erfc])
def test_bad_input_names_the_field(function: object) -> None:
    with pytest.raises(TypeError, match=r"^x: expected a numpy.ndarray, received \[1.0\]"):
        function([1.0])  # type: ignore[operator]
    with pytest.raises(TypeError, match="x: expected dtype float32 or float64"):
        function(np.arange(3))  # type: ignore[operator]
