"""Tests of refimpl.batchnorm: finite differences, invariants, conventions, bad input.

Every gradient check uses a random upstream gradient δ (L = Σ Y ⊙ δ): with δ = 1 the
training-mode ∂L/∂X is exactly 0 and a check would prove nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import batchnorm as bn
from refimpl.gradcheck import numerical_grads, worst_mismatch

seeds = st.integers(0, 2**32 - 1)
rows = st.integers(2, 16)
cols = st.integers(1, 16)
FD = settings(max_examples=25, deadline=None)
FAST = settings(max_examples=60, deadline=None)
RTOL, ATOL = 1e-6, 1e-7  # float64 central differences, ε = 1e-6 (refimpl/gradcheck.py)


def make_case(seed: int, N: int, D: int, dtype: str = "float64") -> dict[str, Any]:
    """X with per-feature offsets and scales, γ of either sign (|γ| >= 0.2), β, δ, running stats."""
    rng = np.random.default_rng(seed)
    X = rng.normal(rng.uniform(-3, 3, D), rng.uniform(0.5, 2.0, D), size=(N, D))
    gamma = rng.choice([-1.0, 1.0], D) * rng.uniform(0.2, 2.0, D)
    return {
        k: v.astype(dtype)
        for k, v in {
            "X": X,
            "gamma": gamma,
            "beta": rng.normal(size=D),
            "dY": rng.normal(size=(N, D)),
            "running_mean": rng.normal(size=D),
            "running_var": rng.uniform(0.1, 3.0, D),
        }.items()
    }


def train_loss(p: dict[str, np.ndarray]) -> float:
    return float(np.sum(bn.batchnorm_train_forward(p["X"], p["gamma"], p["beta"])[0] * p["dY"]))


def eval_out(p: dict[str, np.ndarray]) -> np.ndarray:
    return bn.batchnorm_eval_forward(p["X"], p["gamma"], p["beta"], p["running_mean"], p["running_var"])[0]


def eval_loss(p: dict[str, np.ndarray]) -> float:
    return float(np.sum(eval_out(p) * p["dY"]))


def fd_ratio(loss: Any, case: dict[str, np.ndarray], grads: bn.BatchNormGrads) -> float:
    """The worst mismatch over dX, dγ, dβ; <= 1 means the check passes."""
    numeric = numerical_grads(loss, case, keys=["X", "gamma", "beta"])
    return max(
        worst_mismatch(a, numeric[k], rtol=RTOL, atol=ATOL)[0]
        for k, a in zip(["X", "gamma", "beta"], grads, strict=True)
    )


def constants_backward(dY: np.ndarray, cache: bn.BatchNormCache) -> bn.BatchNormGrads:
    """Wrong on purpose: μ and σ² treated as constants (terms [2] and [3] dropped)."""
    right = bn.batchnorm_train_backward(dY, cache)
    return right._replace(dX=dY * cache.gamma * cache.inv_std)


# --- gradients --------------------------------------------------------------------------


@FD
@given(seeds, rows, cols)
def test_train_backward_matches_finite_differences(seed: int, N: int, D: int) -> None:
    c = make_case(seed, N, D)
    _, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])
    assert fd_ratio(train_loss, c, bn.batchnorm_train_backward(c["dY"], cache)) <= 1.0


@FD
@given(seeds, rows, cols)
def test_eval_backward_matches_finite_differences(seed: int, N: int, D: int) -> None:
    c = make_case(seed, N, D)
    _, cache = bn.batchnorm_eval_forward(c["X"], c["gamma"], c["beta"], c["running_mean"], c["running_var"])
    assert fd_ratio(eval_loss, c, bn.batchnorm_eval_backward(c["dY"], cache)) <= 1.0


@FD
@given(seeds, rows, cols)
def test_meta_constant_statistics_backward_fails_the_check(seed: int, N: int, D: int) -> None:
    c = make_case(seed, N, D)
    _, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])
    assert fd_ratio(train_loss, c, constants_backward(c["dY"], cache)) > 1e3


@FAST
@given(seeds, rows, cols)
def test_input_gradient_invariants(seed: int, N: int, D: int) -> None:
    """Σ_n ∂L/∂X_n = 0 and Σ_n ∂L/∂X_n ⊙ x̂_n = ε s³ Σ_n δx̂_n ⊙ x̂_n, per feature."""
    c = make_case(seed, N, D)
    _, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])
    dX = bn.batchnorm_train_backward(c["dY"], cache).dX
    size = np.abs(dX).sum(axis=0) + np.abs(c["dY"] * c["gamma"]).sum(axis=0) * cache.inv_std
    assert np.all(np.abs(dX.sum(axis=0)) <= 1e-13 * size)
    dxhat_xhat = (c["dY"] * c["gamma"] * cache.xhat).sum(axis=0)
    residual = (dX * cache.xhat).sum(axis=0)
    np.testing.assert_allclose(
        residual,
        bn.DEFAULT_EPS * cache.inv_std**3 * dxhat_xhat,
        rtol=0,
        atol=1e-12 * float(size.max() * np.abs(cache.xhat).max()),
    )
    # so it vanishes as ε → 0: |residual| <= ε s² · Σ_n |∂L/∂X-sized terms| · max |x̂|
    small = bn.DEFAULT_EPS * cache.inv_std**2 * size * np.abs(cache.xhat).max(axis=0)
    assert np.all(np.abs(residual) <= 1.001 * small)


@FAST
@given(seeds, rows, cols)
def test_batch_of_ones_upstream_gives_zero_input_gradient(seed: int, N: int, D: int) -> None:
    c = make_case(seed, N, D)
    _, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])
    dX = bn.batchnorm_train_backward(np.ones_like(c["X"]), cache).dX
    assert np.abs(dX).max() <= 1e-12 * float(np.abs(c["gamma"] * cache.inv_std).max()) * N


# --- forward ----------------------------------------------------------------------------


@FAST
@given(seeds, rows, cols)
def test_output_invariant_to_shift_and_positive_scale(seed: int, N: int, D: int) -> None:
    """Y(a X + b) = Y(X) for a > 0 per feature, up to ε and rounding, both bounded below."""
    c = make_case(seed, N, D)
    rng = np.random.default_rng([seed, 1])
    a = rng.uniform(0.2, 8.0, D)  # positive, per feature
    b = rng.uniform(-50.0, 50.0, D)
    var = bn.batch_statistics(c["X"])[1]
    for eps in (bn.DEFAULT_EPS, 1e-14):
        Y, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"], eps=eps)
        Y2, _ = bn.batchnorm_train_forward(c["X"] * a + b, c["gamma"], c["beta"], eps=eps)
        # x̂ = c/√(σ² + ε) becomes c/√(σ² + ε/a²): relative change <= ε / (2 min(1, a²) σ²)
        by_eps = eps / (2 * np.minimum(1.0, a * a) * var) * np.abs(cache.xhat)
        # forming a X + b rounds each entry by ~1e-16 (a |X| + |b|), i.e. that / (a σ) in x̂
        by_rounding = 1e-13 * (1 + a * np.abs(c["X"]).max(axis=0) + np.abs(b)) / (a * np.sqrt(var))
        bound = np.abs(c["gamma"]) * (by_eps + by_rounding) + 1e-13 * (1 + np.abs(Y))
        assert np.all(np.abs(Y2 - Y) <= bound)


@FAST
@given(seeds, rows, cols)
def test_train_forward_normalizes(seed: int, N: int, D: int) -> None:
    c = make_case(seed, N, D)
    Y, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])
    np.testing.assert_allclose(cache.xhat.mean(axis=0), 0, atol=1e-13)
    var = c["X"].var(axis=0)
    np.testing.assert_allclose((cache.xhat**2).mean(axis=0), var / (var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(Y, c["gamma"] * cache.xhat + c["beta"], rtol=1e-13, atol=1e-13)


@FAST
@given(seeds, rows, cols)
def test_eval_mode_is_affine_and_row_wise(seed: int, N: int, D: int) -> None:
    c, c2 = make_case(seed, N, D), make_case(seed ^ 1, N, D)
    t = float(np.random.default_rng([seed, 2]).uniform(-2.0, 3.0))

    def f(X: np.ndarray) -> np.ndarray:
        return bn.batchnorm_eval_forward(X, c["gamma"], c["beta"], c["running_mean"], c["running_var"])[0]

    expected = c["gamma"] * (c["X"] - c["running_mean"]) / np.sqrt(c["running_var"] + 1e-5)
    np.testing.assert_allclose(f(c["X"]), expected + c["beta"], rtol=1e-13, atol=1e-13)
    mixed = f(t * c["X"] + (1 - t) * c2["X"])
    np.testing.assert_allclose(mixed, t * f(c["X"]) + (1 - t) * f(c2["X"]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(f(c["X"][: N // 2]), f(c["X"])[: N // 2])


def test_two_pass_variance_survives_a_large_mean_in_float32() -> None:
    rng = np.random.default_rng(0)
    X = (1e4 + rng.normal(size=(64, 8))).astype(np.float32)
    exact = X.astype(np.float64).var(axis=0)
    _, var = bn.batch_statistics(X)
    assert var.dtype == np.float32
    np.testing.assert_allclose(var, exact, rtol=1e-4)
    naive = (X * X).mean(axis=0) - X.mean(axis=0) ** 2  # E[x²] - E[x]², what the test must reject
    assert np.abs(naive - exact).max() > 1e-2 * exact.max()


@settings(max_examples=20, deadline=None)
@given(seeds, rows, cols)
def test_float32_keeps_its_dtype_and_agrees_with_float64(seed: int, N: int, D: int) -> None:
    c64, c32 = make_case(seed, N, D), make_case(seed, N, D, "float32")
    out = {}
    for name, c in (("64", c64), ("32", c32)):
        Y, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])
        grads = bn.batchnorm_train_backward(c["dY"], cache)
        Ye, ecache = bn.batchnorm_eval_forward(
            c["X"], c["gamma"], c["beta"], c["running_mean"], c["running_var"]
        )
        out[name] = (Y, *grads, Ye, *bn.batchnorm_eval_backward(c["dY"], ecache))
    for a64, a32 in zip(out["64"], out["32"], strict=True):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=2e-3, atol=2e-3 * (1 + np.abs(a64).max()))


def test_single_example_allow_gives_beta_and_zero_input_gradient() -> None:
    c = make_case(3, 1, 4)
    Y, cache = bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"], single_example="allow")
    np.testing.assert_array_equal(Y, c["beta"][None, :])
    grads = bn.batchnorm_train_backward(c["dY"], cache)
    np.testing.assert_array_equal(grads.dX, np.zeros_like(c["X"]))
    np.testing.assert_array_equal(grads.dbeta, c["dY"][0])


# --- running statistics -----------------------------------------------------------------


def one_step(seed: int, N: int, D: int, **conv: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    X = make_case(seed, N, D)["X"]
    mean, var = bn.batch_statistics(X)
    return bn.update_running_stats(bn.init_state(D), mean, var, N, **conv), mean, var


@FAST
@given(seeds, rows, cols)
def test_running_stats_one_step_from_init_torch_and_flax(seed: int, N: int, D: int) -> None:
    torch_state, mean, var = one_step(seed, N, D)  # the defaults are torch's
    np.testing.assert_allclose(torch_state["running_mean"], 0.1 * mean, rtol=1e-14)
    np.testing.assert_allclose(torch_state["running_var"], 0.9 + 0.1 * var * N / (N - 1), rtol=1e-14)
    flax_state, _, _ = one_step(
        seed, N, D, momentum=0.99, momentum_convention="flax", running_var_estimator="biased"
    )
    np.testing.assert_allclose(flax_state["running_mean"], 0.01 * mean, rtol=1e-12)
    np.testing.assert_allclose(flax_state["running_var"], 0.99 + 0.01 * var, rtol=1e-14)


@FAST
@given(seeds, rows, cols)
def test_meta_wrong_estimator_or_swapped_momentum_differs(seed: int, N: int, D: int) -> None:
    right, mean, var = one_step(seed, N, D)
    biased, _, _ = one_step(seed, N, D, running_var_estimator="biased")
    swapped, _, _ = one_step(seed, N, D, momentum_convention="flax")
    unbiased = var * N / (N - 1)
    rounding = 1e-15  # |r| ~ 1, so the differences below carry ~1e-16 absolute error
    # wrong estimator: short by m (b_unbiased - b_biased) = 0.1 σ²/(N-1) > 0
    np.testing.assert_allclose(
        right["running_var"] - biased["running_var"], 0.1 * var / (N - 1), rtol=1e-9, atol=rounding
    )
    assert np.all(right["running_var"] - biased["running_var"] > 0.09 * var / (N - 1) - rounding)
    # swapped momentum, m = 0.1 read as flax's: 0.9 b + 0.1 r instead of 0.1 b + 0.9 r,
    # off by 0.8 (b - r), nonzero wherever the batch statistic differs from r = (0, 1)
    np.testing.assert_allclose(
        swapped["running_mean"] - right["running_mean"], 0.8 * mean, rtol=1e-12, atol=rounding
    )
    np.testing.assert_allclose(
        swapped["running_var"] - right["running_var"], 0.8 * (unbiased - 1.0), rtol=1e-9, atol=rounding
    )
    assert np.all(np.abs(swapped["running_mean"] - right["running_mean"]) > 0.79 * np.abs(mean) - rounding)


@FAST
@given(seeds, rows, cols, st.sampled_from([bn.TORCH_CONVENTION, bn.FLAX_CONVENTION]))
def test_batchnorm_forward_matches_the_pieces_and_leaves_state(
    seed: int, N: int, D: int, conv: bn.BatchNormConvention
) -> None:
    c = make_case(seed, N, D)
    params = {"gamma": c["gamma"], "beta": c["beta"]}
    state = {"running_mean": c["running_mean"], "running_var": c["running_var"]}
    before = {k: v.copy() for k, v in state.items()}
    Y, new, cache = bn.batchnorm_forward(c["X"], params, state, train=True, convention=conv)
    keep = conv.momentum if conv.momentum_convention == "flax" else 1 - conv.momentum
    est = N / (N - 1) if conv.running_var_estimator == "unbiased" else 1.0
    var = c["X"].var(axis=0)
    np.testing.assert_allclose(
        new["running_var"], keep * before["running_var"] + (1 - keep) * est * var, rtol=1e-12
    )
    np.testing.assert_array_equal(Y, bn.batchnorm_train_forward(c["X"], c["gamma"], c["beta"])[0])
    grads = bn.batchnorm_backward(c["dY"], cache)
    assert set(grads) == {"X", "gamma", "beta"}
    np.testing.assert_array_equal(grads["X"], bn.batchnorm_train_backward(c["dY"], cache).dX)
    Ye, same, ecache = bn.batchnorm_forward(c["X"], params, state, train=False, convention=conv)
    assert isinstance(ecache, bn.BatchNormEvalCache)
    np.testing.assert_array_equal(Ye, eval_out(c))
    for k in state:
        np.testing.assert_array_equal(state[k], before[k])
        np.testing.assert_array_equal(same[k], before[k])
    assert bn.BatchNormConvention.from_json(conv.to_json()) == conv


def test_init_state_and_params() -> None:
    assert set(bn.init_state(3)) == {"running_mean", "running_var"}
    np.testing.assert_array_equal(bn.init_state(3, np.float32)["running_var"], np.ones(3))
    p = bn.init_bn_params(3, "float32")
    assert p["gamma"].dtype == np.float32 and set(p) == {"gamma", "beta"}


# --- bad input --------------------------------------------------------------------------

c0 = make_case(0, 4, 3)
G, B, X0 = c0["gamma"], c0["beta"], c0["X"]
STATE0 = bn.init_state(3)
M0, V0 = bn.batch_statistics(X0)
BAD: list[tuple[str, Any, type[Exception]]] = [
    ("gamma", lambda: bn.batchnorm_train_forward(X0, G[:2], B), ValueError),
    ("X", lambda: bn.batchnorm_train_forward(X0[0], G, B), ValueError),
    ("beta", lambda: bn.batchnorm_train_forward(X0, G, B.astype(np.float32)), TypeError),
    ("X", lambda: bn.batchnorm_train_forward(np.where(X0 > 0, np.nan, X0), G, B), ValueError),
    ("eps", lambda: bn.batchnorm_train_forward(X0, G, B, eps=0.0), ValueError),
    ("eps", lambda: bn.batchnorm_eval_forward(X0, G, B, M0, V0, eps=-1e-5), ValueError),
    (
        "momentum_convention",
        lambda: bn.update_running_stats(STATE0, M0, V0, 4, momentum_convention="keras"),
        ValueError,
    ),
    ("running_var_estimator", lambda: bn.BatchNormConvention(running_var_estimator="n-1"), ValueError),
    ("single_example", lambda: bn.batchnorm_train_forward(X0[:1], G, B), ValueError),
    ("n", lambda: bn.update_running_stats(STATE0, M0, V0, 1), ValueError),
    ("running_var", lambda: bn.batchnorm_eval_forward(X0, G, B, M0, -V0), ValueError),
    (
        "running_var",
        lambda: bn.update_running_stats({"running_mean": M0, "running_var": -V0}, M0, V0, 4),
        ValueError,
    ),
    ("state", lambda: bn.update_running_stats({"running_mean": M0}, M0, V0, 4), ValueError),
    ("dY", lambda: bn.batchnorm_train_backward(X0[:2], bn.batchnorm_train_forward(X0, G, B)[1]), ValueError),
    ("momentum", lambda: bn.BatchNormConvention(momentum=1.5), ValueError),
    ("train", lambda: bn.batchnorm_forward(X0, {"gamma": G, "beta": B}, STATE0, train="yes"), TypeError),
]


@pytest.mark.parametrize(("field", "call", "error"), BAD, ids=[f"{i}-{b[0]}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_field(field: str, call: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=field):
        call()
