"""GELU (exact, tanh), ELU, SELU, SiLU and softplus (refimpl.smooth, through refimpl.activations).

Derivatives against float64 central differences with their parameters drawn; values at points
where the math gives them in closed form (Φ(1), log 2, λ, α_S); the edges pinned exactly (the
ELU/SELU kink under both conventions, softplus at and just past its threshold); and no
overflow, no NaN, the right limits, out to ±inf.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradients import assert_fd_match
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl import smooth
from refimpl.activations import activation_backward, activation_forward, smooth_params

NAMES = smooth.NAMES
seeds = st.integers(0, 2**32 - 1)
MARGIN = 1e-4  # a difference step of 1e-6 (times β ≤ 2) must not cross a kink or the threshold


def forward(name: str, Z: np.ndarray, **kw: object) -> np.ndarray:
    return activation_forward(name, Z, params=params(**kw))[0]


def derivative(name: str, Z: np.ndarray, **kw: object) -> np.ndarray:
    _, cache = activation_forward(name, Z, params=params(**kw))
    return activation_backward(np.ones_like(Z), cache)


def params(
    alpha: float = 1.0, kink: str = "negative", beta: float = 1.0, threshold: float | None = 20.0
) -> smooth.SmoothParams:
    return smooth_params(alpha, kink, beta, threshold)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=20, deadline=None)
@given(
    seed=seeds,
    alpha=st.sampled_from((0.5, 1.0, 1.7)),
    kink=st.sampled_from(smooth.ELU_KINKS),
    beta=st.sampled_from((0.5, 1.0, 2.0)),
    threshold=st.sampled_from((None, 20.0, 3.0)),
)
def test_backward_matches_finite_differences(
    name: str, seed: int, alpha: float, kink: str, beta: float, threshold: float | None
) -> None:
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((4, 6)) * rng.choice([1.0, 4.0, 12.0])
    assume(np.abs(Z).min() > MARGIN)  # elu, selu: the kink at 0
    if threshold is not None:
        assume(np.abs(beta * Z - threshold).min() > MARGIN)  # softplus: the switch at βz = threshold
    p = params(alpha, kink, beta, threshold)
    A, cache = activation_forward(name, Z, params=p)
    dA = rng.standard_normal(Z.shape)
    assert_fd_match(
        f"{name} {p} seed={seed}",
        lambda q: float(np.sum(activation_forward(name, q["Z"], params=p)[0] * dA)),
        {"Z": Z},
        {"Z": activation_backward(dA, cache)},
        rng,
        scale=float(np.sum(np.abs(A * dA))),
    )


def test_values_the_math_gives_in_closed_form() -> None:
    one, zero = np.array([1.0]), np.array([0.0])
    assert forward("gelu", one)[0] == pytest.approx(0.8413447460685429, rel=4e-16)  # Φ(1)
    assert derivative("gelu", zero)[0] == 0.5  # Φ(0) + 0 φ(0)
    assert derivative("gelu_tanh", zero)[0] == 0.5
    assert derivative("silu", zero)[0] == 0.5  # σ(0)
    assert forward("softplus", zero)[0] == pytest.approx(math.log(2.0), rel=2e-16)
    assert forward("softplus", zero, beta=2.0)[0] == pytest.approx(math.log(2.0) / 2, rel=2e-16)
    assert forward("elu", -one, alpha=1.5)[0] == pytest.approx(1.5 * math.expm1(-1.0), rel=2e-16)
    assert forward("selu", one)[0] == pytest.approx(1.0507009873554805, rel=2e-16)  # λ
    assert forward("selu", np.array([-np.inf]))[0] == pytest.approx(-1.7580993408473766, rel=2e-16)  # -λα
    # the tanh form against the erf form: Hendrycks and Gimpel's approximation is good to 5e-4
    x = np.linspace(-6, 6, 1201)
    assert np.abs(forward("gelu_tanh", x) - forward("gelu", x)).max() < 5e-4


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_no_overflow_no_nan_and_the_limits(name: str, dtype: str) -> None:
    big = float(np.finfo(dtype).max) / 2  # λ big must not overflow: SELU's result would not exist
    Z = np.array([-np.inf, -big, -1e4, -800.0, -40.0, 40.0, 800.0, 1e4, big, np.inf], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A, d = forward(name, Z, beta=2.0), derivative(name, Z, beta=2.0)
    assert A.dtype == d.dtype == np.dtype(dtype)
    assert not np.isnan(A).any() and not np.isnan(d).any()
    right = Z >= 800  # σ(-x), e^{-x²}, e^{-x}: 0 in every dtype
    scale = smooth.SELU_SCALE if name == "selu" else 1.0
    np.testing.assert_array_equal(A[right], (scale * Z[right]).astype(dtype))  # f(x) = x (λx) there
    np.testing.assert_array_equal(d[right], np.full(right.sum(), scale, dtype=dtype))
    far_left = Z <= -800  # e^{-800} is below every dtype's subnormals
    assert (d[far_left] == 0).all()  # every derivative vanishes there
    floor = {"elu": -1.0, "selu": -smooth.SELU_SCALE * smooth.SELU_ALPHA}.get(name, 0.0)
    np.testing.assert_array_equal(A[far_left], np.full(far_left.sum(), floor, dtype=dtype))
    np.testing.assert_array_equal(np.isnan(forward(name, np.array([np.nan], dtype=dtype))), [True])


@pytest.mark.parametrize("name", ["elu", "selu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kink_at_zero_is_the_one_sided_limit_the_convention_names(name: str, dtype: str) -> None:
    """f'(0) equals f' just left of 0 under "negative" (α, λα), just right under "positive" (1, λ)."""
    tiny = float(np.finfo(dtype).smallest_subnormal)
    Z = np.array([-tiny, 0.0, -0.0, tiny], dtype=dtype)
    for kink, side in (("negative", 0), ("positive", 3)):
        d = derivative(name, Z, alpha=1.5, kink=kink)
        assert d[1] == d[2] == d[side], (kink, d)
    d = derivative(name, Z, alpha=1.5)
    assert d[0] != d[3]  # with α ≠ 1 (SELU: λα ≠ λ) the two sides differ: the convention matters


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_softplus_threshold_is_torchs_switch(beta: float) -> None:
    """βx > threshold: the identity, f' = 1; at βx = threshold exactly: still the log form."""
    at = 20.0 / beta  # exact: β is a power of two
    Z = np.array([at, np.nextafter(at, np.inf), at + 1.0])
    A, d = forward("softplus", Z, beta=beta), derivative("softplus", Z, beta=beta)
    assert A[0] == pytest.approx(at + math.log1p(math.exp(-20.0)) / beta, rel=1e-16) and A[0] != at
    assert d[0] == pytest.approx(1.0 / (1.0 + math.exp(-20.0)), rel=1e-16) and d[0] != 1.0
    np.testing.assert_array_equal(A[1:], Z[1:])
    np.testing.assert_array_equal(d[1:], [1.0, 1.0])
    A = forward("softplus", Z, beta=beta, threshold=None)
    d = derivative("softplus", Z, beta=beta, threshold=None)
    assert (A > Z).all() and (d < 1.0).all()  # no threshold: log(1 + e^{βx})/β > x, σ(βx) < 1


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="elu_kink: expected one of"):
        params(kink="left")
    with pytest.raises(ValueError, match="softplus_beta: expected a number > 0, received -1"):
        params(beta=-1.0)
    with pytest.raises(ValueError, match="elu_alpha: expected a finite number"):
        params(alpha=float("inf"))
    with pytest.raises(TypeError, match="softplus_threshold: expected a real number"):
        params(threshold="20")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name: expected one of"):
        smooth.value("relu", np.zeros(2), params())
