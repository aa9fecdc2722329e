"""Tests of refimpl.mlp with batch norm (Linear -> BN -> activation): finite differences in
both modes, the running statistics under both conventions, state and parameters left
alone, initialization, JSON, bad input.

Every gradient check uses a random upstream gradient δ (f = Σ Y ⊙ δ); cases come from
conformance/components/mlp_bn/strategies.py (γ of either sign, running statistics away from 0 and 1).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.components.mlp_bn.strategies import BN_CATALOG, bn_case, bn_specs
from refimpl import batchnorm as bn
from refimpl import mlp
from refimpl.gradcheck import numerical_grads, worst_mismatch
from refimpl.mlp import MLPSpec
from refimpl.mlp_bn import (
    init_params,
    init_state,
    loss_and_grads_state,
    mlp_bn_backward,
    mlp_bn_backward_deltas,
    mlp_bn_forward,
)

seeds = st.integers(0, 2**32 - 1)
smooth = bn_specs().filter(
    lambda s: not {s.hidden_activation, s.output_activation} & {"relu", "leaky_relu"}
)  # no kink for the differences to cross
RTOL, ATOL = 1e-6, 1e-7  # float64 differences, extrapolated (below)
# A batch norm over N = 3 rows has large third derivatives: a plain central difference at
# ε = 1e-6 was off by twice the tolerance on a (3, 16, 8, 16, 1) tanh network in training mode
# (its error fell 100-fold per 10-fold smaller ε: the h² truncation term, not the backward).
# Richardson's (4 D(h/2) - D(h)) / 3 cancels that term: error O(h⁴) + rounding ~ 1e-16 |f| / h.
FD_EPS = 1e-5


def extrapolated_grads(f: Any, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Central differences at steps h and h/2 (h = FD_EPS max(1, |x|)), extrapolated."""
    coarse, fine = numerical_grads(f, point, eps=FD_EPS), numerical_grads(f, point, eps=FD_EPS / 2)
    return {k: (4 * fine[k] - coarse[k]) / 3 for k in point}


SPEC = BN_CATALOG[1]  # (4, 6, 6, 3), relu, two batch norms


def fd_ratio(spec: MLPSpec, case: Any, train: bool) -> float:
    """The worst mismatch between mlp_backward and central differences of Σ Y ⊙ δ."""
    dY, state = case.inputs["dY"], case.state

    def f(point: dict[str, np.ndarray]) -> float:
        params = {k: v for k, v in point.items() if k != "X"}
        Y = mlp_bn_forward(spec, params, point["X"], state, train=train)[0]
        return float(np.sum(Y * dY))

    point = {**case.params, "X": case.inputs["X"]}
    _, _, cache = mlp_bn_forward(spec, case.params, point["X"], state, train=train)
    grads = mlp_bn_backward(spec, dY, cache)
    numeric = extrapolated_grads(f, point)
    return max(worst_mismatch(grads[k], numeric[k], rtol=RTOL, atol=ATOL)[0] for k in point)


@settings(max_examples=40, deadline=None)
@given(smooth, st.sampled_from((3, 4, 8)), seeds, st.booleans())
def test_backward_matches_finite_differences(spec: MLPSpec, N: int, seed: int, train: bool) -> None:
    assert fd_ratio(spec, bn_case(spec, N, seed, train=train), train) <= 1.0


def test_the_case_plain_differences_missed_agrees_once_extrapolated() -> None:
    spec = replace(BN_CATALOG[0], sizes=(3, 16, 8, 16, 1), hidden_activation="tanh")
    assert fd_ratio(spec, bn_case(spec, 3, 4, train=True), True) <= 1.0


def test_meta_constant_statistics_backward_fails_finite_differences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def constants(dY: np.ndarray, cache: bn.BatchNormCache) -> bn.BatchNormGrads:
        return bn.batchnorm_eval_backward(dY, bn.BatchNormEvalCache(*cache))

    spec = BN_CATALOG[0]
    case = bn_case(spec, 6, 1, train=True)
    assert fd_ratio(spec, case, True) <= 1.0
    monkeypatch.setattr(bn, "batchnorm_train_backward", constants)
    assert fd_ratio(spec, case, True) > 1e3


