"""The ends of the floating-point range: norms, batch statistics and losses whose true value is
representable although a square or a sum of squares is not (refimpl/_range.py).

Every expected value is computed here, without refimpl: `math.hypot` (Python scales before
squaring) for norms, exact rationals (`fractions.Fraction`) for clipped gradients, and plain
float64 NumPy on inputs unscaled by a power of two for batch norm (x̂ does not change when X
is scaled, and a power of two scales exactly). The same inputs through torch and optax are
in docs/findings/range-ends.md: they return an infinite norm and zeros, or x̂ = 0.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import batchnorm as bn
from refimpl.clip import clip_by_global_norm, clip_by_norm, global_norm
from refimpl.losses import mse_backward, mse_forward

F32, F64 = np.float32, np.float64
TINY32 = float(np.finfo(F32).smallest_subnormal)
seeds = st.integers(0, 2**32 - 1)


@pytest.fixture(autouse=True)
def no_warnings() -> Any:
    """The reference handles the range ends: no overflow or underflow warning escapes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def hypot(grads: dict[str, np.ndarray]) -> float:
    """‖g‖₂ by math.hypot, in float64 (scaled: no overflow or underflow)."""
    return math.hypot(*(float(x) for g in grads.values() for x in g.reshape(-1)))


def exact_clip(g: np.ndarray, max_norm: float, norm: float, eps: float | None) -> np.ndarray:
    """g · M / (n + eps) (torch) or g · M / n (optax and tensorflow, eps None) where that
    shrinks g, else g; rounded once from exact rationals."""
    n = Fraction(norm) + (Fraction(eps) if eps is not None else 0)
    if Fraction(max_norm) >= n:
        return g.copy()  # c = min(1, M / (n + eps)) = 1; optax: n < M, or n = M (g / n) M = g
    return (
        np.array([float(Fraction(float(x)) * Fraction(max_norm) / n) for x in g.reshape(-1)], F64)
        .astype(g.dtype)
        .reshape(g.shape)
    )


def assert_close(received: np.ndarray, expected: np.ndarray, what: str, rtol: float = 0.0) -> None:
    """Within 2 roundings of the dtype (or rtol); absolutely within the smallest subnormal."""
    __tracebackhide__ = True
    assert received.dtype == expected.dtype, what
    eps = float(np.finfo(received.dtype).eps)
    tiny = float(np.finfo(received.dtype).smallest_subnormal)
    np.testing.assert_allclose(received, expected, rtol=max(2 * eps, rtol), atol=tiny, err_msg=what)


# (gradients, max_norm): the cases torch and optax get wrong first, then each branch of the scaling
CLIP_CASES = [
    pytest.param({"g": np.array([1e200, 1.0])}, 1.0, id="float64-1e200"),
    pytest.param({"g": np.array([1e20, 1.0], F32)}, 1.0, id="float32-1e20"),
    pytest.param({"g": np.array([1e-200, 1e-200])}, 1e-201, id="float64-squares-underflow"),
    pytest.param({"g": np.array([1e-30, -1e-30], F32)}, 0.0, id="float32-underflow-max-norm-0"),
    pytest.param({"g": np.array([3e38, 3e38], F32)}, 1.0, id="float32-norm-beyond-float32"),
    pytest.param({"g": np.array([1e300, 1.0])}, 1e-20, id="float64-coefficient-underflows"),
    pytest.param({"a": np.array([1e39]), "b": np.array([3e38], F32)}, 1.0, id="mixed-norm-beyond-float32"),
    pytest.param(
        {"a": np.array([1e25, -2e25], F32), "b": np.array([[3.0, 4.0]], F32)}, 2.0, id="float32-two-tensors"
    ),
]


