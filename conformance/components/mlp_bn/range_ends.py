"""Batch norm at the ends of each dtype's range (docs/findings/range-ends.md, B1-B3).

    bn-range-ends         a huge spread: X = s Z, Z normal (8 x 3) standardized per column
                          (mean 0, biased variance 1, so σ² = s²), Σ (x - μ)² = 8 s² beyond
                          the dtype: s = 1e154 (float64: σ² = 1e308 fits, 8e308 does not),
                          1e30 (float32, bfloat16: σ² itself is beyond them, as in the
                          findings), 100 (float16: σ² = 1e4 fits, 8e4 does not)
    bn-range-ends-tiny    a tiny spread: s = 1e-200, 1e-30, 1e-30, 1e-3, the variance far
                          below ε (x̂ = (X - μ)/√ε, tiny itself)

x̂ does not change when X is scaled, so the answer is representable although the sum of
squares, or σ² itself, is not. The network is one batch norm between identity layers (W¹ = W² = I, b² = 0,
γ = 1, β = 0, identity activations, mse): Y = x̂. The answer is the reference (refimpl.mlp_bn,
which forms the moments after a power-of-two scaling where the squares would leave the range)
in float64 on the numbers the dtype holds, every entry rounded to the dtype (a running
variance of 1e60 in float32 is inf, whoever computes it). Y, the loss, the running statistics
and the gradients agree within RANGE_ENDS_ULPS of each tensor's largest entry (tolerances.py).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from conformance.backend import Backend
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree
from conformance.component import Property
from conformance.dtypes import round_to
from conformance.profiles import Profile
from conformance.tolerances import RANGE_ENDS_ULPS, precision
from refimpl.mlp import MLPSpec

SPREAD = {"float64": 1e154, "float32": 1e30, "bfloat16": 1e30, "float16": 100.0}
TINY = {"float64": 1e-200, "float32": 1e-30, "bfloat16": 1e-30, "float16": 1e-3}
SPEC = MLPSpec((3, 3, 3), "identity", "identity", "mse", batchnorm=True)
ROWS = 8


def range_case(dtype: str, scale: float, seed: int) -> Case:
    """Y = BN(s Z) through identity layers, the arrays as the dtype holds them."""
    rng = np.random.default_rng(seed)
    eye = np.eye(3)
    params = {"W1": eye, "gamma1": np.ones(3), "beta1": np.zeros(3), "W2": eye, "b2": np.zeros(3)}
    Z = rng.standard_normal((ROWS, 3))
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    inputs = {
        "X": Z * scale,
        "targets": rng.standard_normal((ROWS, 3)),
        "dY": rng.standard_normal((ROWS, 3)),
        "dY2": rng.standard_normal((ROWS, 3)),
    }
    state = {"running_mean1": np.zeros(3), "running_var1": np.ones(3)}
    spec = MLPSpec(**{**SPEC.__dict__, "dtype": dtype})
    return Case(
        "mlp_bn",
        spec,
        round_to(params, dtype),
        round_to(inputs, dtype),
        state=round_to(state, dtype),
        train=True,
        seed=seed,
    )


@st.composite
def spread_cases(draw: st.DrawFn, profile: Profile) -> Case:
    return range_case(profile.dtype, SPREAD[profile.dtype], draw(st.integers(0, 3)))


@st.composite
def tiny_cases(draw: st.DrawFn, profile: Profile) -> Case:
    return range_case(profile.dtype, TINY[profile.dtype], draw(st.integers(0, 3)))


def _bound(ctx: Context, expected: Arrays) -> Arrays:
    """RANGE_ENDS_ULPS ulps of each tensor's largest finite entry (x̂'s centred values cancel)."""
    ulps = RANGE_ENDS_ULPS * precision(ctx.dtype).eps
    return {
        k: np.full(v.shape, ulps * float(np.max(np.abs(v[np.isfinite(v)]), initial=0.0)))
        for k, v in expected.items()
    }


def bn_range_ends(ctx: Context, backend: Backend) -> None:
    cot = {"Y": ctx.case.inputs["dY"]}
    r64 = ctx.component.reference(ctx.case.with_dtype("float64"), cot)
    got = backend.run(ctx.case, cot)
    label = f"batch norm at the end of the {ctx.dtype} range, "
    for kind, actual, expected in (
        ("forward", got.outputs, r64.outputs),
        ("state", got.state, r64.state),
        ("gradient", got.grads, r64.grads),
    ):
        want = round_to({k: v for k, v in expected.items() if not k.startswith("Z")}, ctx.dtype)
        assert_agree(ctx, actual, want, _bound(ctx, want), kind=kind, label=label + kind + " ")


BN_RANGE_ENDS = Property("bn-range-ends", bn_range_ends, frameworks_only=True, low_precision=True)
BN_RANGE_ENDS_TINY = Property("bn-range-ends-tiny", bn_range_ends, frameworks_only=True, low_precision=True)