@settings(max_examples=20, deadline=None)
@given(seeds)
def test_deltas_are_the_linear_layers_errors(seed: int) -> None:
    """δˡ = ∂L/∂Zˡ: ∂L/∂Wˡ = δˡᵀ Aˡ⁻¹ and ∂L/∂X = δ¹ W¹; Σ_n δˡ_n = 0 before a batch norm."""
    case = bn_case(SPEC, 6, seed, train=True)
    _, _, cache = mlp_bn_forward(SPEC, case.params, case.inputs["X"], case.state, train=True)
    grads, deltas = mlp_bn_backward_deltas(SPEC, case.inputs["dY"], cache)
    assert len(deltas) == SPEC.depth
    for l, delta in enumerate(deltas, start=1):
        np.testing.assert_allclose(
            grads[f"W{l}"], delta.T @ cache.layers[l - 1].linear.X, rtol=1e-12, atol=1e-14
        )
        if l in SPEC.bn_layers():
            assert np.all(np.abs(delta.sum(axis=0)) <= 1e-12 * np.abs(delta).sum(axis=0))
    np.testing.assert_allclose(grads["X"], deltas[0] @ case.params["W1"], rtol=1e-12, atol=1e-14)


# --- running statistics, modes, state --------------------------------------------------


@pytest.mark.parametrize("convention", [bn.TORCH_CONVENTION, bn.FLAX_CONVENTION], ids=["torch", "flax"])
def test_running_statistics_follow_the_convention(convention: bn.BatchNormConvention) -> None:
    spec = replace(
        BN_CATALOG[0],
        bn_momentum=convention.momentum,
        bn_momentum_convention=convention.momentum_convention,
        bn_running_var=convention.running_var_estimator,
    )
    case = bn_case(spec, 6, 3, train=True)
    X, state = case.inputs["X"], case.state
    _, new_state, _ = mlp_bn_forward(spec, case.params, X, state, train=True)
    Z = X @ case.params["W1"].T  # no bias before batch norm
    mu, var = Z.mean(axis=0), Z.var(axis=0)
    b = var * 6 / 5 if convention.running_var_estimator == "unbiased" else var
    m = convention.momentum
    keep, take = (1 - m, m) if convention.momentum_convention == "torch" else (m, 1 - m)
    np.testing.assert_allclose(
        new_state["running_mean1"], keep * state["running_mean1"] + take * mu, rtol=1e-13
    )
    np.testing.assert_allclose(new_state["running_var1"], keep * state["running_var1"] + take * b, rtol=1e-13)