@pytest.mark.parametrize("convention", ["torch", "optax", "tensorflow"])
@pytest.mark.parametrize(("grads", "max_norm"), CLIP_CASES)
def test_norm_and_clipping_at_the_ends_of_the_range(
    grads: dict[str, np.ndarray], max_norm: float, convention: str
) -> None:
    norm = hypot(grads)
    dtype = np.result_type(*grads.values())  # the norm's dtype; float64 where float32 cannot hold it
    reported = norm if norm > float(np.finfo(dtype).max) else float(dtype.type(norm))
    roundings = 4 * max(float(np.finfo(g.dtype).eps) for g in grads.values())  # squares in each dtype
    assert global_norm(grads) == pytest.approx(reported, rel=roundings)
    clipped, n = clip_by_global_norm(grads, max_norm, convention=convention)
    assert n == global_norm(grads)
    eps = 1e-6 if convention == "torch" else None
    for k, g in grads.items():  # a float32 tensor's squares are summed in float32, as torch does
        assert_close(clipped[k], exact_clip(g, max_norm, norm, eps), f"{convention} {k}", roundings)


def test_a_norm_beyond_float64_is_inf_and_still_clips() -> None:
    """‖[1.5e308, -1.5e308]‖ = 2.1e308 has no float64: the norm is inf, the clipped entries
    (±M/√2) are representable and right."""
    g = {"g": np.array([1.5e308, -1.5e308])}
    assert global_norm(g) == math.inf
    np.testing.assert_allclose(clip_by_norm(g, 1.0)["g"], [2**-0.5, -(2**-0.5)], rtol=1e-15)
    for convention in ("torch", "optax", "tensorflow"):
        out, norm = clip_by_global_norm(g, 1.0, convention=convention)
        assert norm == math.inf
        np.testing.assert_allclose(out["g"], [2**-0.5, -(2**-0.5)], rtol=1e-15)


def test_float32_eps_beyond_float32_is_not_infinity() -> None:
    """eps = 1e39 does not fit float32; the coefficient M / (n + eps) ≈ 1e-39 is a float32
    subnormal, and g · M / (n + eps) is computed in float64 and rounded once."""
    g = {"w": np.array([1.0, 1.0], F32)}
    out, norm = clip_by_global_norm(g, 1.0, eps=1e39)
    assert norm == pytest.approx(math.sqrt(2), rel=1e-7)
    expected = float(Fraction(1) / (Fraction(float(np.float32(math.sqrt(2)))) + Fraction(1e39)))
    np.testing.assert_allclose(out["w"].astype(F64), [expected, expected], rtol=0, atol=TINY32)
    assert out["w"][0] > 0


def test_max_norm_beyond_float32_leaves_infinite_gradients_to_the_rules() -> None:
    """M = 1e39 is finite; an infinite entry still makes the norm inf: finite entries become 0,
    infinite ones NaN ("infinite-norm"), not NaN everywhere (∞ / ∞ in float32)."""
    g = {"w": np.array([1.0, np.inf], F32)}
    for convention in ("torch", "optax"):
        out, norm = clip_by_global_norm(g, 1e39, convention=convention)
        assert norm == math.inf and out["w"][0] == 0.0 and np.isnan(out["w"][1])
    out, _ = clip_by_global_norm(g, 1e39, convention="tensorflow")  # n - n = NaN: every entry
    assert np.isnan(out["w"]).all()
    out = clip_by_norm(g, 1e39)
    assert out["w"][0] == 0.0 and np.isnan(out["w"][1])
    out, _ = clip_by_global_norm({"w": np.array([1.0, 2.0], F32)}, 1e39)
    np.testing.assert_array_equal(out["w"], [1.0, 2.0])  # c = 1: nothing to clip


@pytest.mark.parametrize(("grads", "max_norm"), CLIP_CASES)
def test_clip_by_norm_at_the_ends_of_the_range(grads: dict[str, np.ndarray], max_norm: float) -> None:
    """Each tensor by its own norm (tf.clip_by_norm): g_k · M / max(n_k, M), n_k by math.hypot."""
    clipped = clip_by_norm(grads, max_norm)
    for k, g in grads.items():
        assert_close(
            clipped[k], exact_clip(g, max_norm, hypot({k: g}), None), k, 4 * float(np.finfo(g.dtype).eps)
        )


