"""Finite-difference checks shared by the tests of refimpl and by their meta-tests.

A check compares an analytic gradient (the backward pass under test) with central
differences of a scalar objective f, in float64 with ε = 1e-6 (refimpl.gradcheck):

* elementwise (`numerical_grads`) when the point has at most MAX_ELEMENTWISE entries;
* otherwise along DIRECTIONS random unit directions v per tensor (`directional_derivative`),
  compared with <∂f/∂x, v>.

An entry passes when |a - n| <= RTOL |n| + atol, with atol = FD_ATOL (1 + S) where S is the
size of the terms f sums (Σ |Y ⊙ δ| for f = Σ Y ⊙ δ, |L| for a loss): central differences
lose about u S / ε = 1e-16 S / 1e-6 = 1e-10 S to round-off, and 1e-10 S is the largest error
measured over 800 random networks (depth 1-5, widths 1-32), so FD_ATOL = 1e-8 leaves a
margin of about 100. Truncation, ε² |f'''| ~ 1e-12, is covered by RTOL. A wrong formula is
off by O(|n|), a ratio of about 1 / RTOL = 1e6.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl.gradcheck import (
    directional_derivative,
    numerical_grads,
    vjp_inner_product,
    worst_mismatch,
)
from refimpl.mlp import MLPCache, MLPSpec, mlp_backward, mlp_forward

Array = NDArray[Any]
Point = dict[str, Array]

RTOL = 1e-6
FD_ATOL = 1e-8  # times (1 + S); see the module docstring
MAX_ELEMENTWISE = 300  # two evaluations of f per entry below this, two per direction above
DIRECTIONS = 2  # random unit directions per tensor in the directional mode
# The adjoint identity sums every parameter's terms: measured over 600 random networks it
# holds to 5e-11 of Σ |terms| (plus FD_ATOL (1 + S)), so 1e-8 leaves a margin of 200 while a
# wrong tensor that holds 1e-4 of the terms (a bias among 1,200 weights) still fails by 1e4.
ADJOINT_RTOL = 1e-8


class Mismatch(NamedTuple):
    """The worst |a - n| / (atol + RTOL |n|) over every checked entry; <= 1 passes."""

    ratio: float
    where: str  # "W2[3, 1]: analytic 0.25, numeric -0.25 (elementwise)" or the direction


def _nan_is_inf(ratio: float) -> float:
    """A NaN gradient is the worst mismatch, not one that every comparison skips."""
    return float("inf") if np.isnan(ratio) else float(ratio)


def fd_mismatch(
    f: Callable[[Point], float],
    point: Point,
    analytic: dict[str, Array],
    rng: np.random.Generator,
    *,
    scale: float,
    keys: Iterable[str] | None = None,
    max_elementwise: int = MAX_ELEMENTWISE,
) -> Mismatch:
    """Compare `analytic[k]` with central differences of f at `point` for every k in keys.

    `scale` is S of the module docstring. `keys` defaults to the keys of `analytic`.
    """
    chosen = list(analytic) if keys is None else list(keys)
    atol = FD_ATOL * (1.0 + scale)
    worst = Mismatch(-1.0, "nothing checked")
    if sum(point[k].size for k in chosen) <= max_elementwise:
        numeric = numerical_grads(f, point, keys=chosen)
        for k in chosen:
            ratio, index = worst_mismatch(analytic[k], numeric[k], rtol=RTOL, atol=atol)
            ratio = _nan_is_inf(ratio)
            if ratio > worst.ratio:
                where = (
                    f"{k}{list(index)}: analytic {analytic[k][index]!r},"
                    f" numeric {numeric[k][index]!r} (elementwise)"
                )
                worst = Mismatch(ratio, where)
        return worst._replace(ratio=max(worst.ratio, 0.0))
    for k in chosen:
        for _ in range(DIRECTIONS):
            v = rng.standard_normal(point[k].shape)
            v /= np.linalg.norm(v)  # unit length: the step ε v moves f's input by ε at most
            numeric_dd = directional_derivative(f, point, {k: v})
            analytic_dd = float(np.sum(analytic[k] * v))
            size = float(np.sum(np.abs(analytic[k] * v)))
            ratio = abs(analytic_dd - numeric_dd) / (atol + RTOL * max(size, abs(numeric_dd)))
            ratio = _nan_is_inf(ratio)
            if ratio > worst.ratio:
                where = f"{k} along a random direction: analytic {analytic_dd!r}, numeric {numeric_dd!r}"
                worst = Mismatch(ratio, where)
    return worst._replace(ratio=max(worst.ratio, 0.0))


def assert_fd_match(what: str, *args: Any, **kwargs: Any) -> Mismatch:
    """`fd_mismatch(*args, **kwargs)`, raising AssertionError (naming `what`) when it fails."""
    __tracebackhide__ = True
    result = fd_mismatch(*args, **kwargs)
    assert result.ratio <= 1.0, (
        f"{what}: gradient differs from finite differences by {result.ratio:.3g} x tolerance"
        f" at {result.where}"
    )
    return result


# --- the MLP objective -----------------------------------------------------------------


def mlp_point(params: dict[str, Array], X: Array) -> Point:
    """Parameters and input in one dict, so finite differences perturb both."""
    return {**params, "X": X}


def mlp_objective(spec: MLPSpec, dY: Array) -> Callable[[Point], float]:
    """f(point) = Σ Y ⊙ δ with δ = dY fixed: ∂f/∂θ is the backward pass fed dY."""

    def f(point: Point) -> float:
        params = {k: v for k, v in point.items() if k != "X"}
        Y, _ = mlp_forward(spec, params, point["X"])
        return float(np.sum(Y * dY))

    return f


def objective_scale(Y: Array, dY: Array) -> float:
    """S = Σ |Y ⊙ δ|, the size of the terms of Σ Y ⊙ δ."""
    return float(np.sum(np.abs(Y * dY)))


# activations whose derivative jumps at 0: relu, leaky_relu, and elu and selu (1 against α, λ
# against λα; a SELU network's adjoint test once crossed it, 1.3e5 of its tolerance)
KINKED = ("relu", "leaky_relu", "elu", "selu")


def min_abs_preactivation(cache: Any) -> float:
    """min |Zˡ| over the KINKED layers of an `MLPCache` (inf if there are none).

    Those layers keep Zˡ itself in their cache (refimpl.activations.ActivationCache).
    """
    kinked = [layer.activation.kept for layer in cache.layers if layer.activation.name in KINKED]
    return min((float(np.abs(Z).min()) for Z in kinked), default=float("inf"))


def has_kink(spec: MLPSpec) -> bool:
    """Whether some layer of the spec is KINKED."""
    return any(spec.activation(l) in KINKED for l in range(1, spec.depth + 1))


def mlp_adjoint_mismatch(
    spec: MLPSpec,
    params: dict[str, Array],
    X: Array,
    rng: np.random.Generator,
    backward: Callable[[MLPSpec, Array, MLPCache], dict[str, Array]] = mlp_backward,
    *,
    draws: int = 3,
) -> tuple[float, bool]:
    """The adjoint test <u, J v> = <Jᵀ u, v> on an MLP, over every parameter and X at once.

    J v is a central difference of `mlp_forward`, Jᵀ u is `backward` (the pass under test).
    Returns the worst over `draws` random pairs (u, v) of
    |<u, J v> - <Jᵀ u, v>| / (ADJOINT_RTOL Σ|terms| + FD_ATOL (1 + Σ |u ⊙ Y|)), <= 1 passes:
    one pair is one random projection of the error, small by chance once in ~1e4 draws. And
    whether some KINKED Zˡ changed sign between x and x ± εv: v is not normalized
    (|v| ~ √size), so near a kink the difference quotient is not J v.
    """
    Y, cache = mlp_forward(spec, params, X)
    signs: list[list[Array]] = []
    upstream: list[Array] = []

    def g(point: Point) -> Array:
        Yp, c = mlp_forward(spec, {k: v for k, v in point.items() if k != "X"}, point["X"])
        signs.append(
            [np.sign(layer.activation.kept) for layer in c.layers if layer.activation.name in KINKED]
        )
        return Yp

    def vjp(u: Array) -> dict[str, Array]:
        upstream.append(u)
        return backward(spec, u, cache)

    worst, crossed = 0.0, False
    for _ in range(draws):
        signs.clear()
        upstream.clear()
        lhs, rhs, size = vjp_inner_product(g, vjp, mlp_point(params, X), rng)
        at_x = signs[0]  # vjp_inner_product evaluates g at x first, then at x ± εv
        crossed = crossed or any(
            not np.array_equal(a, b) for s in signs[1:] for a, b in zip(s, at_x, strict=True)
        )
        tolerance = ADJOINT_RTOL * size + FD_ATOL * (1.0 + objective_scale(Y, upstream[0]))
        worst = max(worst, _nan_is_inf(abs(lhs - rhs) / tolerance))
    return worst, crossed
