"""The one tolerance table: per dtype, how far a correct result may be, with its reasons.

## Agreement (forward, gradient and state agreement, the golden set)

A framework's result a in dtype d is compared with the float64 reference r64 entry by
entry, and passes when

    |a - r64| <= allowed = B_d  +  (u_64 / u_d) B_d  +  FLOOR · tiny_d
                           [1]     [2]                [3]

[1] B_d, the component's rounding bound: its rounding module
    (conformance/components/<name>/rounding.py) re-runs the reference's steps in
    conformance.rounding's Monte Carlo arithmetic: every step's exact value, and the
    deviations of SAMPLES simulated implementations in d, each rounding at the most the
    standard model allows (u |result| for one operation, √n u Σ |terms| for a sum of n
    terms in any order, ELEMENTARY_ULPS for tanh, exp, ...) with a random sign. B_d is
    SIGMAS times the deviations' root mean square (rms), per entry.
[2] the reference's own float64 rounding: the same computation's bound scaled to u_64.
[3] the floor: a result within FLOOR smallest normal numbers of d is rounding (JAX on
    CPU flushes float32 subnormals to zero: a gradient that vanished to 2e-39 comes back 0).

Why this holds (Higham and Mary, "A new approach to probabilistic rounding error
analysis", SIAM J. Sci. Comput. 41, 2019): with rounding errors independent, of mean
zero and bounded as above, an entry's first-order error is a sum of independent bounded
terms c_j ξ_j; the samples estimate its standard deviation σ = ‖c‖₂, and Hoeffding's
inequality gives P(|error| > λ σ) <= 2 exp(-λ²/2): 2.5e-14 for λ = 8. An entry reached by
at most λ² = 64 rounding contributions is bounded outright (|Σ c_j| <= √m ‖c‖₂): the
1-element tensors, H = 1, N = 1..4 and width-1 layers hypothesis shrinks toward. The
bound is per entry and follows the computation's signs: a 1-element bias gradient that
cancels gets the cancellation's error, an entry 1e-6 of its tensor's largest gets its
own small bound, and an error carried through five layers or four SGD steps is not
compounded as a worst case (|W₅|...|W₁| where the error follows |W₅...W₁|: 1e4 times
too loose in float32 for a 5-layer width-32 tanh MLP, measured).

Why float64 still catches a layer computed in float32: that layer errs by about u_32
|result| = 6e-8 relative, and the float64 bound of an entry is of the order of
√n u_64 = 1e-15 relative (tests/meta_tests/test_tolerance_faults.py).

A component without a rounding module gets the `sampled` bound below: looser, and an
estimate rather than a bound. Every component here has a rounding module; the sampled
bound serves a new component until it writes its own.

The table's rows are dtypes (PRECISIONS): a dtype is its unit roundoff, its smallest
normal number, its identity tolerance and the wider dtype its failures are rerun in;
float16 and bfloat16 (through ml_dtypes, conformance.dtypes) are two such rows; their
inputs are rounded to the dtype before the reference sees them (the rows' comment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from conformance.dtypes import numpy_dtype


@dataclass(frozen=True)
class Precision:
    """A dtype's row of the table."""

    name: str
    unit_roundoff: float  # u = 2^-p: a rounded operation errs by at most u |result|
    smallest_normal: float  # below it a result may be flushed to zero
    identity_rtol: float | None  # scalar identities inside one framework, relative to the terms'
    # size; None: no identity is checked in this dtype (Property.low_precision)
    wider: str | None  # the dtype a failure is rerun in to arbitrate it (conformance.runner)
    reason: str
    elementary_ulps: float | None = None  # every elementary function's c_f; None: ELEMENTARY_ULPS
    flushes: bool = True  # a framework may flush subnormal results to 0 (XLA on CPU does in float32)

    @property
    def subnormal_error(self) -> float:
        """How far a result below the smallest normal may be off: the smallest normal itself
        where it may be flushed to 0, else half the spacing of the subnormals (u · tiny)."""
        return self.smallest_normal if self.flushes else self.unit_roundoff * self.smallest_normal

    @property
    def numpy_dtype(self) -> np.dtype:
        return numpy_dtype(self.name)  # bfloat16 through ml_dtypes

    @property
    def eps(self) -> float:
        """Machine epsilon 2u: the distance from 1 to the next number."""
        return 2 * self.unit_roundoff

    @property
    def overflow(self) -> float:
        """The least magnitude that rounds to ±inf: the largest finite value plus half its
        spacing, max · (1 + u/2). A result of ±inf is the dtype's correct answer for a value
        this large (a gradient of -82485 in float16: its largest finite value is 65504)."""
        return float(np.finfo(self.numpy_dtype).max) * (1 + self.unit_roundoff / 2)


# c_f of every elementary function in float16 and bfloat16: torch and XLA on CPU evaluate them
# in float32 and round once. Largest error measured over 200,000 arguments each (torch 2.13 and
# jax 0.10.2 CPU), in ulps (2u) of the result: tanh, exp, log 0.50 in both, sigmoid 0.50 (torch)
# and 1.08 (XLA's, through tanh); twice the largest, as ELEMENTARY_ULPS.
LOW_PRECISION_ULPS = 2.0