def test_inf_norm_order_with_a_coefficient_that_underflows() -> None:
    g = {"g": np.array([1e300, 1.0])}
    out, norm = clip_by_global_norm(g, 1e-20, norm_type=math.inf)
    assert norm == 1e300
    assert_close(out["g"], exact_clip(g["g"], 1e-20, 1e300, 1e-6), "inf norm")


@settings(max_examples=40, deadline=None)
@given(seed=seeds, dtype=st.sampled_from(["float32", "float64"]), data=st.data())
def test_norm_is_scale_equivariant_across_the_range(seed: int, dtype: str, data: Any) -> None:
    """‖2^k g‖ = 2^k ‖g‖ for every k that keeps 2^k ‖g‖ and the entries normal: the plain and
    the scaled computations agree wherever both are exact."""
    rng = np.random.default_rng(seed)
    g = {f"g{i}": rng.standard_normal(int(rng.integers(1, 6))).astype(dtype) for i in range(3)}
    top = 120 if dtype == "float32" else 1000
    k = data.draw(st.integers(-top, top))
    scaled = {key: np.ldexp(v, k) for key, v in g.items()}
    expected = math.ldexp(hypot(g), k)
    rel = 16 * float(np.finfo(dtype).eps)  # a float32 sum of 15 squares: a few roundings
    assert global_norm(scaled) == pytest.approx(expected, rel=rel)
    clipped, _ = clip_by_global_norm(scaled, math.ldexp(0.5 * hypot(g), k), convention="optax")
    for key, v in clipped.items():
        np.testing.assert_allclose(v, 0.5 * scaled[key], rtol=rel, atol=0)


# ---------------------------------------------------------------- batch norm


def expected_xhat(X: np.ndarray, eps: float) -> np.ndarray:
    """(X - μ) / √(σ² + ε) in float64 NumPy (X of moderate size)."""
    X = X.astype(F64)
    centered = X - X.mean(axis=0)
    return centered / np.sqrt((centered**2).mean(axis=0) + eps)


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [("float32", 1e30), ("float64", 1e200), ("float32", 1e-30), ("float64", 1e-200), ("float64", 1e300)],
)
def test_batchnorm_inputs_scaled_to_the_ends_of_the_range(dtype: str, scale: float) -> None:
    """float32 X · 1e30 (float64: 1e200) normalizes to x̂ ≈ ±1, not 0 (torch and flax: 0 or NaN)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 5))
    Xs = (X * scale).astype(dtype)
    gamma, beta = np.ones(5, dtype), np.zeros(5, dtype)
    Y, cache = bn.batchnorm_train_forward(Xs, gamma, beta)
    unscaled = Xs.astype(F64) / scale  # one rounding off X: x̂ changes by a few ulps
    if dtype == "float32" or scale < 1:  # float64 squares hold float32's; small ones ≪ ε may vanish
        expected = expected_xhat(Xs.astype(F64), 1e-5)
    else:
        expected = expected_xhat(unscaled, 1e-5 / scale / scale)  # ε shrinks with the scale
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(Y.astype(F64), expected, rtol=tol, atol=tol * np.abs(expected).max())
    assert Y.dtype == np.dtype(dtype) and cache.xhat.dtype == np.dtype(dtype)
    sigma = np.sqrt(((unscaled - unscaled.mean(axis=0)) ** 2).mean(axis=0)) * scale
    s_expected = 1 / np.hypot(sigma, math.sqrt(1e-5))
    np.testing.assert_allclose(cache.inv_std.astype(F64), s_expected, rtol=tol)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, data=st.data())
def test_batchnorm_is_scale_invariant_across_the_range(seed: int, data: Any) -> None:
    """x̂(2^k X; ε) = x̂(X; ε 4^{-k}) exactly in real arithmetic, for every k in float64's range;
    γ, β carried through, and the backward stays finite and matches the unscaled one."""
    rng = np.random.default_rng(seed)
    N, D = int(rng.integers(2, 9)), int(rng.integers(1, 5))
    X = rng.normal(rng.uniform(-3, 3, D), rng.uniform(0.5, 2, D), (N, D))
    k = data.draw(st.integers(-1000, 1000))
    gamma, beta, dY = rng.normal(size=D), rng.normal(size=D), rng.normal(size=(N, D))
    Y, cache = bn.batchnorm_train_forward(np.ldexp(X, k), gamma, beta)
    eps = math.ldexp(1e-5, -2 * k) if -2 * k < 1000 else 1e300  # beyond: x̂ ≈ 0 either way
    np.testing.assert_allclose(Y, gamma * expected_xhat(X, eps) + beta, rtol=1e-11, atol=1e-11)
    grads = bn.batchnorm_train_backward(dY, cache)
    assert all(np.isfinite(g).all() for g in grads)
    np.testing.assert_allclose(grads.dgamma, (dY * expected_xhat(X, eps)).sum(axis=0), rtol=1e-10, atol=1e-10)


def test_batchnorm_statistics_where_a_square_overflows_but_the_variance_does_not() -> None:
    """float32 column [3.8e19, 0, 0, 0]: (X - μ)² = 8.1e38 overflows, σ² = 2.7e38 does not."""
    X = np.array([[3.8e19], [0.0], [0.0], [0.0]], F32)
    mu, var = bn.batch_statistics(X)
    X64 = X.astype(F64)
    np.testing.assert_allclose(mu, X64.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(var, ((X64 - X64.mean(axis=0)) ** 2).mean(axis=0), rtol=1e-6)
    assert np.isfinite(var).all() and var.dtype == F32
    mu, var = bn.batch_statistics(np.array([[1e300], [-1e300], [1e300], [-1.5e308]]))
    assert np.isfinite(mu).all() and var[0] == math.inf  # σ² ≈ 1e616 has no float64: inf, honestly


def test_batchnorm_float32_eps_beyond_float32() -> None:
    """ε = 1e39 does not fit float32; √ε = 3.2e19 does: x̂ = (X - μ) / √(σ² + ε) ≈ 3e-20 (X - μ)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 3)).astype(F32)
    Y, _ = bn.batchnorm_train_forward(X, np.ones(3, F32), np.zeros(3, F32), eps=1e39)
    np.testing.assert_allclose(Y.astype(F64), expected_xhat(X, 1e39), rtol=1e-5, atol=0)
    assert np.all(Y != 0)


