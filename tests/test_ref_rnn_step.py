"""The RNN step functions of the README's table (`rnn.rnn_step_forward`, `rnn.rnn_step_backward`),
checked on their own: against plain NumPy, finite differences, and the sequence functions.

`rnn_sequence_backward` does not call the step backward (it takes every step's input term
and the weight gradients as single products over all steps, README "Benchmarks"), so the
step functions are held to the same math here: one step's backward must be the gradient of
Σ h_t ⊙ u, and T steps chained by hand must give what the sequence backward gives.
(tests/meta_tests/test_ref_survivors.py plants a step backward without f'(z) on the
recurrent path and sees these tests fail.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refimpl import rnn
from refimpl.gradcheck import numerical_grads, worst_mismatch

STEP_KEYS = ("x_t", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh")
RTOL, ATOL = 1e-6, 1e-8  # float64 central differences (refimpl/gradcheck.py)
CASES = [(seed, f) for seed in range(4) for f in rnn.NONLINEARITIES]


def step_point(seed: int, N: int = 3, D: int = 2, H: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"x_t": (N, D), "h_prev": (N, H), "W_ih": (H, D), "W_hh": (H, H), "b_ih": (H,), "b_hh": (H,)}
    return {k: rng.standard_normal(shape) for k, shape in shapes.items()}


def plain_step(p: dict[str, np.ndarray], nonlinearity: str) -> tuple[np.ndarray, np.ndarray]:
    """(h_t, z_t) in plain NumPy."""
    z = p["x_t"] @ p["W_ih"].T + p["b_ih"] + p["h_prev"] @ p["W_hh"].T + p["b_hh"]
    return (np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0.0)), z


@pytest.mark.parametrize(("seed", "nonlinearity"), CASES)
def test_step_forward_is_the_elman_step(seed: int, nonlinearity: str) -> None:
    p = step_point(seed)
    h, _ = rnn.rnn_step_forward(*(p[k] for k in STEP_KEYS), nonlinearity)
    np.testing.assert_allclose(h, plain_step(p, nonlinearity)[0], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize(("seed", "nonlinearity"), CASES)
def test_step_backward_matches_finite_differences(seed: int, nonlinearity: str) -> None:
    """∂/∂(x_t, h_{t-1}, W_ih, W_hh, b_ih, b_hh) of Σ h_t ⊙ u, u random, every entry."""
    p = step_point(seed)
    z = plain_step(p, nonlinearity)[1]
    assert np.abs(z).min() > 1e-3, "the seeds keep z clear of relu's kink by far more than the step"
    u = np.random.default_rng(seed + 100).standard_normal(z.shape)
    _, cache = rnn.rnn_step_forward(*(p[k] for k in STEP_KEYS), nonlinearity)
    analytic = dict(
        zip(("x_t", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh"), rnn.rnn_step_backward(u, cache), strict=True)
    )
    numeric = numerical_grads(lambda q: float(np.sum(plain_step(q, nonlinearity)[0] * u)), p)
    for key in STEP_KEYS:
        ratio, at = worst_mismatch(analytic[key], numeric[key], rtol=RTOL, atol=ATOL)
        assert ratio <= 1.0, (
            f"{nonlinearity} step: ∂/∂{key}{list(at)} = {analytic[key][at]!r},"
            f" finite differences {numeric[key][at]!r} ({ratio:.3g} tolerances)"
        )


def chained_steps(
    X: np.ndarray, h0: np.ndarray, W: tuple[np.ndarray, ...], dH: np.ndarray, nonlinearity: str
) -> dict[str, Any]:
    """BPTT written with the step functions: forward step by step, then t = T..1 carrying
    ∂L/∂h_{t-1} = step backward's dh_prev into dH[t-2], the weight gradients summed."""
    h, caches = h0, []
    for x_t in X:
        h, cache = rnn.rnn_step_forward(x_t, h, *W, nonlinearity)
        caches.append(cache)
    total = {k: np.zeros_like(w) for k, w in zip(("W_ih", "W_hh", "b_ih", "b_hh"), W, strict=True)}
    dX, carried = np.empty_like(X), np.zeros_like(h0)
    for t in range(X.shape[0] - 1, -1, -1):
        g = rnn.rnn_step_backward(dH[t] + carried, caches[t])
        dX[t], carried = g.dx, g.dh_prev
        for k, value in zip(total, (g.dW_ih, g.dW_hh, g.db_ih, g.db_hh), strict=True):
            total[k] += value
    return {**total, "X": dX, "h0": carried}


@pytest.mark.parametrize("T", [1, 2, 5])
@pytest.mark.parametrize(("seed", "nonlinearity"), CASES)
def test_the_sequence_backward_is_the_step_backward_chained(seed: int, nonlinearity: str, T: int) -> None:
    """T = 1 is one step of the sequence backward; T > 1 also carries δ_t W_hh back."""
    p = step_point(seed)
    rng = np.random.default_rng(seed + 201)
    X = rng.standard_normal((T, *p["x_t"].shape))
    W = tuple(p[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh"))
    dH = rng.standard_normal((T, *p["h_prev"].shape))
    H_all, seq = rnn.rnn_sequence_forward(X, p["h_prev"], *W, nonlinearity)
    if nonlinearity == "relu":  # f' = 1 everywhere would hide a step that drops f'
        assert all((a.kept < 0).any() and (a.kept > 0).any() for a in seq.acts), "seeds: both signs of z"
    g = rnn.rnn_sequence_backward(dH, seq)
    sequence = {"W_ih": g.dW_ih, "W_hh": g.dW_hh, "b_ih": g.db_ih, "b_hh": g.db_hh, "X": g.dX, "h0": g.dh0}
    by_steps = chained_steps(X, p["h_prev"], W, dH, nonlinearity)
    h = p["h_prev"]
    for t in range(T):  # the sequence adds b_ih + b_hh to every step's input term first
        h = rnn.rnn_step_forward(X[t], h, *W, nonlinearity)[0]
        np.testing.assert_allclose(H_all[t], h, rtol=1e-13, atol=1e-13, err_msg=f"h_{t + 1}")
    for key, value in sequence.items():
        np.testing.assert_allclose(
            value, by_steps[key], rtol=1e-12, atol=1e-13, err_msg=f"{nonlinearity}, T = {T}: {key}"
        )