# fmt: off
PRECISIONS: dict[str, Precision] = {
    "float32": Precision("float32", 2.0**-24, float(np.finfo(np.float32).tiny), 2e-4, "float64",
        "u = 6.0e-8; the smallest normal 1.2e-38 is the floor. Identities: both sides sum the same"
        " terms in two orders, n ε Σ|terms| (Higham §3.1), below 2e-4 for the suite's sizes."),
    "float64": Precision("float64", 2.0**-53, float(np.finfo(np.float64).tiny), 1e-11, None,
        "u = 1.1e-16; the floor 2.2e-308 never matters. Identities as float32, 1e-11."),
    # The low-precision rows: the same bound, with the dtype's u and smallest normal. Their inputs
    # are the masters rounded once to the dtype before the reference sees them
    # (conformance.dtypes.rounded_case), so the reference computes in float64 on exactly the
    # numbers the framework holds and [1] is the computation's rounding alone: the input's own
    # rounding (u relative, more than many of the computation's steps) would otherwise enter
    # [1] times λ. A framework computing inside in float32 (torch's and XLA's CPU kernels
    # accumulate half-precision sums and evaluate tanh, exp in float32) rounds less than the
    # model allows; the property is on the result the user gets, in the dtype.
    "float16": Precision("float16", 2.0**-11, float(np.finfo(np.float16).tiny), None, "float32",
        "u = 4.9e-4, smallest normal 6.1e-5. No identity is checked: n ε Σ|terms| is about Σ|terms| at"
        " the suite's sizes. Failures are rerun in float32 to tell rounding from a wrong result."
        " Elementary functions: LOW_PRECISION_ULPS. Subnormals are kept (torch, XLA; measured), so"
        " the floor is u · tiny, 3e-8.", LOW_PRECISION_ULPS, flushes=False),
    "bfloat16": Precision("bfloat16", 2.0**-8, float(np.finfo(np.float32).tiny), None, "float32",
        "u = 3.9e-3 (8 significand bits), float32's exponent range: the smallest normal 1.2e-38 is"
        " the floor (XLA flushes bfloat16 subnormals as float32's; torch keeps them), overflow at"
        " 3.4e38. No identity is checked (as float16). Failures are rerun in float32. Elementary"
        " functions: LOW_PRECISION_ULPS.", LOW_PRECISION_ULPS),
}
# fmt: on

# λ: the bound is SIGMAS standard deviations of the simulated rounding. Hoeffding: a
# correct result beyond it has probability <= 2 exp(-λ²/2) = 2.5e-14 per entry; an entry
# with <= λ² = 64 rounding contributions is bounded in the worst case.
SIGMAS = 8.0
# K: simulated implementations. The rms of K samples of a sum of random-sign terms is
# within 25% of σ with probability 0.99 for K = 32 (χ²_32); λ = 8 absorbs that.
SAMPLES = 32
# [3]: results within one smallest normal number are rounding (flushed subnormals).
FLOOR = 1.0
# c_f, in ulps (2u each) of the result: library elementary functions, about twice the
# largest error measured in float32 over 400,000 arguments each (torch 2.13 CPU, jax 0.10.2
# CPU): tanh 4.67 ulps in XLA (a rational approximation; torch 0.57), exp 1.00, log 1.12,
# sigmoid 1.49 of max(σ, 1 - σ) (XLA's logistic goes through tanh), sqrt 0.50, 1/√x 1.47.
ELEMENTARY_ULPS = {"tanh": 8, "sigmoid": 4, "exp": 4, "log": 4, "sqrt": 2}
# The smooth activations (components/mlp/smooth_rounding.py), in ulps of the magnitude of the
# terms their formulas add, value and derivative: the largest measured in float32 over 400,000
# arguments (N(0, s²), s = 0.01, 1, 4, 15; torch 2.13, jax 0.10.2 CPU) was gelu 4.36 (torch's
# derivative), gelu_tanh 2.12, elu and selu 1.07 (x < 0), silu 1.82, softplus 1.86; c_f is
# about twice that.
ELEMENTARY_ULPS.update({"gelu": 10, "gelu_tanh": 5, "elu": 3, "silu": 4, "softplus": 4})

# Arbitration (conformance.runner): a float32 failure whose framework agrees with the
# reference in float64 on the same case is called rounding when it stays within this many
# tolerances; beyond, the float32 computation itself is wrong (a kernel in lower precision,
# an overflow), whatever float64 says.
ROUNDING_LIMIT = 100.0

# The sampled bound, for a component without a rounding module: the reference run in
# float32 (and SAMPLED_RUNS more times on inputs moved by one float32 rounding, so that
# every operation rounds differently); per tensor, e32 = max |r32 - r64| over the runs and
# entries, scaled to the dtype, times SAMPLED_FACTOR, plus SAMPLED_ULPS ulps of the
# tensor's largest entry. One run of this (factor 8, 16 to 32 ulps) was the suite's bound
# before the rounding modules: 14 false alarms in 26,342 boundary checks, where a 1-entry
# tensor's e32 was a lucky 0.03 of another summation order's error.
SAMPLED_RUNS = 4
SAMPLED_FACTOR = 16.0
SAMPLED_ULPS = 64.0

