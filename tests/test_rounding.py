"""Monte Carlo arithmetic (conformance/rounding.py): its bound covers real float32 evaluations in
other summation orders, keeps exact values exact, and takes a branch's jump where the side is
uncertain."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.rounding import Arithmetic, rms
from conformance.tolerances import PRECISIONS


def test_a_rounded_master_carries_its_actual_rounding() -> None:
    x = np.array([0.1, 1.0, 3.0, 1e-40, 0.0])
    got = Arithmetic("float32").rounded(x)
    cast = x.astype(np.float32).astype(np.float64) - x
    assert np.allclose(got.d[:, :3], cast[:3])  # the same in every sample
    assert np.all(np.abs(got.d[:, 3]) >= abs(cast[3]))  # subnormal: up to the smallest normal
    assert np.all(got.d[:, 4] == 0.0) and np.all(Arithmetic("float64").rounded(x).d[:, :3] == 0.0)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000])
def test_a_sum_bound_covers_float32_sums_in_any_order(n: int) -> None:
    """A sum that cancels to 1e-6 of its terms, summed in float32 in 200 orders (and pairwise)."""
    rng = np.random.default_rng(n)
    terms = rng.standard_normal(n)
    terms[-1] -= terms.sum() - 1e-6 * np.abs(terms).sum()
    ar = Arithmetic("float32")
    total = ar.sum(ar.rounded(terms))
    bound = ar.bound(total)
    exact = float(np.sum(terms.astype(np.float32).astype(np.float64)))  # the rounded terms' sum
    for _ in range(200):
        order = rng.permutation(n).astype(int)
        acc = np.float32(0.0)
        for t in terms[order].astype(np.float32):
            acc = np.float32(acc + t)
        assert abs(float(acc) - float(terms.sum())) <= bound + PRECISIONS["float32"].smallest_normal
    assert abs(float(np.sum(terms.astype(np.float32))) - exact) <= bound  # NumPy's pairwise sum


def test_a_matrix_chain_bound_follows_the_signs_not_the_worst_case() -> None:
    """Five random 32 x 32 layers: the bound stays within 1e3 of the error float32 makes
    (a worst-case running bound, |W5|...|W1| |x|, is 1e4 or more above it)."""
    rng = np.random.default_rng(0)
    ws = [rng.uniform(-1, 1, (32, 32)) / np.sqrt(32) for _ in range(5)]
    x = rng.standard_normal(32)
    ar = Arithmetic("float32")
    y, y32, worst = ar.rounded(x), x.astype(np.float32), np.abs(x)
    for w in ws:
        y = ar.matmul(ar.rounded(w), y)
        y32 = w.astype(np.float32) @ y32
        worst = np.abs(w) @ worst
    exact = np.linalg.multi_dot([*ws[::-1], x])
    error = np.abs(y32 - exact)
    assert np.all(error <= ar.bound(y))
    assert np.median(ar.bound(y) / np.maximum(error, 1e-30)) < 1e3
    assert np.median(32 * 5 * PRECISIONS["float32"].unit_roundoff * worst / ar.bound(y)) > 10


def test_a_kink_is_exact_at_an_exact_zero_and_uncertain_near_one() -> None:
    ar = Arithmetic("float32")
    one, zero = ar.exact(np.ones(3)), ar.exact(np.zeros(3))
    exact_zero = ar.exact(np.zeros(3))
    assert np.all(ar.bound(ar.select(exact_zero, one, zero, zero)) == 0.0)
    near = ar.rounded(np.array([1e-9, 0.5, -1e-9]))
    near = ar.add(near, ar.rounded(np.array([0.3, 0.3, 0.3])))
    near = ar.sub(near, ar.rounded(np.array([0.3, 0.3, 0.3])))
    step = ar.select(near, one, zero, zero)
    assert ar.bound(step)[0] >= 1.0 and ar.bound(step)[2] >= 1.0 and ar.bound(step)[1] == 0.0


def test_elementary_functions_propagate_without_cancellation() -> None:
    """In float64 the deviations are ~1e-16 of the values: their change is taken in closed form."""
    ar = Arithmetic("float64")
    x = ar.add(ar.rounded(np.array([0.3, 2.0, 30.0])), ar.rounded(np.array([0.1, 0.1, 0.1])))
    for f in (ar.tanh, ar.exp, ar.sigmoid, ar.log, ar.sqrt, ar.rsqrt):
        got = f(x)
        assert np.all(np.isfinite(got.d)) and np.all(rms(got) > 0)
        assert np.all(rms(got) < 1e-14 * np.maximum(np.abs(got.v), 1e-300) + 1e-300)


def test_exp_of_a_tiny_value_moved_by_hundreds_stays_finite() -> None:
    """bfloat16 logits of thousands move by hundreds between implementations: exp(-800 + 790) is
    e^-10, not e^-800 · expm1(790) = 0 · inf (a NaN bound, a dev seed's false alarm)."""
    from conformance.rounding import Uncertain

    ar = Arithmetic("bfloat16", samples=2)
    x = Uncertain(np.array([-800.0, -3.0]), np.array([[790.0, 0.5], [-5.0, -0.5]]))
    got = ar.exp(x)
    assert np.all(np.isfinite(got.d))
    moved = got.v[0] + got.d[0, 0]
    assert abs(moved - np.exp(-10.0)) <= 1e-3 * np.exp(-10.0)
    assert abs(got.v[1] + got.d[0, 1] - np.exp(-2.5)) <= 0.02 * np.exp(-2.5)


def test_deviations_far_below_the_square_root_of_the_smallest_normal_keep_their_bound() -> None:
    """A float64 gradient that vanished to 1e-148 deviates by about 1e-164: squared, that
    underflows, and an rms taken as √(mean d²) was 0 (found by the stress command)."""
    ar = Arithmetic("float64")
    tiny = ar.rounded(np.array([1e-148, -3e-150]))
    x = ar.mul(tiny, ar.constant(1.0 / 3.0))
    assert np.all(rms(x) > 0) and np.all(ar.bound(x) >= np.max(np.abs(x.d), axis=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_norm_bound_covers_squares_that_underflow(dtype: str) -> None:
    """‖g‖ of entries whose squares are below the smallest normal: summing squares gives 0,
    scaling first gives the true norm; the bound holds both (torch's vector_norm against
    NumPy's norm on an RNN's vanished hidden gradient: 9.1e-164 against 0)."""
    ar = Arithmetic(dtype)
    g = np.array([3e-164, -9e-164]) if dtype == "float64" else np.array([3e-25, -9e-25])
    norm = ar.norm2(ar.rounded(g))
    by_squares = np.sqrt(np.sum(g.astype(dtype) ** 2))
    scaled = np.max(np.abs(g)) * np.sqrt(np.sum((g / np.max(np.abs(g))) ** 2))
    assert by_squares == 0.0 and scaled > 0.0
    assert abs(scaled - by_squares) <= ar.bound(norm)
