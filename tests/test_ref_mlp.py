"""Tests of refimpl.mlp on whole networks: finite differences, the adjoint test, the loss
gradient, float32 against float64, the kink conventions at exact zeros, the JSON round trip.

Networks come from conformance.strategies (depth 1-5, widths 1-32, every activation, both
losses, both leaky-ReLU kink conventions); the upstream gradient δ is random: f = Σ Y ⊙ δ.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from gradients import (
    assert_fd_match,
    has_kink,
    min_abs_preactivation,
    mlp_adjoint_mismatch,
    mlp_objective,
    mlp_point,
    objective_scale,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conformance.components.mlp.strategies import mlp_case, mlp_specs
from refimpl.activations import ACTIVATIONS, LEAKY_KINKS
from refimpl.losses import LOSSES
from refimpl.mlp import (
    MLPSpec,
    loss_and_grads,
    loss_forward,
    mlp_backward,
    mlp_forward,
)

WIDTHS = tuple(range(1, 33))
specs = mlp_specs(max_depth=5, widths=WIDTHS)
batches = st.integers(1, 16)
seeds = st.integers(0, 2**32 - 1)
KINK_MARGIN = 1e-5  # |Z| below this: the steps ε = 1e-6 of finite differences may cross the kink


def _unchanged(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(before[k], after[k]) for k in before)


# --- finite differences -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(specs, batches, seeds)
def test_mlp_backward_matches_finite_differences(spec: MLPSpec, batch: int, seed: int) -> None:
    case = mlp_case(spec, batch, seed)
    X, dY = case.inputs["X"], case.inputs["dY"]
    saved = {**{k: v.copy() for k, v in case.params.items()}, "X": X.copy(), "dY": dY.copy()}
    Y, cache = mlp_forward(spec, case.params, X)
    if has_kink(spec):
        assume(min_abs_preactivation(cache) >= KINK_MARGIN)
    grads = mlp_backward(spec, dY, cache)
    assert set(grads) == set(case.params) | {"X"}
    point = mlp_point(case.params, X)
    assert_fd_match(
        f"mlp_backward {spec.to_json()} batch={batch} seed={seed}",
        mlp_objective(spec, dY),
        point,
        grads,
        np.random.default_rng(seed),
        scale=objective_scale(Y, dY),
    )
    # pure functions: nothing written into the arguments
    assert _unchanged(saved, {**case.params, "X": X, "dY": dY})


@settings(max_examples=100, deadline=None)
@given(specs, batches, seeds)
def test_mlp_backward_passes_the_adjoint_test(spec: MLPSpec, batch: int, seed: int) -> None:
    """<u, J v> (central differences of the forward) = <Jᵀ u, v> (mlp_backward), random u, v."""
    case = mlp_case(spec, batch, seed)
    ratio, crossed = mlp_adjoint_mismatch(spec, case.params, case.inputs["X"], np.random.default_rng(seed))
    assume(not crossed)  # a step ±εv across a relu kink: the difference quotient is not J v
    assert ratio <= 1.0, (spec.to_json(), batch, seed, ratio)


@settings(max_examples=100, deadline=None)
@given(specs, batches, seeds)
def test_loss_gradients_match_finite_differences(spec: MLPSpec, batch: int, seed: int) -> None:
    case = mlp_case(spec, batch, seed)
    X, targets = case.inputs["X"], case.inputs["targets"]
    Y, cache = mlp_forward(spec, case.params, X)
    if has_kink(spec):
        assume(min_abs_preactivation(cache) >= KINK_MARGIN)
    loss, grads = loss_and_grads(spec, case.params, X, targets)
    assert loss == loss_forward(spec, Y, targets)[0]

    def f(point: dict[str, np.ndarray]) -> float:
        Yp, _ = mlp_forward(spec, {k: v for k, v in point.items() if k != "X"}, point["X"])
        return loss_forward(spec, Yp, targets)[0]

    # round-off of L: u |L| (MSE sums positive terms), u max |Y| per row (logsumexp)
    assert_fd_match(
        f"loss_and_grads {spec.to_json()} batch={batch} seed={seed}",
        f,
        mlp_point(case.params, X),
        grads,
        np.random.default_rng(seed),
        scale=abs(loss) + float(np.abs(Y).max()),
    )


# --- float32 ---------------------------------------------------------------------------

# float32 against float64, per tensor: max |g32 - g64| <= F32_RTOL max |g64|. Each of the <= 10
# matrix products (forward and backward, depth <= 5) of <= 32 terms adds at most 32 u
# (u = 6e-8) of the scale of its operands, 2e-5 in the worst case for all of them; measured
# over 1,000 networks the largest error is 4e-6 of the largest entry. A gradient computed in
# float16, or with a wrong dtype cast of a term, is off by far more than 1e-4.
F32_RTOL = 1e-4
F32_KINK_MARGIN = 1e-4  # float32 Z is off by up to ~32 u |W| |A| ~ 1e-5: keep clear of the kink


def _to32(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def _assert_close_to_float64(g32: dict[str, Any], g64: dict[str, Any], what: str) -> None:
    for k, ref in g64.items():
        assert g32[k].dtype == np.float32, f"{what} {k}: computed in {g32[k].dtype}"
        err = float(np.abs(g32[k].astype(np.float64) - ref).max())
        assert err <= F32_RTOL * float(np.abs(ref).max()), f"{what} {k}: error {err}"


@settings(max_examples=100, deadline=None)
@given(specs, batches, seeds)
def test_float32_gradients_are_close_to_float64(spec: MLPSpec, batch: int, seed: int) -> None:
    case = mlp_case(spec, batch, seed)
    X, dY, targets = case.inputs["X"], case.inputs["dY"], case.inputs["targets"]
    _, cache = mlp_forward(spec, case.params, X)
    if has_kink(spec):
        assume(min_abs_preactivation(cache) >= F32_KINK_MARGIN)
    s32 = replace(spec, dtype="float32")
    Y32, cache32 = mlp_forward(s32, _to32(case.params), X.astype(np.float32))
    assert Y32.dtype == np.float32
    _assert_close_to_float64(
        mlp_backward(s32, dY.astype(np.float32), cache32),
        mlp_backward(spec, dY, cache),
        f"mlp_backward {spec.to_json()}",
    )
    t32 = targets.astype(np.float32) if targets.dtype.kind == "f" else targets
    loss32, grads32 = loss_and_grads(s32, _to32(case.params), X.astype(np.float32), t32)
    loss64, grads64 = loss_and_grads(spec, case.params, X, targets)
    _assert_close_to_float64(grads32, grads64, f"loss_and_grads {spec.to_json()}")
    assert abs(loss32 - loss64) <= F32_RTOL * (abs(loss64) + float(np.abs(Y32).max()))


# --- kinks: exact zeros ----------------------------------------------------------------


def derivative_at_zero(name: str, slope: float, leaky_kink: str) -> float:
    """f'(0) by the conventions' definitions (refimpl.activations' docstring, CONVENTIONS):

    relu'(0) = 0 (torch, jax.nn.relu); leaky_relu'(0) is the negative side's slope under
    "slope" (torch) and the positive side's 1 under "one" (jax); identity'(0) = 1.
    """
    if name == "relu":
        return 0.0
    if name == "leaky_relu":
        return {"slope": slope, "one": 1.0}[leaky_kink]
    assert name == "identity", name
    return 1.0


@settings(max_examples=100, deadline=None)
@given(
    mlp_specs(max_depth=4, widths=(1, 2, 3, 5, 8), activations=("relu", "leaky_relu", "identity")),
    batches,
    seeds,
)
def test_kink_rows_follow_the_convention(spec: MLPSpec, batch: int, seed: int) -> None:
    """Zero biases and zero input rows: every Zˡ of those rows is exactly 0 (f(0) = 0 here).

    For such a row, with sˡ = fˡ'(0): δᴸ = sᴸ dY, δˡ⁻¹ = sˡ⁻¹ δˡ Wˡ, ∂L/∂X = δ¹ W¹; it adds
    Σ δˡ to ∂L/∂bˡ and nothing to ∂L/∂Wˡ (Aˡ⁻¹ = 0). The other rows give what they give alone.
    """
    case = mlp_case(spec, batch, seed, kinks=True)
    p, X, dY = case.params, case.inputs["X"], case.inputs["dY"]
    zero_rows, other_rows = np.arange(0, batch, 2), np.arange(1, batch, 2)
    assert not X[zero_rows].any() and not any(p[f"b{l}"].any() for l in range(1, spec.depth + 1))
    _, cache = mlp_forward(spec, p, X)
    grads = mlp_backward(spec, dY, cache)

    s = [
        derivative_at_zero(spec.activation(l), spec.slope, spec.leaky_kink) for l in range(1, spec.depth + 1)
    ]
    delta = s[-1] * dY[zero_rows]
    expected_db = {}
    for l in range(spec.depth, 0, -1):
        expected_db[f"b{l}"] = delta.sum(axis=0)
        back = delta @ p[f"W{l}"]
        delta = s[l - 2] * back if l > 1 else back
    expected_dX = delta

    if other_rows.size:
        _, rest = mlp_forward(spec, p, X[other_rows])
        alone = mlp_backward(spec, dY[other_rows], rest)
    else:
        alone = {k: np.zeros_like(v) for k, v in grads.items() if k != "X"}
    size = max(float(np.abs(v).max()) for v in grads.values()) + 1.0
    close: dict[str, Any] = {"rtol": 1e-12, "atol": 1e-13 * size}
    np.testing.assert_allclose(grads["X"][zero_rows], expected_dX, **close)
    if other_rows.size:
        np.testing.assert_allclose(grads["X"][other_rows], alone["X"], **close)
    for l in range(1, spec.depth + 1):
        np.testing.assert_allclose(grads[f"W{l}"], alone[f"W{l}"], **close)
        np.testing.assert_allclose(grads[f"b{l}"], alone[f"b{l}"] + expected_db[f"b{l}"], **close)


def test_relu_network_at_the_kink_passes_no_gradient_and_leaky_ones_pass_the_convention() -> None:
    """A pinned example: X = 0, b = 0, W = 1, one hidden unit, so every Z is exactly 0."""
    X, dY = np.zeros((1, 1)), np.array([[3.0]])
    p = {"W1": np.ones((1, 1)), "b1": np.zeros(1), "W2": np.ones((1, 1)), "b2": np.zeros(1)}
    expected = {
        ("relu", "slope"): 0.0,
        ("relu", "one"): 0.0,
        ("leaky_relu", "slope"): 3.0 * 0.2 * 0.2,
        ("leaky_relu", "one"): 3.0,
    }
    for (name, kink), dx in expected.items():
        spec = MLPSpec((1, 1, 1), name, name, slope=0.2, leaky_kink=kink)
        grads = mlp_backward(spec, dY, mlp_forward(spec, p, X)[1])
        assert grads["X"][0, 0] == pytest.approx(dx, rel=1e-15, abs=0.0), (name, kink)
        assert grads["b1"][0] == pytest.approx(dx, rel=1e-15, abs=0.0), (name, kink)
        assert grads["W1"][0, 0] == 0.0 and grads["W2"][0, 0] == 0.0  # Aˡ⁻¹ = 0


# --- the spec as JSON ------------------------------------------------------------------

any_specs = st.builds(
    MLPSpec,
    sizes=st.lists(st.integers(1, 10**6), min_size=2, max_size=8).map(tuple),
    hidden_activation=st.sampled_from(ACTIVATIONS),
    output_activation=st.sampled_from(ACTIVATIONS),
    loss=st.sampled_from(LOSSES),
    slope=st.floats(0.0, 1.0),
    leaky_kink=st.sampled_from(LEAKY_KINKS),
    dtype=st.sampled_from(("float32", "float64")),
)


@settings(max_examples=150, deadline=None)
@given(any_specs)
def test_spec_json_round_trip(spec: MLPSpec) -> None:
    text = spec.to_json()
    again = MLPSpec.from_json(text)
    assert again == spec and again.to_json() == text
    assert isinstance(again.sizes, tuple) and again.param_shapes() == spec.param_shapes()
    data = json.loads(text)
    assert list(data) == sorted(data) and data["sizes"] == list(spec.sizes)
