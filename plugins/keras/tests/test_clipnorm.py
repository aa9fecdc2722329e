"""Keras's `clipnorm` (each variable clipped by its own L2 norm) against refimpl.clip.clip_by_norm.

The clip component draws global-norm and by-value clipping only (its properties assume one
coefficient for every tensor), so per-variable clipping is checked here, through the same
SGD step the adapter takes (learning rate 1 on zero variables: the update is -clip(g)).
Both sides compute g · M / max(n, M) in the gradients' dtype; they differ only in the order
XLA sums the squares, so each entry may differ by a few roundings of its tensor's largest.
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance.tolerances import EPS
from conformance_keras.clip import clipped
from refimpl.clip import clip_by_norm

ROUNDINGS = 4  # a sum of squares in another order, its square root, one product, one quotient


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], dtype: str) -> None:
    for k, w in want.items():
        scale = float(np.max(np.abs(np.where(np.isfinite(w), w, 0.0)), initial=0.0)) or 1.0
        np.testing.assert_array_equal(np.isnan(got[k]), np.isnan(w), err_msg=k)
        np.testing.assert_allclose(
            np.nan_to_num(got[k]), np.nan_to_num(w), rtol=0, atol=ROUNDINGS * EPS[dtype] * scale, err_msg=k
        )


def grads(dtype: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W": (rng.standard_normal((4, 3)) * 3).astype(dtype),
        "b": (rng.standard_normal(4) * 0.1).astype(dtype),
        "s": np.asarray(rng.standard_normal(), dtype),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("M", [0.05, 0.5, 2.0, 100.0])
def test_each_variable_is_clipped_by_its_own_norm(dtype: str, M: float) -> None:
    g = grads(dtype, seed=int(M * 100))
    got, _ = clipped(g, "norm", M)
    want = {k: v.astype(np.float64) for k, v in clip_by_norm(g, M).items()}
    assert_close(got, want, dtype)
    for k, v in got.items():  # each tensor's own norm is bounded, not the global one
        assert np.linalg.norm(v) <= M * (1 + ROUNDINGS * EPS[dtype]), k


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_nan_or_inf_stays_in_its_own_variable(dtype: str) -> None:
    g = grads(dtype, seed=1)
    g["W"][1, 2], g["b"][0] = np.nan, np.inf
    got, _ = clipped(g, "norm", 1.0)
    want = {k: v.astype(np.float64) for k, v in clip_by_norm(g, 1.0).items()}
    assert_close(got, want, dtype)
    assert np.isnan(got["W"]).all()  # n = NaN: every entry of that tensor
    assert np.isnan(got["b"][0]) and (got["b"][1:] == 0).all()  # n = inf: finite entries 0
    assert np.isfinite(got["s"]).all()  # the other tensor is untouched by them


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_below_the_threshold_a_gradient_comes_back_within_a_rounding(dtype: str) -> None:
    """g · M / max(n, M) = (g · M) / M below the threshold: g up to one rounding of each step."""
    g = grads(dtype, seed=3)
    got, _ = clipped(g, "norm", 1e3)
    for k, v in g.items():
        np.testing.assert_allclose(got[k], v.astype(np.float64), rtol=2 * EPS[dtype], atol=0, err_msg=k)


@pytest.mark.parametrize("option", ["norm", "global_norm", "value"])
def test_a_threshold_of_zero_switches_clipping_off(option: str) -> None:
    """Keras's convention (known issue keras-clip-threshold-zero-is-off): 0 means no clipping."""
    g = grads("float64", seed=2)
    got, _ = clipped(g, option, 0.0)
    for k, v in g.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
