"""The property init-distribution: the reference's initialization scheme against a framework's own.

refimpl.init names two schemes, "torch" and "flax"; each framework's adapter declares its
own in CONVENTIONS["init"] and draws its default initialization itself: the capability
`default_init(case, device)` builds the case's network `case.meta["init_draws"]` times,
seeded from case.seed, through the framework's own layers (torch's `nn.Linear`, `nn.RNN`,
`nn.BatchNorm1d` as constructed; flax's `Dense`, `SimpleCell`, `BatchNorm` by `init`), and
returns every parameter stacked, {name: (K, *shape)}, under the reference's names. The
reference draws as many networks by its init_params under the declared scheme (the
component's `mlp_init` or `rnn_init`, from default_rng([case.seed, INIT_SALT])). K gives the
smallest tensor SAMPLES entries, within [MIN_DRAWS, MAX_DRAWS]. Per tensor, with
refimpl.init's law for it:

* constant (zero biases, γ = 1, β = 0): every draw equals it exactly;
* support: no draw of either side beyond the law's bound (U(-a, a): a; lecun_normal: 2s;
  orthogonal: the gain), up to INIT_BOUND_ULPS of rounding;
* orthogonal: every draw has WᵀW = g² I up to ORTHOGONALITY_ULPS · H · ε;
* distribution: the two-sample Kolmogorov-Smirnov statistic D = max |F_framework - F_reference|
  over the pooled entries (an orthogonal matrix's entries depend on each other: one entry per
  draw, at a position that cycles) stays below the critical value whose false-alarm rate is at
  most INIT_FALSE_ALARM: for samples of equal size n, P(D >= c/n) <= 2 C(2n, n - c) / C(2n, n)
  (Gnedenko and Korolyuk's exact alternating sum, cut after its first term).

float64 only: the laws are the same in float32, and each dtype costs flax a compilation of its
initializers per network. The report's number for a row is the worst of D over its critical
value and the orthogonality residual over its allowance (1 fails).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

from conformance.backend import Backend, Unsupported
from conformance.case import Arrays, Case
from conformance.compare import Context, fail, observe
from conformance.component import NotApplicable, Property
from conformance.record import Worst
from conformance.tolerances import EPS, INIT_BOUND_ULPS, INIT_FALSE_ALARM, ORTHOGONALITY_ULPS
from refimpl.init import Init

SAMPLES = 2000  # entries per tensor wanted: draws = SAMPLES / the smallest tensor's size
MIN_DRAWS, MAX_DRAWS = 200, 1000
FLOAT64_WHY = (
    "the laws compared are the same in {dtype}, which would cost flax another compilation"
    " of its initializers per network"
)
INIT_SALT = 0x1417  # the reference's draws: default_rng([case.seed, INIT_SALT]), a stream of their own

# (case, scheme, draws) -> (stacked draws {name: (K, *shape)}, refimpl.init's distribution of each)
ReferenceInit = Callable[[Case, str, int], tuple[Arrays, dict[str, Init]]]


def draws_for(case: Case) -> int:
    """How many networks each side draws: enough for SAMPLES entries of the smallest tensor."""
    smallest = min((v.size for v in case.params.values()), default=1)
    return min(MAX_DRAWS, max(MIN_DRAWS, math.ceil(SAMPLES / max(smallest, 1))))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """max_x |F_a(x) - F_b(x)|, the empirical distribution functions of two samples (counted in
    integers and divided once, so D = c/n is exactly the float c/n)."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    below_a, below_b = np.searchsorted(a, x, "right"), np.searchsorted(b, x, "right")
    return int(np.max(np.abs(below_a * b.size - below_b * a.size))) / (a.size * b.size)


def ks_false_alarm_bound(n: int, c: int) -> float:
    """An upper bound on P(D >= c/n) for two samples of n draws from one continuous law:
    2 C(2n, n - c) / C(2n, n), the first term of the exact alternating sum."""
    if c > n:
        return 0.0
    i = np.arange(1, c + 1)
    log_ratio = float(np.sum(np.log1p(-c / (n + i))))  # C(2n, n - c) / C(2n, n) = Π (n - c + i) / (n + i)
    return min(1.0, 2.0 * math.exp(log_ratio))


def ks_critical(n: int, alpha: float = INIT_FALSE_ALARM) -> float:
    """The least D = c/n whose false-alarm bound is <= alpha (1 + 1/n: none, n too small)."""
    lo, hi = 1, n + 1  # the bound falls as c grows: bisect for the first c below alpha
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ks_false_alarm_bound(n, mid) <= alpha else (mid + 1, hi)
    return lo / n


