"""The one tolerance table, per dtype and per kind of quantity, with its reasons.

Every agreement check compares a framework result `a` with the float64
reference `r64` element by element and passes when

    |a - r64| <= allowed = factor · (ε_dtype / ε_32) · e32  +  floor · ε_dtype · max|r64|

where, per tensor,

* e32 = max |r32 - r64| is the reference's own float32 error on this very case:
  an error estimate that grows with the case's conditioning (deep tanh chains,
  near-kink pre-activations, cancellation in batch norm's backward) instead of
  one flat loose number. Scaled by ε_64/ε_32 ≈ 1.9e-9 it estimates the rounding
  error of a float64 computation of the same case.
* the floor guards cases where r32 happens to equal r64 exactly (small
  integers, zero gradients): a few units in the last place of the largest entry.

The worst `|a - r64| / allowed` over a property's examples is what the report
prints as "worst error, in tolerances"; a check fails above 1.

Why float64 catches a layer silently computed in float32: such a layer errs by
about e32, while float64 allows factor · 1.9e-9 · e32 ≈ 1.5e-8 · e32, a margin
of 10⁷ (tests/meta_tests show the failure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


@dataclass(frozen=True)
class Tolerance:
    factor: float  # multiple of the scaled reference float32 error e32
    floor: float  # multiple of ε_dtype · max|r64|
    reason: str


# fmt: off
TABLE: dict[tuple[str, str], Tolerance] = {
    ("float32", "forward"): Tolerance(8.0, 16.0,
        "Two correct float32 implementations differ from float64 by errors of the order of the"
        " reference's own float32 error: different summation orders and BLAS kernels, sigmoid"
        " via exp or tanh. Measured over 300 dev-profile MLP cases per framework (MEASURED"
        " below): |fw32 - r64| / e32 has median 1.0 and 99th percentile 10, the large ratios"
        " where e32 is a few ulps and the floor governs; the worst error was 0.42 of this bound."
        " The floor is 16 ulps of the largest output."),
    ("float32", "gradient"): Tolerance(8.0, 32.0,
        "Gradients go through one more matrix product per layer than outputs and cancel in"
        " sums over the batch; same estimate and factor, a floor of 32 ulps of the largest"
        " entry of the tensor."),
    ("float32", "state"): Tolerance(8.0, 16.0,
        "Running statistics are a mean and a variance of float32 activations: the same"
        " estimate covers them."),
    ("float64", "forward"): Tolerance(64.0, 64.0,
        "float64 rounding of the same computation, estimated as e32 · ε64/ε32; 64x for the"
        " spread across BLAS kernels, and a floor of 64 ulps of the largest output. A float32"
        " computation errs by about e32 and fails by a factor of about 10⁷."),
    ("float64", "gradient"): Tolerance(64.0, 128.0,
        "As float64 forward; the floor is doubled for the extra product and batch sums of"
        " the backward pass."),
    ("float64", "state"): Tolerance(64.0, 64.0, "As float64 forward."),
}
# fmt: on

# How the float32 numbers were measured (torch 2.13.0 CPU, jax 0.10.2 CPU): for 300
# dev-profile MLP cases per framework and both cotangents (random upstream, loss),
# every output and gradient tensor, max|fw32 - r64| / allowed: torch median 0.02,
# p99 0.09, max 0.22; jax median 0.02, p99 0.09, max 0.42.
MEASURED = "float32, MLP, 300 cases per framework: worst 0.22 (torch) and 0.42 (jax) of the bound"

# Scalar identities inside one framework (adjoint <u, J v> = <Jᵀ u, v>, linearity
# in the upstream gradient): both sides sum the same terms in different orders,
# so their difference is bounded by n · ε · Σ|terms| (Higham, Accuracy and
# Stability, §3.1); with the sizes used here n · ε stays below these values.
IDENTITY_RTOL = {"float32": 2e-4, "float64": 1e-11}

# Finite differences, float64 only, ε = 1e-6: truncation ε²·|f'''| and round-off
# ε64·|f|/ε give relative errors near 1e-10; 1e-6 of the scale of the summed terms
# leaves room for curvature while a wrong formula is off by O(1).
FINITE_DIFFERENCE_RTOL = 1e-6
FINITE_DIFFERENCE_STEP = 1e-6


def allowed_error(
    dtype: str, kind: str, reference64: np.ndarray, reference32: np.ndarray
) -> np.ndarray:
    """The per-element bound `allowed` of the module docstring, broadcast to r64's shape."""
    if (dtype, kind) not in TABLE:
        raise ValueError(
            f"tolerance: expected (dtype, kind) among {sorted(TABLE)}, received {(dtype, kind)}"
        )
    tol = TABLE[(dtype, kind)]
    eps = EPS[dtype]
    r64 = np.asarray(reference64, dtype=np.float64)
    r32 = np.asarray(reference32, dtype=np.float64)
    scale = float(np.max(np.abs(r64))) if r64.size else 0.0
    e32 = float(np.max(np.abs(r32 - r64))) if r64.size else 0.0
    bound = tol.factor * (eps / EPS["float32"]) * e32 + tol.floor * eps * scale
    return np.full(r64.shape, max(bound, np.finfo(np.float64).tiny))


# The initialization property (init-distribution, conformance/initialization.py) compares
# draws, not computations. Its two-sample Kolmogorov-Smirnov test of a framework's default
# initialization against the reference's scheme rejects at a false-alarm rate of at most
# INIT_FALSE_ALARM per tensor (an exact bound for two samples of equal size, not an
# asymptotic one); 20 tensors in a ci run (mlp, mlp_bn and rnn, torch and jax, float64), so
# at most one false alarm in 50,000 runs, and the ci draws come from fixed seeds, so a run that
# passes passes again. At 1e-6 and 2,000 entries a side the critical D is 0.085: U(±a) against
# U(±2a) is D = 0.25, against U(±a√(3/5)) (fan-out 5 for fan-in 3) D = 0.11.
INIT_FALSE_ALARM = 1e-6
# Hard bounds (|w| <= a for U(-a, a), 2s for lecun_normal's truncation) hold up to the
# rounding of the bound in the dtype and of the final multiplication: 4 ulps of the bound.
INIT_BOUND_ULPS = 4.0
# An orthogonal H x H matrix from a QR of a Gaussian: max |QᵀQ - I| is a few ε · H
# (Householder QR is backward stable, Higham §19.3); 16 ε · H leaves room for the gain's rounding.
ORTHOGONALITY_ULPS = 16.0
