"""Tests of the reference layers one at a time: linear, activations, losses.

Gradients against float64 central differences (tests/gradients.py) with a random upstream
gradient (f = Σ out ⊙ δ for arrays, f = dloss · L for a loss); the kink conventions at exact
zeros against their definitions; float32 against float64; cross-entropy at logits of 1e4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gradients import assert_fd_match
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl.activations import (
    ACTIVATIONS,
    LEAKY_KINKS,
    activation_backward,
    activation_forward,
)
from refimpl.linear import linear_backward, linear_forward
from refimpl.losses import (
    cross_entropy_backward,
    cross_entropy_forward,
    mse_backward,
    mse_forward,
)

seeds = st.integers(0, 2**32 - 1)
rows = st.integers(1, 16)
cols = st.integers(1, 32)
FD = settings(max_examples=40, deadline=None)
KINK_MARGIN = 1e-5  # |Z| below this: a step ε = 1e-6 may cross the kink
Arrays = dict[str, np.ndarray]


# --- linear ----------------------------------------------------------------------------


@FD
@given(seeds, rows, cols, cols)
def test_linear_backward_matches_finite_differences(seed: int, N: int, D: int, H: int) -> None:
    rng = np.random.default_rng(seed)
    point = {"X": rng.standard_normal((N, D)), "W": rng.standard_normal((H, D)), "b": rng.standard_normal(H)}
    dZ = rng.standard_normal((N, H))
    Z, cache = linear_forward(point["X"], point["W"], point["b"])
    assert Z.shape == (N, H)
    grads = linear_backward(dZ, cache)
    assert_fd_match(
        f"linear N={N} D={D} H={H} seed={seed}",
        lambda p: float(np.sum(linear_forward(p["X"], p["W"], p["b"])[0] * dZ)),
        point,
        {"X": grads.dX, "W": grads.dW, "b": grads.db},
        rng,
        scale=float(np.sum(np.abs(Z * dZ))),
    )


# --- activations -----------------------------------------------------------------------


def activation_point(seed: int, N: int, D: int) -> tuple[Arrays, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    return {"Z": 3.0 * rng.standard_normal((N, D))}, rng.standard_normal((N, D)), rng.uniform()


@pytest.mark.parametrize("kink", LEAKY_KINKS)
@pytest.mark.parametrize("name", ACTIVATIONS)
@settings(max_examples=15, deadline=None)
@given(seed=seeds, N=rows, D=cols)
def test_activation_backward_matches_finite_differences(
    name: str, kink: str, seed: int, N: int, D: int
) -> None:
    point, dA, slope = activation_point(seed, N, D)
    if "relu" in name or name == "selu":  # SELU's slope jumps at 0 too (λ against λ α_S)
        assume(np.abs(point["Z"]).min() >= KINK_MARGIN)
    A, cache = activation_forward(name, point["Z"], slope=slope, leaky_kink=kink)
    dZ = activation_backward(dA, cache)

    def f(p: Arrays) -> float:
        return float(np.sum(activation_forward(name, p["Z"], slope=slope, leaky_kink=kink)[0] * dA))

    assert_fd_match(
        f"{name} ({kink}) N={N} D={D} seed={seed}",
        f,
        point,
        {"Z": dZ},
        np.random.default_rng(seed),
        scale=float(np.sum(np.abs(A * dA))),
    )


def derivative_by_definition(name: str, z: float, slope: float, leaky_kink: str) -> float:
    """f'(z) from the definitions: 1 / slope / 0 away from 0; at 0, relu'(0) = 0 (torch,
    jax.nn.relu), leaky_relu'(0) = slope under "slope" (torch), 1 under "one" (jax)."""
    if name == "relu":
        return 1.0 if z > 0 else 0.0
    assert name == "leaky_relu"
    if z == 0:
        return slope if leaky_kink == "slope" else 1.0
    return 1.0 if z > 0 else slope


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "kink"), [("relu", "slope"), ("relu", "one"), ("leaky_relu", "slope"), ("leaky_relu", "one")]
)
def test_derivative_at_exact_zero_is_the_convention(name: str, kink: str, dtype: str) -> None:
    slope = 0.25
    Z = np.array([[0.0, -2.0, 0.0], [3.0, 0.0, -0.0]], dtype=dtype)  # -0.0 is 0 too
    dA = np.array([[1.5, -2.0, -3.0], [0.5, 7.0, 2.0]], dtype=dtype)
    _, cache = activation_forward(name, Z, slope=slope, leaky_kink=kink)
    dZ = activation_backward(dA, cache)
    expected = [
        [derivative_by_definition(name, z, slope, kink) * d for z, d in zip(zr, dr, strict=True)]
        for zr, dr in zip(Z.tolist(), dA.tolist(), strict=True)
    ]
    assert dZ.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dZ, np.array(expected, dtype=dtype))