def test_batchnorm_constant_feature_at_the_top_of_the_range() -> None:
    """A constant column of 1e308 (its sum overflows): x̂ = 0, s = 1/√ε, no NaN."""
    X = np.full((4, 2), 1e308)
    X[:, 1] = np.arange(4.0)
    Y, cache = bn.batchnorm_train_forward(X, np.ones(2), np.zeros(2))
    np.testing.assert_array_equal(Y[:, 0], 0.0)
    assert cache.inv_std[0] == pytest.approx(1 / math.sqrt(1e-5), rel=1e-15)
    np.testing.assert_allclose(Y[:, 1], expected_xhat(X[:, 1:], 1e-5)[:, 0], rtol=1e-14)


# ---------------------------------------------------------------- the loss


@pytest.mark.parametrize(("value", "dtype"), [(1e154, "float64"), (1e20, "float32"), (1e-160, "float64")])
def test_mse_whose_squares_overflow_or_underflow(value: float, dtype: str) -> None:
    """mean((Y - T)²) is representable in float64 though (Y - T)² or its sum is not."""
    Y = np.array([[value, -value], [value, 2 * value]], dtype)
    loss, cache = mse_forward(Y, np.zeros_like(Y))
    entries = [Fraction(float(y)) for y in Y.reshape(-1)]
    expected = float(sum(y * y for y in entries) / 4)  # rounded once; subnormal below 2.2e-308
    assert loss == pytest.approx(expected, rel=4 * float(np.finfo(dtype).eps), abs=2 * 5e-324)
    np.testing.assert_allclose(mse_backward(1.0, cache), Y / 2, rtol=1e-6 if dtype == "float32" else 1e-15)
