"""Framework-free oracles for a gradient: finite differences and the VJP inner-product test.

A function under test takes a point, a dict of named arrays (parameters and
inputs), and returns a finite real scalar (`f`) or a finite float array (`g`).

* Central differences, O(h²) truncation error, with a step relative to the entry:
      ∂f/∂x_i ≈ (f(x + h e_i) - f(x - h e_i)) / ((x_i + h) - (x_i - h)),   h = ε max(1, |x_i|)
  `numerical_grads` does this element by element (small networks only: two
  evaluations per element) and divides by the step actually taken;
  `directional_derivative` along one direction v costs two evaluations for any
  size, with h = ε max(1, max |x|) over the entries v moves.
* The VJP inner-product (adjoint) test: for any u and v,
      <u, J v> = <Jᵀ u, v>
  where J v comes from a central difference of g and Jᵀ u from the backward
  pass under test. One scalar identity checks every parameter at once.

Why relative: an absolute ε is below half an ulp of |x| > 2^53 ε, so at x = 1e308
x + 1e-6 == x and the derivative would come back 0. Why a copy: the differences are
taken on a float64 copy of the entries they move, never in the caller's arrays; an
integer entry that is differentiated (named in `keys`, or moved by a direction) is
converted to float64 explicitly, a bool entry is rejected (it has no neighbours), and
so is a float32 entry anywhere in the point (f would round at 1e-7, so a difference
over ε = 1e-6 keeps about one digit).

Tolerances for float64 with ε = 1e-6: truncation ~ h² |f'''| ≈ 1e-12 and
round-off ~ 1e-16 |f| / h ≈ 1e-10 |f|, so agreement to about 1e-7 relative
is expected; a wrong formula is off by O(1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import NDArray

from refimpl._validate import describe, require_array, require_real

Array = NDArray[Any]
Point = dict[str, Array]

DEFAULT_EPS = 1e-6  # float64; see the module docstring


def _shifted(point: Point, direction: Point, step: float) -> Point:
    return {k: (v + step * direction[k] if k in direction else v) for k, v in point.items()}


def _require_point(point: Any) -> None:
    """A dict {str: ndarray} without float32 entries (module docstring)."""
    if not isinstance(point, dict):
        raise TypeError(f"point: expected a dict of numpy arrays, received {describe(point)}")
    for key, value in point.items():
        require_array(f"point[{key!r}]", value, floating=False, finite=False)
        if value.dtype.kind == "f" and value.dtype != np.float64:
            raise TypeError(
                f"point[{key!r}]: expected dtype float64 for finite differences, received {value.dtype}"
            )


def _as_float64(point: Point, key: str) -> Array:
    """A finite float64 copy of an entry to differentiate (float64 or integer)."""
    value = point[key]
    if value.dtype.kind not in "fiu":
        raise TypeError(
            f"point[{key!r}]: expected a float64 or integer array to differentiate,"
            f" received dtype {value.dtype}"
        )
    return require_array(f"point[{key!r}]", value.astype(np.float64))  # a new array, finite


def _require_callable(field: str, value: Any, returns: str) -> None:
    if not callable(value):
        raise TypeError(f"{field}: expected a callable returning {returns}, received {describe(value)}")


def _require_direction(point: Point, direction: Any) -> Point:
    """A direction names entries of the point and has their shapes (no broadcasting);
    returns the point with those entries as float64 copies."""
    if not isinstance(direction, dict):
        raise TypeError(f"direction: expected a dict of numpy arrays, received {describe(direction)}")
    moved = dict(point)
    for key, value in direction.items():
        if key not in point:
            raise ValueError(f"direction: expected keys among {sorted(point)}, received {key!r}")
        require_array(f"direction[{key!r}]", value, shape=point[key].shape)
        moved[key] = _as_float64(point, key)
    return moved


def _require_step(eps: float) -> float:
    return require_real("eps", eps, minimum=1e-12, maximum=1.0)


def _scalar(value: Any) -> float:
    """f's value: a finite real scalar (a Python number, a NumPy scalar or a 0-d array)."""
    kind = np.asarray(value).dtype.kind if np.ndim(value) == 0 else ""  # a 0-d array of numbers
    if isinstance(value, bool | np.bool_) or not (isinstance(value, Real) or kind in ("f", "i", "u")):
        raise TypeError(f"f: expected a real scalar, received {describe(value)}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"f: expected a finite value at the point and its neighbours, received {number}")
    return number


def _steps(x: Array, eps: float, key: str) -> tuple[Array, Array]:
    """x + h and x - h with h = ε max(1, |x|), both finite."""
    h = eps * np.maximum(1.0, np.abs(x))
    with np.errstate(over="ignore"):
        up, down = x + h, x - h
    if not (np.isfinite(up).all() and np.isfinite(down).all()):
        raise ValueError(
            f"point[{key!r}]: expected |x| <= {np.finfo(np.float64).max / (1 + eps):.6g}"
            f" so that x ± ε|x| is finite, received max |x| = {np.abs(x).max():.6g}"
        )
    return up, down


def numerical_grads(
    f: Callable[[Point], float],
    point: Point,
    *,
    keys: Iterable[str] | None = None,
    eps: float = DEFAULT_EPS,
) -> dict[str, Array]:
    """∂f/∂x in float64 for every element of point[k], k in keys (default: every float entry).

    Central differences on a float64 copy of the point, with a step h = ε max(1, |x_i|)
    relative to each entry's magnitude, divided by the step actually taken (module
    docstring); integer entries named in `keys` are differentiated at their float64 values.
    """
    eps = _require_step(eps)
    _require_callable("f", f, "a real scalar")
    _require_point(point)
    if isinstance(keys, str) or not (keys is None or isinstance(keys, Iterable)):
        raise TypeError(f"keys: expected an iterable of entry names or None, received {describe(keys)}")
    chosen = [k for k in point if point[k].dtype.kind == "f"] if keys is None else list(keys)
    for key in chosen:
        if key not in point:
            raise ValueError(f"keys: expected names among {sorted(point)}, received {key!r}")
    work = {**point, **{k: _as_float64(point, k) for k in chosen}}  # copies: the point stays as is
    grads: dict[str, Array] = {}
    for key in chosen:
        flat = work[key].reshape(-1)  # a view: writing flat perturbs work[key]
        up, down = _steps(flat.copy(), eps, key)
        grad = np.empty(flat.size)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = up[i]
            f_plus = _scalar(f(work))
            flat[i] = down[i]
            f_minus = _scalar(f(work))
            flat[i] = saved
            grad[i] = (f_plus - f_minus) / (up[i] - down[i])
        grads[key] = grad.reshape(work[key].shape)
    return grads


def _direction_step(moved: Point, direction: Point, eps: float) -> float:
    """h = ε max(1, max |x|) over the entries the direction moves, with x ± h v finite."""
    largest = max((float(np.abs(moved[k]).max()) for k in direction if moved[k].size), default=0.0)
    h = eps * max(1.0, largest)
    for key, v in direction.items():
        with np.errstate(over="ignore"):
            reach = np.abs(moved[key]) + h * np.abs(v)
        if not np.isfinite(reach).all():
            raise ValueError(
                f"point[{key!r}]: expected x ± h v finite (h = {h:.6g}),"
                f" received max |x| = {np.abs(moved[key]).max():.6g}"
            )
    return h


def directional_derivative(
    f: Callable[[Point], float], point: Point, direction: Point, *, eps: float = DEFAULT_EPS
) -> float:
    """(f(x + hv) - f(x - hv)) / 2h ≈ <∇f, v>, h = ε max(1, max |x|) over the moved entries."""
    eps = _require_step(eps)
    _require_callable("f", f, "a real scalar")
    _require_point(point)
    moved = _require_direction(point, direction)
    h = _direction_step(moved, direction, eps)
    return (_scalar(f(_shifted(moved, direction, h))) - _scalar(f(_shifted(moved, direction, -h)))) / (2 * h)


def jvp_by_differences(
    g: Callable[[Point], Array], point: Point, direction: Point, *, eps: float = DEFAULT_EPS
) -> Array:
    """J v ≈ (g(x + hv) - g(x - hv)) / 2h for an array-valued g, h as in directional_derivative."""
    eps = _require_step(eps)
    _require_callable("g", g, "an array")
    _require_point(point)
    moved = _require_direction(point, direction)
    h = _direction_step(moved, direction, eps)
    plus = require_array("g", g(_shifted(moved, direction, h)))
    minus = require_array("g", g(_shifted(moved, direction, -h)), shape=plus.shape)
    return (plus - minus) / (2 * h)


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
    _require_callable("g", g, "an array")
    _require_callable("vjp", vjp, "a dict of arrays")
    _require_point(point)
    Y = require_array("g", g(point))
    u = rng.standard_normal(Y.shape)
    vjp_u = vjp(u)
    if not isinstance(vjp_u, dict):
        raise TypeError(f"vjp: expected a dict of arrays keyed like the point, received {describe(vjp_u)}")
    chosen = list(vjp_u) if keys is None else list(keys)
    for key in chosen:
        if key not in point or key not in vjp_u:
            raise ValueError(
                f"keys: expected names in both the point {sorted(point)} and the VJP"
                f" {sorted(vjp_u)}, received {key!r}"
            )
        require_array(f"vjp(u)[{key!r}]", vjp_u[key], shape=point[key].shape, finite=False)
    v = {k: rng.standard_normal(point[k].shape) for k in chosen}
    Jv = jvp_by_differences(g, point, v, eps=eps)
    lhs = float(np.sum(u * Jv))
    rhs = float(sum(np.sum(vjp_u[k] * v[k]) for k in chosen))
    scale = float(np.sum(np.abs(u * Jv)) + sum(np.sum(np.abs(vjp_u[k] * v[k])) for k in chosen))
    return lhs, rhs, scale


def worst_mismatch(
    analytic: Array, numeric: Array, *, rtol: float, atol: float
) -> tuple[float, tuple[int, ...]]:
    """max_i |a_i - n_i| / (atol + rtol |n_i|) and the index where it is reached; a NaN in
    either array is an infinite mismatch, reported at the first NaN."""
    for field, value in (("analytic", analytic), ("numeric", numeric)):
        require_array(field, value, floating=False, finite=False)
        if value.dtype.kind not in "fiu":
            raise TypeError(f"{field}: expected a real numeric array, received dtype {value.dtype}")
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
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.abs(analytic - numeric) / (atol + rtol * np.abs(numeric))
    ratio[np.isnan(ratio)] = np.inf  # NaN compares false with everything: count it as the worst
    flat = int(np.argmax(ratio))
    return float(ratio.reshape(-1)[flat]), tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