def entries(dist: Init, draws: np.ndarray) -> np.ndarray:
    """Independent samples of the law: every entry, or for an orthogonal matrix one per draw."""
    if dist.kind != "orthogonal":
        return draws.reshape(-1)
    K, rows, cols = draws.shape
    k = np.arange(K)
    return np.asarray(draws[k, k % rows, (k // rows) % cols])


def first(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of mask: (draw, *entry)."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_tensor(ctx: Context, name: str, dist: Init, theirs: np.ndarray, ours: np.ndarray) -> None:
    __tracebackhide__ = True
    who = f"{ctx.framework}'s default initialization"
    if theirs.shape != ours.shape:
        fail(ctx, f"parameter {name}: {who} has shape {theirs.shape[1:]}, the reference {ours.shape[1:]}")
    if dist.kind == "constant":
        if (theirs != dist.scale).any():
            at = first(theirs != dist.scale)
            fail(
                ctx,
                f"parameter {name}: {who} is not the constant {dist.scale} of the reference's"
                f" scheme: draw {at[0]}, entry {list(at[1:])} = {float(theirs[at])!r}",
            )
        return
    bound = dist.bound() * (1 + INIT_BOUND_ULPS * EPS[ctx.dtype])
    for side, values in ((who, theirs), ("the reference's initialization", ours)):
        if (np.abs(values) > bound).any():
            at = first(np.abs(values) > bound)
            fail(
                ctx,
                f"parameter {name}: {side} draws {float(values[at])!r} (draw {at[0]}, entry"
                f" {list(at[1:])}), outside ±{dist.bound():.6g} of {dist.kind}({dist.scale:.6g})",
            )
    if dist.kind == "orthogonal":
        rows = theirs.shape[-2]
        gram = np.swapaxes(theirs, -1, -2) @ theirs
        residual = float(np.max(np.abs(gram - dist.scale**2 * np.eye(gram.shape[-1]))))
        allowed = ORTHOGONALITY_ULPS * rows * EPS[ctx.dtype] * dist.scale**2
        observe(ctx, Worst(residual / allowed, f"{name} (WᵀW - g²I)", (), residual, 0.0))
        if residual > allowed:
            fail(
                ctx,
                f"parameter {name}: {who} is not orthogonal: max |WᵀW - {dist.scale**2:g} I| ="
                f" {residual:.3g}, allowed {allowed:.3g}",
            )
    a, b = entries(dist, theirs), entries(dist, ours)
    distance, critical = ks_statistic(a, b), ks_critical(a.size)
    observe(ctx, Worst(distance / critical, f"{name} (Kolmogorov-Smirnov D)", (), distance, critical))
    if distance >= critical:
        fail(
            ctx,
            f"parameter {name}: {who} and the reference's {dist.kind}({dist.scale:.6g}) differ in"
            f" distribution: Kolmogorov-Smirnov D = {distance:.4g} over {a.size} + {b.size}"
            f" samples, at or above {critical:.4g} (false-alarm rate <= {INIT_FALSE_ALARM:g}); means"
            f" {a.mean():.4g} and {b.mean():.4g}, standard deviations {a.std():.4g} and {b.std():.4g}",
        )


def check_init_distribution(reference_init: ReferenceInit, ctx: Context, backend: Backend) -> None:
    scheme = backend.conventions(ctx.case.component).get("init")
    if not isinstance(scheme, str):
        raise NotApplicable(f"init-distribution: {ctx.framework} declares no CONVENTIONS['init']")
    draws = draws_for(ctx.case)
    case = replace(ctx.case, meta={**ctx.case.meta, "init_draws": draws})
    try:
        theirs = backend.call(case, "default_init")
    except Unsupported as err:
        raise NotApplicable(str(err)) from err
    ours, dists = reference_init(case, scheme, draws)
    missing = sorted(set(dists) - set(theirs))
    if missing:
        fail(ctx, f"default_init: {ctx.framework} returned no {missing} (it returned {sorted(theirs)})")
    for name, dist in dists.items():
        check_tensor(
            ctx, name, dist, np.asarray(theirs[name], np.float64), np.asarray(ours[name], np.float64)
        )


def init_distribution(reference_init: ReferenceInit) -> Property:
    """The property for a component whose reference draws its initialization by `reference_init`."""
    return Property(
        "init-distribution",
        partial(check_init_distribution, reference_init),
        frameworks_only=True,
        float64_only=True,
        float64_why=FLOAT64_WHY,
    )


def stacked(draw: Callable[[], Arrays], draws: int) -> Arrays:
    """`draws` calls of draw(), each tensor stacked on a new first axis."""
    samples = [draw() for _ in range(draws)]
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}
