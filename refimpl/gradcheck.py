"""Framework-free oracles for a gradient: finite differences and the VJP inner-product test.

A function under test takes a point, a dict of named arrays (parameters and
inputs), and returns a scalar (`f`) or an array (`g`).

* Central differences, O(ε²) truncation error:
      ∂f/∂x_i ≈ (f(x + ε e_i) - f(x - ε e_i)) / 2ε
  `numerical_grads` does this element by element (small networks only: two
  evaluations per element); `directional_derivative` along one direction v
  costs two evaluations for any size.
* The VJP inner-product (adjoint) test: for any u and v,
      <u, J v> = <Jᵀ u, v>
  where J v comes from a central difference of g and Jᵀ u from the backward
  pass under test. One scalar identity checks every parameter at once.

Tolerances for float64 with ε = 1e-6: truncation ~ ε² |f'''| ≈ 1e-12 and
round-off ~ 1e-16 |f| / ε ≈ 1e-10 |f|, so agreement to about 1e-7 relative
is expected; a wrong formula is off by O(1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refimpl._validate import describe, require_array, require_real

Array = NDArray[Any]
Point = dict[str, Array]

DEFAULT_EPS = 1e-6  # float64; see the module docstring


def _shifted(point: Point, direction: Point, step: float) -> Point:
    return {k: (v + step * direction[k] if k in direction else v) for k, v in point.items()}


def _require_float64(point: Point) -> None:
    if not isinstance(point, dict):
        raise TypeError(f"point: expected a dict of numpy arrays, received {describe(point)}")
    for key, value in point.items():
        require_array(f"point[{key!r}]", value, floating=False, finite=False)
        if value.dtype.kind == "f" and value.dtype != np.float64:
            raise TypeError(
                f"point[{key!r}]: expected dtype float64 for finite differences,"
                f" received {value.dtype}"
            )


def _require_direction(point: Point, direction: Point) -> None:
    """A direction names entries of the point and has their shapes (no broadcasting)."""
    if not isinstance(direction, dict):
        raise TypeError(f"direction: expected a dict of numpy arrays, received {describe(direction)}")
    for key, value in direction.items():
        if key not in point:
            raise ValueError(f"direction: expected keys among {sorted(point)}, received {key!r}")
        require_array(f"direction[{key!r}]", value, shape=point[key].shape)


def _require_step(eps: float) -> float:
    return require_real("eps", eps, minimum=1e-12, maximum=1.0)


def numerical_grads(
    f: Callable[[Point], float],
    point: Point,
    *,
    keys: Iterable[str] | None = None,
    eps: float = DEFAULT_EPS,
) -> dict[str, Array]:
    """∂f/∂x for every element of point[k], k in keys (default: every float entry)."""
    eps = _require_step(eps)
    _require_float64(point)
    chosen = [k for k in point if point[k].dtype.kind == "f"] if keys is None else list(keys)
    work = {k: v.copy() for k, v in point.items()}
    grads: dict[str, Array] = {}
    for key in chosen:
        if key not in work:
            raise ValueError(f"keys: expected names among {sorted(work)}, received {key!r}")
        flat = work[key].reshape(-1)  # a view: writing flat perturbs work[key]
        grad = np.empty(flat.size)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            f_plus = f(work)
            flat[i] = saved - eps
            f_minus = f(work)
            flat[i] = saved
            grad[i] = (f_plus - f_minus) / (2.0 * eps)
        grads[key] = grad.reshape(work[key].shape)
    return grads


def directional_derivative(
    f: Callable[[Point], float], point: Point, direction: Point, *, eps: float = DEFAULT_EPS
) -> float:
    """(f(x + εv) - f(x - εv)) / 2ε ≈ <∇f, v>."""
    eps = _require_step(eps)
    _require_float64(point)
    _require_direction(point, direction)
    return (f(_shifted(point, direction, eps)) - f(_shifted(point, direction, -eps))) / (2 * eps)


def jvp_by_differences(
    g: Callable[[Point], Array], point: Point, direction: Point, *, eps: float = DEFAULT_EPS
) -> Array:
    """J v ≈ (g(x + εv) - g(x - εv)) / 2ε for an array-valued g."""
    eps = _require_step(eps)
    _require_float64(point)
    _require_direction(point, direction)
    return (g(_shifted(point, direction, eps)) - g(_shifted(point, direction, -eps))) / (2 * eps)


def vjp_inner_product(
    g: Callable[[Point], Array],
    vjp: Callable[[Array], Point],
    point: Point,
    rng: np.random.Generator,
    *,
    keys: Iterable[str] | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[float, float, float]:
    """The adjoint test: returns (<u, J v>, <Jᵀ u, v>, scale) for random u and v.

    `vjp(u)` is the backward pass under test, returning Jᵀ u as a dict keyed like
    `point`; v is drawn for `keys` (default: every key `vjp` returns). `scale` is
    Σ |u| |J v| + Σ |Jᵀ u| |v|, the size of the terms summed, for a relative
    tolerance that does not depend on cancellation.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, received {describe(rng)}")
    eps = _require_step(eps)
    _require_float64(point)
    Y = g(point)
    u = rng.standard_normal(Y.shape)
    vjp_u = vjp(u)
    chosen = list(vjp_u) if keys is None else list(keys)
    for key in chosen:
        if key not in point or key not in vjp_u:
            raise ValueError(
                f"keys: expected names in both the point {sorted(point)} and the VJP"
                f" {sorted(vjp_u)}, received {key!r}"
            )
    v = {k: rng.standard_normal(point[k].shape) for k in chosen}
    Jv = jvp_by_differences(g, point, v, eps=eps)
    lhs = float(np.sum(u * Jv))
    rhs = float(sum(np.sum(vjp_u[k] * v[k]) for k in chosen))
    scale = float(np.sum(np.abs(u * Jv)) + sum(np.sum(np.abs(vjp_u[k] * v[k])) for k in chosen))
    return lhs, rhs, scale


def worst_mismatch(
    analytic: Array, numeric: Array, *, rtol: float, atol: float
) -> tuple[float, tuple[int, ...]]:
    """max_i |a_i - n_i| / (atol + rtol |n_i|) and the index where it is reached."""
    rtol = require_real("rtol", rtol, minimum=0.0)
    atol = require_real("atol", atol, minimum=0.0)
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("rtol, atol: expected at least one of them > 0, received both 0")
    if analytic.shape != numeric.shape:
        raise ValueError(
            f"analytic: expected shape {numeric.shape} (the numeric gradient's),"
            f" received shape {analytic.shape}"
        )
    if analytic.size == 0:
        return 0.0, ()
    ratio = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
    flat = int(np.argmax(ratio))
    return float(ratio.reshape(-1)[flat]), tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
