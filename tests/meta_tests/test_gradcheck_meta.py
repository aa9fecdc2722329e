"""Meta-tests: the finite-difference checks of tests/gradients.py must FAIL on wrong backwards.

Each wrong backward is a classic bug (a missing transpose, a dropped bias gradient, a sign
flip, a missing factor) written on top of the right one. Every test runs the right backward
through the same check first (it must pass: a check that always fails proves nothing either),
then the wrong one (AssertionError, with a mismatch far above the tolerance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gradients import (
    assert_fd_match,
    fd_mismatch,
    mlp_adjoint_mismatch,
    mlp_objective,
    mlp_point,
    objective_scale,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.components.mlp.strategies import mlp_case
from refimpl import activations
from refimpl.linear import LinearCache, LinearGrads, linear_backward, linear_forward
from refimpl.losses import (
    CrossEntropyCache,
    MSECache,
    cross_entropy_backward,
    cross_entropy_forward,
    mse_backward,
    mse_forward,
)
from refimpl.mlp import MLPCache, MLPSpec, mlp_backward, mlp_forward

seeds = st.integers(0, 2**32 - 1)
META = settings(max_examples=10, deadline=None)
# A wrong formula is off by O(|n|): a ratio of ~1 / RTOL = 1e6 elementwise. Along a random
# direction v it is off by <Δ, v>, which can be small by chance: the smallest ratio measured
# over 2,000 wrong linear layers is 6.6e2. The right backward stays below 1e-2.
FAR = 100.0
Arrays = dict[str, np.ndarray]


def expect_detected(what: str, *args: Any, **kwargs: Any) -> None:
    """The check raises, and its worst ratio is far above the tolerance."""
    with pytest.raises(AssertionError, match=what):
        assert_fd_match(what, *args, **kwargs)
    assert fd_mismatch(*args, **kwargs).ratio > FAR


# --- linear: missing transpose, dropped bias gradient, sign flip ------------------------


def transposed_dW(delta: np.ndarray, cache: LinearCache) -> LinearGrads:
    """Xᵀ δ, i.e. (δᵀ X)ᵀ: the right shape only for a square layer, so it goes unnoticed there."""
    right = linear_backward(delta, cache)
    return right._replace(dW=cache.X.T @ delta)


def dropped_db(delta: np.ndarray, cache: LinearCache) -> LinearGrads:
    return linear_backward(delta, cache)._replace(db=np.zeros(cache.W.shape[0]))


def flipped_dX(delta: np.ndarray, cache: LinearCache) -> LinearGrads:
    right = linear_backward(delta, cache)
    return right._replace(dX=-right.dX)


@pytest.mark.parametrize("wrong", [transposed_dW, dropped_db, flipped_dX])
@META
@given(seed=seeds, N=st.integers(1, 16), D=st.integers(2, 24))
def test_wrong_linear_backward_fails_the_check(
    wrong: Callable[[np.ndarray, LinearCache], LinearGrads], seed: int, N: int, D: int
) -> None:
    rng = np.random.default_rng(seed)
    point = {
        "X": rng.standard_normal((N, D)),
        "W": rng.standard_normal((D, D)),  # square
        "b": rng.standard_normal(D),
    }
    dZ = rng.standard_normal((N, D))
    Z, cache = linear_forward(point["X"], point["W"], point["b"])

    def f(p: Arrays) -> float:
        return float(np.sum(linear_forward(p["X"], p["W"], p["b"])[0] * dZ))

    def as_dict(g: LinearGrads) -> Arrays:
        return {"X": g.dX, "W": g.dW, "b": g.db}

    scale = float(np.sum(np.abs(Z * dZ)))
    assert_fd_match("right linear", f, point, as_dict(linear_backward(dZ, cache)), rng, scale=scale)
    expect_detected(wrong.__name__, f, point, as_dict(wrong(dZ, cache)), rng, scale=scale)


# --- activations and losses: a wrong derivative, a missing factor ------------------------


@META
@given(seed=seeds, N=st.integers(1, 16), D=st.integers(1, 16))
def test_tanh_derivative_without_the_square_fails_the_check(seed: int, N: int, D: int) -> None:
    rng = np.random.default_rng(seed)
    point, dA = {"Z": rng.standard_normal((N, D))}, rng.standard_normal((N, D))
    A, cache = activations.activation_forward("tanh", point["Z"])

    def f(p: Arrays) -> float:
        return float(np.sum(np.tanh(p["Z"]) * dA))

    scale = float(np.sum(np.abs(A * dA)))
    right = {"Z": activations.activation_backward(dA, cache)}
    assert_fd_match("right tanh", f, point, right, rng, scale=scale)
    expect_detected("tanh 1 - A", f, point, {"Z": (1.0 - A) * dA}, rng, scale=scale)


def mse_without_the_2(dloss: float, cache: MSECache) -> np.ndarray:
    return mse_backward(dloss, cache) / 2.0


def cross_entropy_without_the_mean(dloss: float, cache: CrossEntropyCache) -> np.ndarray:
    return cross_entropy_backward(dloss, cache) * cache.probs.shape[0]


def cross_entropy_sign_flip(dloss: float, cache: CrossEntropyCache) -> np.ndarray:
    return -cross_entropy_backward(dloss, cache)


@pytest.mark.parametrize(
    "wrong", [mse_without_the_2, cross_entropy_without_the_mean, cross_entropy_sign_flip]
)
@META
@given(seed=seeds, N=st.integers(2, 16), C=st.integers(2, 16))
def test_wrong_loss_backward_fails_the_check(wrong: Any, seed: int, N: int, C: int) -> None:
    rng = np.random.default_rng(seed)
    point = {"Y": rng.standard_normal((N, C))}
    dloss = rng.standard_normal()
    if wrong is mse_without_the_2:
        T = rng.standard_normal((N, C))
        forward: Any = mse_forward
        right: Any = mse_backward
    else:
        T = rng.integers(0, C, size=N)
        forward, right = cross_entropy_forward, cross_entropy_backward
    loss, cache = forward(point["Y"], T)

    def f(p: Arrays) -> float:
        return float(dloss * forward(p["Y"], T)[0])

    scale = abs(dloss) * (loss + float(np.abs(point["Y"]).max()))
    assert_fd_match("right loss", f, point, {"Y": right(dloss, cache)}, rng, scale=scale)
    expect_detected(wrong.__name__, f, point, {"Y": wrong(dloss, cache)}, rng, scale=scale)


# --- whole networks, both modes of the check, and the adjoint test ----------------------

SMALL = MLPSpec((3, 4, 4, 2), "tanh", "sigmoid")  # 54 parameters: elementwise differences
LARGE = MLPSpec((16, 24, 24, 8), "tanh", "identity")  # 1,208: random directions per tensor


def transposed_W2(spec: MLPSpec, dY: np.ndarray, cache: MLPCache) -> Arrays:
    right = mlp_backward(spec, dY, cache)
    return {**right, "W2": right["W2"].T}  # the square hidden layer


def dropped_b1(spec: MLPSpec, dY: np.ndarray, cache: MLPCache) -> Arrays:
    right = mlp_backward(spec, dY, cache)
    return {**right, "b1": np.zeros_like(right["b1"])}


def flipped_X(spec: MLPSpec, dY: np.ndarray, cache: MLPCache) -> Arrays:
    right = mlp_backward(spec, dY, cache)
    return {**right, "X": -right["X"]}


def wrong_tanh_derivative(spec: MLPSpec, dY: np.ndarray, cache: MLPCache) -> Arrays:
    """tanh' = 1 - A instead of 1 - A², inside refimpl's own backward pass."""
    right = activations.activation_derivative

    def derivative(c: activations.ActivationCache) -> np.ndarray:
        return 1.0 - c.kept if c.name == "tanh" else right(c)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(activations, "activation_derivative", derivative)
        return mlp_backward(spec, dY, cache)


WRONG_MLP = [transposed_W2, dropped_b1, flipped_X, wrong_tanh_derivative]


@pytest.mark.parametrize("wrong", WRONG_MLP)
@pytest.mark.parametrize("spec", [SMALL, LARGE], ids=["elementwise", "directional"])
@settings(max_examples=5, deadline=None)
@given(seed=seeds, batch=st.integers(1, 8))
def test_wrong_mlp_backward_fails_the_check(wrong: Any, spec: MLPSpec, seed: int, batch: int) -> None:
    case = mlp_case(spec, batch, seed)
    X, dY = case.inputs["X"], case.inputs["dY"]
    Y, cache = mlp_forward(spec, case.params, X)
    args = (mlp_objective(spec, dY), mlp_point(case.params, X))
    scale = objective_scale(Y, dY)
    right = mlp_backward(spec, dY, cache)
    assert_fd_match("right mlp", *args, right, np.random.default_rng(seed), scale=scale)
    expect_detected(wrong.__name__, *args, wrong(spec, dY, cache), np.random.default_rng(seed), scale=scale)


@pytest.mark.parametrize("wrong", WRONG_MLP)
@settings(max_examples=5, deadline=None)
@given(seed=seeds, batch=st.integers(1, 8))
def test_wrong_mlp_backward_fails_the_adjoint_test(wrong: Any, seed: int, batch: int) -> None:
    case = mlp_case(LARGE, batch, seed)
    right, _ = mlp_adjoint_mismatch(LARGE, case.params, case.inputs["X"], np.random.default_rng(seed))
    ratio, _ = mlp_adjoint_mismatch(
        LARGE, case.params, case.inputs["X"], np.random.default_rng(seed), backward=wrong
    )
    assert right <= 1.0 and ratio > FAR, (right, ratio)  # wrong: >= 7e3 measured


# --- the check itself: sensitivity and NaN -------------------------------------------------


@META
@given(seed=seeds)
def test_a_gradient_off_by_1e_4_relative_fails_and_nan_fails(seed: int) -> None:
    """The tolerance is tight: 1e-4 relative (float32-sized errors and beyond) is caught."""
    case = mlp_case(SMALL, 4, seed)
    X, dY = case.inputs["X"], case.inputs["dY"]
    Y, cache = mlp_forward(SMALL, case.params, X)
    right = mlp_backward(SMALL, dY, cache)
    args = (mlp_objective(SMALL, dY), mlp_point(case.params, X))
    rng = np.random.default_rng(seed)
    scale = objective_scale(Y, dY)
    off = {**right, "W1": right["W1"] * (1.0 + 1e-4)}
    assert fd_mismatch(*args, off, rng, scale=scale).ratio > 10.0
    b2 = right["b2"].copy()
    b2[1] = np.nan
    with_nan = {**right, "b2": b2}
    assert fd_mismatch(*args, with_nan, rng, scale=scale).ratio == np.inf
    with pytest.raises(AssertionError, match="b2"):
        assert_fd_match("nan", *args, with_nan, rng, scale=scale)
