"""refimpl.gradcheck on points a finite-difference check meets outside a network: integer
entries, huge magnitudes, a caller's arrays that must not change. Every expected derivative
is written by hand (f = Σ x², Σ x, ...), none comes from the code under test.

(The checks' power to fail on a wrong gradient: tests/meta_tests/test_gradcheck_meta.py;
their bad input: tests/test_ref_bad_input.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.gradcheck import (
    directional_derivative,
    jvp_by_differences,
    numerical_grads,
    vjp_inner_product,
    worst_mismatch,
)


def sum_of_squares(p: dict[str, np.ndarray]) -> float:
    return float(np.sum(p["x"] ** 2))


def test_an_integer_entry_named_in_keys_is_differentiated_at_its_float64_values() -> None:
    """Once written back into the int64 array, x ± 1e-6 truncated: [5e5, 1.5e6, 2.5e6]."""
    point = {"x": np.array([1, 2, 3]), "labels": np.array([0, 1])}
    grads = numerical_grads(sum_of_squares, point, keys=["x"])
    np.testing.assert_allclose(grads["x"], [2.0, 4.0, 6.0], rtol=1e-9)
    assert grads["x"].dtype == np.float64
    np.testing.assert_array_equal(point["x"], [1, 2, 3])
    assert point["x"].dtype == np.int64
    assert set(numerical_grads(sum_of_squares, {"x": np.ones(2), "n": np.array(3)})) == {"x"}


@pytest.mark.parametrize("x", [1e308, -1e308, 1e20, 1e-300, 0.0])
def test_the_step_is_relative_to_the_magnitude(x: float) -> None:
    """At 1e308 an absolute 1e-6 is far below one ulp: x + 1e-6 == x, the derivative was 0."""
    grads = numerical_grads(lambda p: float(np.sum(p["x"])), {"x": np.array([x])})
    assert grads["x"][0] == pytest.approx(1.0, rel=1e-9)
    scale = 1e154 if abs(x) > 1e154 else 1.0  # (x / 1e154)² stays finite near 1e308
    grads = numerical_grads(lambda p: float(np.sum((p["x"] / scale) ** 2)), {"x": np.array([x])})
    assert grads["x"][0] == pytest.approx(2 * (x / scale) / scale, rel=1e-6, abs=1e-12)


def test_the_directional_step_is_relative_to_the_magnitude() -> None:
    point = {"x": np.array([1e300, -2e300]), "y": np.array([1.0])}
    v = {"x": np.array([0.6, 0.8])}
    assert directional_derivative(lambda p: float(3 * p["x"].sum()), point, v) == pytest.approx(4.2, rel=1e-9)
    Jv = jvp_by_differences(lambda p: p["x"] * 2.0, point, v)
    np.testing.assert_allclose(Jv, [1.2, 1.6], rtol=1e-9)


def test_an_integer_entry_moved_by_a_direction_is_converted() -> None:
    point = {"x": np.array([1, -2])}
    assert directional_derivative(sum_of_squares, point, {"x": np.array([1.0, 1.0])}) == pytest.approx(-2.0)
    assert point["x"].dtype == np.int64


def test_the_adjoint_test_holds_for_a_linear_map_and_reads_the_vjp() -> None:
    A = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]])
    point = {"x": np.array([0.3, -0.7])}
    lhs, rhs, scale = vjp_inner_product(
        lambda p: A @ p["x"], lambda u: {"x": A.T @ u}, point, np.random.default_rng(0)
    )
    assert lhs == pytest.approx(rhs, rel=1e-8) and scale > 0
    lhs, rhs, _ = vjp_inner_product(
        lambda p: A @ p["x"], lambda u: {"x": 2 * A.T @ u}, point, np.random.default_rng(0)
    )
    assert abs(lhs - rhs) > 1e-3 * abs(rhs)


def test_nan_is_the_worst_mismatch() -> None:
    analytic, numeric = np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, 30.0])
    ratio, where = worst_mismatch(analytic, numeric, rtol=1e-6, atol=0.0)
    assert ratio == np.inf and where == (1,)
    ratio, where = worst_mismatch(np.array([1, 2]), np.array([1.0, 2.5]), rtol=0.1, atol=0.0)
    assert ratio == pytest.approx(0.5 / 0.25) and where == (1,)