@settings(max_examples=20, deadline=None)
@given(seeds)
def test_eval_mode_keeps_the_state_and_treats_rows_alone(seed: int) -> None:
    case = bn_case(SPEC, 6, seed, train=False)
    X = case.inputs["X"]
    Y, new_state, _ = mlp_bn_forward(SPEC, case.params, X, case.state, train=False)
    assert all(np.array_equal(new_state[k], v) for k, v in case.state.items())
    Y_rows = mlp_bn_forward(SPEC, case.params, X[2:5], case.state, train=False)[0]
    np.testing.assert_allclose(Y_rows, Y[2:5], rtol=1e-13, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(seeds, st.booleans())
def test_nothing_passed_in_is_modified(seed: int, train: bool) -> None:
    case = bn_case(SPEC, 6, seed, train=train)
    saved = {k: v.copy() for k, v in {**case.params, **case.state, **case.inputs}.items()}
    loss_and_grads_state(SPEC, case.params, case.inputs["X"], case.inputs["targets"], case.state, train=train)
    after = {**case.params, **case.state, **case.inputs}
    assert all(np.array_equal(saved[k], after[k]) for k in saved)


def test_training_output_ignores_the_running_statistics() -> None:
    case = bn_case(SPEC, 6, 5, train=True)
    Y = mlp_bn_forward(SPEC, case.params, case.inputs["X"], case.state, train=True)[0]
    fresh = mlp_bn_forward(SPEC, case.params, case.inputs["X"], init_state(SPEC), train=True)[0]
    np.testing.assert_array_equal(fresh, Y)
    with pytest.raises(ValueError, match="X"):  # torch's convention: a batch of one raises
        mlp_bn_forward(SPEC, case.params, case.inputs["X"][:1], case.state, train=True)


def test_float32_stays_float32() -> None:
    spec = replace(SPEC, dtype="float32")
    case = bn_case(SPEC, 6, 2, train=True)
    p = {k: v.astype("float32") for k, v in case.params.items()}
    s = {k: v.astype("float32") for k, v in case.state.items()}
    X = case.inputs["X"].astype("float32")
    Y, new_state, cache = mlp_bn_forward(spec, p, X, s, train=True)
    grads = mlp_bn_backward(spec, case.inputs["dY"].astype("float32"), cache)
    assert {a.dtype.name for a in [Y, *new_state.values(), *grads.values()]} == {"float32"}


# --- initialization, JSON ---------------------------------------------------------------


def test_init_has_gamma_beta_and_no_bias_before_batch_norm() -> None:
    plain = replace(SPEC, batchnorm=False)
    params = init_params(SPEC, np.random.default_rng(0))
    same_draws = mlp.init_params(plain, np.random.default_rng(0))
    assert sorted(params) == ["W1", "W2", "W3", "b3", "beta1", "beta2", "gamma1", "gamma2"]
    for l in (1, 2):
        assert np.array_equal(params[f"gamma{l}"], np.ones(6))
        assert np.array_equal(params[f"beta{l}"], np.zeros(6))
    assert np.array_equal(params["W1"], same_draws["W1"])
    assert sorted(init_state(SPEC)) == ["running_mean1", "running_mean2", "running_var1", "running_var2"]
    assert init_state(plain) == {}


def test_json_round_trip_and_specs_without_batch_norm_read_as_before() -> None:
    spec = replace(
        SPEC,
        bn_momentum=0.99,
        bn_momentum_convention="flax",
        bn_running_var="biased",
        bn_single_example="allow",
    )
    assert MLPSpec.from_json(spec.to_json()) == spec
    plain = MLPSpec((3, 4, 2))
    assert not [k for k in json.loads(plain.to_json()) if k.startswith("bn") or k == "batchnorm"]
    assert MLPSpec.from_json(plain.to_json()) == plain


# --- bad input ---------------------------------------------------------------------------


BAD_SPECS = [
    ({"batchnorm": 1}, TypeError, "batchnorm"),
    ({"bn_momentum": 1.5}, ValueError, "bn_momentum"),
    ({"bn_momentum_convention": "keras"}, ValueError, "bn_momentum_convention"),
    ({"bn_running_var": "sample"}, ValueError, "bn_running_var"),
    ({"bn_eps": 0.0}, ValueError, "bn_eps"),
    ({"bn_single_example": "skip"}, ValueError, "bn_single_example"),
]


@pytest.mark.parametrize(("change", "error", "field"), BAD_SPECS, ids=[f for _, _, f in BAD_SPECS])
def test_bad_spec_names_the_field(change: dict[str, Any], error: type, field: str) -> None:
    with pytest.raises(error, match=field):
        replace(SPEC, **change)


def _bad_calls() -> list[Any]:
    case = bn_case(SPEC, 6, 0, train=True)
    p, s, X = case.params, case.state, case.inputs["X"]
    short = {k: v for k, v in s.items() if k != "running_var2"}
    return [
        pytest.param(
            lambda: mlp_bn_forward(SPEC, p, X, short, train=True), ValueError, "state", id="state-missing-key"
        ),
        pytest.param(
            lambda: mlp_bn_forward(SPEC, p, X, {**s, "running_var1": s["running_var1"][:2]}, train=True),
            ValueError,
            "running_var1",
            id="state-shape",
        ),
        pytest.param(
            lambda: mlp_bn_forward(SPEC, p, X, {**s, "running_var1": -s["running_var1"]}, train=False),
            ValueError,
            "running_var",
            id="state-negative-variance",
        ),
        pytest.param(
            lambda: mlp_bn_forward(SPEC, p, X, [s], train=True), TypeError, "state", id="state-not-a-dict"
        ),
        pytest.param(
            lambda: mlp_bn_forward(SPEC, p, X, s, train="yes"), TypeError, "train", id="train-not-bool"
        ),
        pytest.param(
            lambda: mlp_bn_forward(SPEC, {**p, "b1": np.zeros(6)}, X, s, train=True),
            ValueError,
            "params",
            id="bias-before-batch-norm",
        ),
        pytest.param(
            lambda: mlp_bn_forward(SPEC, p, X[:1], s, train=True), ValueError, "X", id="training-batch-of-one"
        ),
    ]


@pytest.mark.parametrize(("call", "error", "field"), _bad_calls())
def test_bad_input_names_the_field(call: Any, error: type, field: str) -> None:
    with pytest.raises(error, match=field):
        call()