# Identity checks and finite differences (unchanged): see PRECISIONS[dtype].identity_rtol.
# Finite differences, float64 only, ε = 1e-6: truncation ε²·|f'''| and round-off
# ε64·|f|/ε give relative errors near 1e-10; 1e-6 of the scale of the summed terms
# leaves room for curvature while a wrong formula is off by O(1). Where the curvature is
# larger (f'''/f' near 1e6: a 5-16-16-16-1 batch-norm chain over N = 3 examples came to
# 1.03 of this bound), the steps 2ε and 4ε show the h² law and Richardson's (4 D(ε) - D(2ε))/3
# removes it (conformance/properties.py, `richardson`); a kink between the steps breaks
# the law and leaves D(ε) alone, so extrapolation never carries a kink into the result.
FINITE_DIFFERENCE_RTOL = 1e-6
FINITE_DIFFERENCE_STEP = 1e-6

# The range-end cases (components/clip/range_ends.py, components/mlp_bn/range_ends.py): fixed
# inputs of 2 to 24 entries whose squares leave the dtype's range while the answer does not. The
# answer is the float64 reference on the numbers the dtype holds, rounded to the dtype; a correct
# implementation (scaling before squaring, or squaring in a wider type) is within a few roundings
# of it per entry: a norm of two entries is 4 operations, a clipped entry 3 more, x̂ = (x - μ)/σ
# 5 more after the moments. RANGE_ENDS_ULPS = 8 ulps (16 u) of each expected entry, or of the
# tensor's largest for batch norm (its centred values cancel), cover that 4 times over; the
# failures they exist for are off by 100% (inf, 0, NaN).
RANGE_ENDS_ULPS = 8.0

EPS = {name: p.eps for name, p in PRECISIONS.items()}
# identities run in float32 and float64 only (in float16 one holds to about the size of its terms)
IDENTITY_RTOL = {name: p.identity_rtol for name, p in PRECISIONS.items() if p.identity_rtol is not None}

# Measured (`python -m conformance stress --frameworks torch,jax --dtypes float32,float64`,
# torch 2.13.0 and jax 0.10.2 on CPU; the README's "Tolerances" has the figures):
# Run A, seed 12, before the underflow corrections of conformance/rounding.py (rms,
# norm2): mlp >= 17,280 checks and mlp_bn >= 18,400, 0 failed; rnn 10,240, 9 failed, all
# float64 gradients vanished to 1e-148..1e-164 on H = 1 (T = 64), the bound's own underflow
# (allowed 0 + the floor), fixed by those corrections. Run B, seed 13, after them: rnn
# 3,072, rnn_truncated 3,024, clip 3,024, trajectory 3,008 checks, 0 failed; the worst
# correct result 0.25 tolerances in float32 (median 0.04 to 0.12), 0.13 in float64.
# The bound is thus 4 times or more the largest error met, and tight enough for the
# meta-tests (tests/meta_tests/test_tolerance_faults.py): a float64 layer computed in
# float32 fails, as does a 1% error in entries 1e-6 of their tensor's largest.


class Allowed(NamedTuple):
    """The bound of one tensor, per entry, split into its terms."""

    rounding: np.ndarray  # [1] B_d
    reference: np.ndarray  # [2] (u_64/u_d) B_d
    floor: float  # [3]

    @property
    def total(self) -> np.ndarray:
        return self.rounding + self.reference + self.floor


def precision(dtype: str) -> Precision:
    if dtype not in PRECISIONS:
        raise ValueError(f"dtype: expected one of {sorted(PRECISIONS)}, received {dtype!r}")
    return PRECISIONS[dtype]


def allowed_error(dtype: str, bound: np.ndarray) -> Allowed:
    """The terms [1] [2] [3] for a rounding bound B_d (an array of the reference's shape)."""
    row = precision(dtype)
    rounding = np.asarray(bound, np.float64)
    reference = rounding * (PRECISIONS["float64"].unit_roundoff / row.unit_roundoff)
    return Allowed(rounding, reference, FLOOR * row.subnormal_error)


def sampled_bound(dtype: str, reference64: np.ndarray, runs32: list[np.ndarray]) -> np.ndarray:
    """The sampled bound B_d of one tensor from float32 runs of the reference (module notes)."""
    row = precision(dtype)
    r64 = np.asarray(reference64, np.float64)
    if not r64.size:
        return np.zeros_like(r64)
    with np.errstate(invalid="ignore"):
        e32 = max(float(np.nanmax(np.abs(np.asarray(r, np.float64) - r64), initial=0.0)) for r in runs32)
    scale = float(np.nanmax(np.abs(r64), initial=0.0))
    u32 = PRECISIONS["float32"].unit_roundoff
    bound = SAMPLED_FACTOR * (row.unit_roundoff / u32) * e32 + SAMPLED_ULPS * row.eps * scale
    return np.full(r64.shape, bound if np.isfinite(bound) else 0.0)


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
