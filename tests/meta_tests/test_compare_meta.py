"""The comparison helper fails on a wrong gradient, and says where."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.compare import ConformanceFailure, Context, assert_agree, assert_identity, exact
from conformance.components.mlp.strategies import MLP_CATALOG, mlp_case
from conformance.properties import richardson
from conformance.registry import component
from conformance.replay import load_case
from conformance.rounding import Arithmetic


def context(tmp_path, monkeypatch, dtype: str = "float64") -> Context:  # type: ignore[no-untyped-def]
    case = mlp_case(MLP_CATALOG[1], batch=4, seed=7)
    return Context(
        "gradient-agreement",
        component("mlp"),
        "torch",
        "0.0",
        dtype,
        "cpu",
        case,
        reproducer=tmp_path / "case.npz",
    )


def gradients(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal(3)}


def rounding(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """The bound of values that are the arrays rounded once to dtype."""
    ar = Arithmetic(dtype)
    return {k: ar.bound(ar.rounded(v)) for k, v in arrays.items()}


def test_identical_gradients_pass(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    g = gradients(0)
    assert_agree(context(tmp_path, monkeypatch), g, g, exact(g), kind="gradient")


@pytest.mark.parametrize("relative_error", [1e-6, 1e-3, 1.0])
def test_a_wrong_element_fails_and_is_named(tmp_path, monkeypatch, relative_error) -> None:  # type: ignore[no-untyped-def]
    expected = gradients(0)
    wrong = {k: v.copy() for k, v in expected.items()}
    wrong["W1"][2, 1] *= 1 + relative_error
    with pytest.raises(ConformanceFailure) as info:
        assert_agree(
            context(tmp_path, monkeypatch), wrong, expected, rounding(expected, "float32"), kind="gradient"
        )
    message = str(info.value)
    for part in (
        "gradient-agreement",
        "mlp",
        "torch",
        "float64",
        "parameter W1",
        "[2, 1]",
        "replay",
        "of 6",
        "allowed",
        "float64 rounding",
        "floor",
    ):
        assert part in message
    reproducer = message.rsplit("replay ", 1)[1].split()[-1]
    case, meta = load_case(reproducer)
    assert meta["property"] == "gradient-agreement" and case.spec == MLP_CATALOG[1]


def test_float32_error_passes_float32_and_fails_float64(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    r64 = gradients(1)
    r32 = {k: v.astype(np.float32).astype(np.float64) for k, v in r64.items()}
    assert_agree(
        context(tmp_path, monkeypatch, "float32"), r32, r64, rounding(r64, "float32"), kind="gradient"
    )
    with pytest.raises(ConformanceFailure):
        assert_agree(
            context(tmp_path, monkeypatch, "float64"), r32, r64, rounding(r64, "float64"), kind="gradient"
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_where_reference_is_finite_fails(tmp_path, monkeypatch, bad) -> None:  # type: ignore[no-untyped-def]
    expected = gradients(2)
    wrong = {k: v.copy() for k, v in expected.items()}
    wrong["b1"][0] = bad
    with pytest.raises(ConformanceFailure, match="parameter b1"):
        assert_agree(
            context(tmp_path, monkeypatch), wrong, expected, rounding(expected, "float32"), kind="gradient"
        )


def test_missing_or_misshapen_gradient_fails(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    expected = gradients(3)
    with pytest.raises(ConformanceFailure, match="returned no"):
        assert_agree(
            context(tmp_path, monkeypatch), {"W1": expected["W1"]}, expected, exact(expected), kind="gradient"
        )
    with pytest.raises(ConformanceFailure, match="shape"):
        assert_agree(
            context(tmp_path, monkeypatch),
            {**expected, "W1": expected["W1"].T},
            expected,
            exact(expected),
            kind="gradient",
        )


def test_identity_helper_fails_beyond_tolerance(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, monkeypatch)
    assert_identity(ctx, "adjoint", 1.0, 1.0 + 1e-13, scale=1.0, rtol=1e-11)
    with pytest.raises(ConformanceFailure, match="parameter adjoint"):
        assert_identity(ctx, "adjoint", 1.0, 1.0 + 1e-9, scale=1.0, rtol=1e-11)
    with pytest.raises(ConformanceFailure):
        assert_identity(ctx, "adjoint", 1.0, float("nan"), scale=1.0, rtol=1e-11)


def central_differences(f, x: float, step: float) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    return tuple((f(x + m * step) - f(x - m * step)) / (2 * m * step) for m in (1, 2, 4))  # type: ignore[return-value]


def test_richardson_removes_the_curvature_term_of_a_smooth_function() -> None:
    # exp(40 x) at 0.25: f''' / f' = 1600, so D(ε) is off by 2.7e-10 of f' (steps in
    # powers of two: x ± mε is exact, the differences carry f's rounding only).
    f, step = (lambda x: np.exp(40 * x)), 2.0**-20
    exact_derivative = 40 * np.exp(10.0)
    d1, d2, d4 = central_differences(f, 0.25, step)
    extrapolated = richardson(d1, d2, d4, noise=8 * np.finfo(float).eps * f(0.25) / step)
    assert extrapolated is not None
    assert abs(extrapolated - exact_derivative) < abs(d1 - exact_derivative) / 10


@pytest.mark.parametrize("distance", [0.5e-6, 1.5e-6, 3e-6])
def test_richardson_refuses_steps_that_cross_a_kink(distance: float) -> None:
    # |x| seen from `distance` away: the steps past the kink are not the h² law.
    d1, d2, d4 = central_differences(abs, distance, 1e-6)
    assert richardson(d1, d2, d4, noise=1e-12) is None


def test_richardson_leaves_differences_within_rounding_alone() -> None:
    assert richardson(1.0, 1.0 + 1e-12, 1.0 - 1e-12, noise=1e-10) is None


@pytest.mark.parametrize(
    ("expected", "actual", "agrees"),
    [
        (-82485.0, -np.inf, True),  # beyond float16's 65504: -inf is its rounding
        (-82485.0, np.inf, False),  # the wrong sign
        (-60000.0, -np.inf, False),  # representable: inf is an overflow of the computation
        (3015.0, np.inf, False),  # a mean whose sum overflowed (torch's float16 cross-entropy)
    ],
)
def test_an_infinite_result_agrees_only_where_the_dtype_rounds_the_value_to_it(
    tmp_path, monkeypatch, expected: float, actual: float, agrees: bool
) -> None:  # type: ignore[no-untyped-def]
    reference = {"W1": np.array([expected, 1.0])}
    result = {"W1": np.array([actual, 1.0])}
    ctx, bound = context(tmp_path, monkeypatch, "float16"), rounding(reference, "float16")
    if agrees:
        assert_agree(ctx, result, reference, bound, kind="gradient")
    else:
        with pytest.raises(ConformanceFailure, match="inf tolerances"):
            assert_agree(ctx, result, reference, bound, kind="gradient")