@pytest.mark.parametrize(
    ("name", "kink", "side"),
    [
        ("relu", "slope", -1),
        ("relu", "one", -1),  # relu'(0) = 0: the left derivative
        ("leaky_relu", "slope", -1),  # "slope": the left derivative
        ("leaky_relu", "one", +1),  # "one": the right derivative
    ],
)
def test_kink_convention_is_a_one_sided_derivative_of_the_forward(name: str, kink: str, side: int) -> None:
    """The backward's f'(0) equals the one-sided difference quotient of the forward itself."""
    slope, h = 0.125, 2.0**-10  # powers of two: the quotient is exact

    def fwd(z: float) -> float:
        return float(activation_forward(name, np.array([z]), slope=slope, leaky_kink=kink)[0][0])

    quotient = (fwd(side * h) - fwd(0.0)) / (side * h)
    _, cache = activation_forward(name, np.zeros(1), slope=slope, leaky_kink=kink)
    assert activation_backward(np.ones(1), cache)[0] == quotient


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_smooth_activations_do_not_overflow(name: str) -> None:
    Z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    with np.errstate(all="raise"):
        A, cache = activation_forward(name, Z)
        dZ = activation_backward(np.ones_like(Z), cache)
    if name == "sigmoid":
        # 1 / (1 + e^{-z}) for z >= 0 and e^{z} / (1 + e^{z}) for z < 0: neither overflows.
        # refimpl's (1 + tanh(z/2)) / 2 is exact to u in absolute terms, not relative in the
        # far negative tail (it gives σ(-40) = 0, not 4e-18), hence atol = 1e-16.
        with np.errstate(under="ignore"):
            e = np.exp(-np.abs(Z))
        reference = np.where(Z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        np.testing.assert_allclose(A, reference, rtol=1e-14, atol=1e-16)
    assert np.all(np.isfinite(dZ)) and dZ[0] == 0.0 and dZ[-1] == 0.0


# --- losses ----------------------------------------------------------------------------


@FD
@given(seeds, rows, cols)
def test_mse_backward_matches_finite_differences(seed: int, N: int, C: int) -> None:
    rng = np.random.default_rng(seed)
    point = {"Y": rng.standard_normal((N, C)), "T": rng.standard_normal((N, C))}
    dloss = rng.standard_normal()  # a random upstream gradient for the scalar L
    loss, cache = mse_forward(point["Y"], point["T"])
    assert loss == pytest.approx(np.sum((point["Y"] - point["T"]) ** 2) / (N * C), rel=1e-14)
    assert_fd_match(
        f"mse N={N} C={C} seed={seed}",
        lambda p: dloss * mse_forward(p["Y"], p["T"])[0],
        point,
        {"Y": mse_backward(dloss, cache)},
        rng,
        scale=abs(dloss * loss),
    )


def logsumexp_reference(Z: np.ndarray) -> np.ndarray:
    """log Σ_c e^{Z_c} per row by np.logaddexp, a formula independent of refimpl's."""
    return np.logaddexp.reduce(Z, axis=1)


@FD
@given(seeds, rows, st.integers(1, 32))
def test_cross_entropy_backward_matches_finite_differences(seed: int, N: int, C: int) -> None:
    rng = np.random.default_rng(seed)
    point = {"Z": 3.0 * rng.standard_normal((N, C))}
    labels = rng.integers(0, C, size=N)
    dloss = rng.standard_normal()
    loss, cache = cross_entropy_forward(point["Z"], labels)
    expected = np.mean(logsumexp_reference(point["Z"]) - point["Z"][np.arange(N), labels])
    assert loss == pytest.approx(expected, rel=1e-12, abs=1e-14)
    dZ = cross_entropy_backward(dloss, cache)
    np.testing.assert_array_equal(cross_entropy_backward(dloss, cache), dZ)  # cache untouched
    assert_fd_match(
        f"cross_entropy N={N} C={C} seed={seed}",
        lambda p: dloss * cross_entropy_forward(p["Z"], labels)[0],
        point,
        {"Z": dZ},
        rng,
        scale=abs(dloss) * (loss + float(np.abs(point["Z"]).max())),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_is_stable_at_logits_of_1e4(dtype: str) -> None:
    Z = np.array([[1e4, 0.0]], dtype=dtype)
    loss0, cache0 = cross_entropy_forward(Z, np.array([0]))
    loss1, cache1 = cross_entropy_forward(Z, np.array([1]))
    assert loss0 == pytest.approx(0.0, abs=1e-12)  # log(1 + e^{-1e4})
    assert loss1 == pytest.approx(1e4, rel=1e-12)  # 1e4 + log(1 + e^{-1e4})
    np.testing.assert_allclose(cross_entropy_backward(1.0, cache0), [[0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(cross_entropy_backward(1.0, cache1), [[1.0, -1.0]], atol=1e-12)
    both = np.array([[1e4, 0.0], [-1e4, 1e4]], dtype=dtype)  # N = 2: the gradient is over N
    loss, cache = cross_entropy_forward(both, np.array([1, 0]))
    assert loss == pytest.approx((1e4 + 2e4) / 2, rel=1e-6)
    np.testing.assert_allclose(cross_entropy_backward(1.0, cache), [[0.5, -0.5], [-0.5, 0.5]], atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(seeds, rows, st.integers(1, 32))
def test_cross_entropy_at_large_logits_is_finite_and_right(seed: int, N: int, C: int) -> None:
    rng = np.random.default_rng(seed)
    Z = 1e4 * rng.standard_normal((N, C))
    labels = rng.integers(0, C, size=N)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, cache = cross_entropy_forward(Z, labels)
        dZ = cross_entropy_backward(1.0, cache)
    lse = logsumexp_reference(Z)
    # Z - logsumexp(Z) is rounded to u max |Z| ~ 1e-11 (|Z| ~ 4e4): so are L and log softmax
    rounding = 1e-14 * float(np.abs(Z).max())
    assert loss == pytest.approx(np.mean(lse - Z[np.arange(N), labels]), rel=1e-12, abs=rounding)
    onehot = np.eye(C)[labels]
    np.testing.assert_allclose(dZ, (np.exp(Z - lse[:, None]) - onehot) / N, rtol=0, atol=rounding)
    np.testing.assert_allclose(dZ.sum(axis=1), 0.0, atol=1e-15)  # softmax and onehot sum to 1
    shift = 1e4 * rng.standard_normal((N, 1))  # softmax is invariant to a per-row shift
    shifted = cross_entropy_forward(Z + shift, labels)[0]
    assert shifted == pytest.approx(loss, rel=1e-12, abs=10 * rounding)


# --- float32 against float64 -----------------------------------------------------------

# float32 rounds each operand to u = 6e-8 of its size, so the error of a gradient is a few u
# of the size of its operands, not of the result (near saturation, tanh' = 1 - A² is 1e-8
# and float32 gives 0): |f' δ| with 0 <= f' <= 1 has operands of size |δ|; the MSE residual
# Y - T of size |Y| + |T|; softmax - onehot of size 1 with logits up to 15, so u · 15.
# Relative to those scales 1e-5 leaves a margin of about 10.
F32_LAYER_RTOL = 1e-5


@settings(max_examples=40, deadline=None)
@given(seeds, rows, cols, st.sampled_from(ACTIVATIONS), st.sampled_from(LEAKY_KINKS))
def test_float32_layers_are_close_to_float64(seed: int, N: int, D: int, name: str, kink: str) -> None:
    point, dA, slope = activation_point(seed, N, D)
    Z, dloss = point["Z"], 0.7  # rounding to float32 keeps the sign of Z: relu's branches agree
    labels = np.random.default_rng(seed).integers(0, D, size=N)
    scales = {
        "act": float(np.abs(dA).max()),
        "mse": 2 * dloss / Z.size * float(np.abs(Z).max() + np.abs(dA).max()),
        "ce": dloss / N,
    }
    results: dict[str, list[Any]] = {"act": [], "mse": [], "ce": []}
    for dtype in ("float64", "float32"):
        Zt, dAt = Z.astype(dtype), dA.astype(dtype)
        _, cache = activation_forward(name, Zt, slope=slope, leaky_kink=kink)
        results["act"].append(activation_backward(dAt, cache))
        results["mse"].append(mse_backward(dloss, mse_forward(Zt, dAt)[1]))
        results["ce"].append(cross_entropy_backward(dloss, cross_entropy_forward(Zt, labels)[1]))
    for what, (g64, g32) in results.items():
        assert g32.dtype == np.float32, what
        error = float(np.abs(g32.astype(np.float64) - g64).max())
        assert error <= F32_LAYER_RTOL * scales[what], (what, error, scales[what])
