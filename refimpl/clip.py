"""Gradient clipping on a dict of gradients: by global norm and by value.

Gradients are a flat dict {name: ∂L/∂θ} of float arrays of any shapes (the
keys of a parameter dict). Every function returns NEW arrays in a new dict and
never writes into its argument; non-finite entries are allowed, since what
clipping does with them is part of each framework's convention.

Global norm of order p over all tensors, as if concatenated into one vector:

    ‖g‖₂ = √(Σ_k Σ_i g_{k,i}²)        ‖g‖_∞ = max_k max_i |g_{k,i}|

Clipping by global norm, with M = max_norm and n = ‖g‖ (the pre-clip norm):

    convention="torch"  (torch.nn.utils.clip_grad_norm_)
        c = clamp(M / (n + eps), max=1);   g ← g · c     always multiplied, eps = 1e-6
    convention="optax"  (optax.clip_by_global_norm)
        g ← g                  if n < M          jax.lax.select, g itself
        g ← (g / n) · M        otherwise         divides first; no eps; p = 2 only
    convention="tensorflow"  (tf.clip_by_global_norm; Keras 3's global_clipnorm)
        s = M · min(1/n, 1/M) + (n - n);  g ← g · s      always multiplied; no eps; p = 2 only

Arithmetic is done in the gradients' dtype, as both frameworks do: each
tensor's sum of squares (or max |g|) in its own dtype, the total in the
promoted dtype (float64 if any tensor is float64); M and eps are cast to that
dtype; the coefficient (torch) or the norm (optax) is cast to each tensor's
dtype before it touches that tensor. Named behaviours, each pinned by a test:

- "torch-always-scales": c is multiplied in even when c == 1 (g · 1 == g).
- "torch-eps-at-threshold": at n == M, c = M / (M + eps) < 1, so g shrinks;
  g is left exactly as is only once n + eps <= M (c clamped to 1).
- "torch-eps-absorbed-float32": in float32, n + 1e-6 rounds to n once n >= 32,
  so at n == M >= 32 the coefficient is exactly 1.
- "optax-strict-threshold": identity only for n < M; at n == M it takes the
  rescaling branch (g / n) · M, which may differ from g by one rounding.
- "infinite-norm": finite entries become ±0, infinite ones NaN (x/∞·M, or
  c = M/∞ = 0 and ∞ · 0), in both conventions and for p = 2 and ∞.
- "nan-norm": NaN < M is false and M / NaN is NaN: every entry becomes NaN.
- "zero-max-norm": M = 0 with all-zero gradients gives zeros under torch
  (c = 0 / eps = 0) and NaN under optax (0 / 0); torch with eps = 0 gives NaN.
- "range": the norm is right wherever it is representable. A sum of squares that
  overflowed or may have underflowed is taken again scaled by a power of two
  (refimpl._range, as LAPACK's nrm2): ‖[1e200, 1]‖ = 1e200 in float64, ‖[1e20, 1]‖ = 1e20
  in float32 (reported in float64 where it exceeds float32's range), ‖[1e-30, 1e-30]‖ =
  1.4e-30 in float32. Where a convention's own arithmetic would then overflow or underflow
  (n beyond a tensor's dtype, c = M / (n + eps) below the smallest normal number, M or eps
  beyond the dtype), the result is computed in float64 dividing first, (g / (n + eps)) · M
  or (g / n) · M, and cast once: [1e200, 1] clips to [1, 1e-200]. torch and optax sum the
  squares plainly and return an infinite norm and zeros there (docs/findings/range-ends.md).
- "tensorflow-rounds-below": below the threshold s = M · (1/M), which is 1 only up
  to one rounding (M = 49: 1 - 2⁻⁵³), so g may change by one rounding though n < M.
- "tensorflow-nonfinite-scale": n - n is NaN for n = ±inf or NaN, so a non-finite
  norm makes every entry NaN, finite ones too.
- "error-if-nonfinite": with error_if_nonfinite=True a NaN or infinite norm
  raises NonFiniteNormError (a ValueError; torch raises RuntimeError).
- "empty": {} gives ({}, 0.0), as torch's norm of no tensors is 0; the ∞-norm
  of a zero-size array raises, as in torch (max has no identity).

Clipping by value: g ← clamp(g, -v, v) (torch clip_grad_value_, optax.clip);
NaN stays NaN, ±∞ becomes ±v.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, is_dataclass
from numbers import Real
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl._range import plain_sum_is_accurate, scaled_l2, tiny_times_size
from refimpl._validate import describe, json_fields, require_array, require_choice, require_real

Array = NDArray[Any]
Grads = dict[str, Array]

CONVENTIONS = ("torch", "optax", "tensorflow")
KINDS = ("global_norm", "value")
NORM_TYPES = (2.0, math.inf)
TORCH_EPS = 1e-6  # torch's hard-coded 1e-6 in clip_grad_norm_; optax has none


class NonFiniteNormError(ValueError):
    """The total norm is NaN or infinite and error_if_nonfinite=True."""


def _require_grads(grads: Any) -> Grads:
    """A dict {str: float32/float64 ndarray}; NaN and inf allowed."""
    if not isinstance(grads, dict):
        raise TypeError(f"grads: expected a dict of arrays, received {describe(grads)}")
    for key, value in grads.items():
        if not isinstance(key, str):
            raise TypeError(f"grads: expected string keys, received key {describe(key)}")
        require_array(f"grads[{key!r}]", value, finite=False)
    return grads


def _require_norm_type(norm_type: Any) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, Real) or float(norm_type) not in NORM_TYPES:
        raise ValueError(f"norm_type: expected 2.0 or inf, received {describe(norm_type)}")
    return float(norm_type)


def _require_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{field}: expected a bool, received {describe(value)}")
    return value


class _Norm(NamedTuple):
    """‖g‖ in the gradients' promoted dtype, for the conventions' arithmetic, and exactly as
    n = r 2^e in float64, which holds it where the dtype (or float64) overflows."""

    n: np.floating[Any]
    r: float
    e: int
    plain: bool  # the plain sum of squares was in range (refimpl._range); (r, e) split from n

    def reported(self) -> float:
        """n; the float64 value where the dtype overflows (float32 gradients of norm > 3.4e38)."""
        if self.plain or np.isfinite(self.n):
            return float(self.n)
        with np.errstate(over="ignore"):
            return float(np.ldexp(self.r, self.e))  # inf beyond float64's range


def _split(n: float | np.floating[Any]) -> tuple[float, int]:
    """(r, e) with n = r 2^e, r in [0.5, 1); (n, 0) for 0, inf and NaN."""
    r, e = np.frexp(np.float64(n))
    return float(r), int(e)


def _total_norm(grads: Grads, norm_type: float) -> _Norm:
    """‖g‖ of validated, non-empty gradients: the plain formula in the promoted dtype, scaled
    where its sum of squares overflowed or may have underflowed (refimpl._range)."""
    dtype = np.result_type(*grads.values())
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if norm_type == 2.0:
            squares = [np.sum(np.square(g), dtype=g.dtype) for g in grads.values()]
            total = np.sum(np.array(squares, dtype=dtype))
            if np.isnan(total) or plain_sum_is_accurate(total, tiny_times_size(grads.values())):
                n = np.sqrt(total)
                return _Norm(n, *_split(n), True)
            largest = max(float(np.max(np.abs(g))) for g in grads.values() if g.size)
            if largest == 0.0 or math.isinf(largest):  # all zero, or an infinite entry
                return _Norm(dtype.type(largest), *_split(largest), True)
            r, e = scaled_l2(list(grads.values()))
            return _Norm(dtype.type(np.ldexp(r, e)), r, e, False)
        for key, g in grads.items():
            if g.size == 0:
                raise ValueError(
                    f"grads[{key!r}]: the inf norm of a zero-size array is undefined"
                    f" (max has no identity), received {describe(g)}"
                )
        maxima = [np.max(np.abs(g)) for g in grads.values()]
        n = np.max(np.array(maxima, dtype=dtype))
        return _Norm(n, *_split(n), True)


def global_norm(grads: Grads, norm_type: float = 2.0) -> float:
    """‖g‖₂ = √(Σ g²) or ‖g‖_∞ = max |g| over every tensor; 0.0 for an empty dict.

    Right wherever the norm is representable ("range" in the module docstring)."""
    _require_grads(grads)
    norm_type = _require_norm_type(norm_type)
    return _total_norm(grads, norm_type).reported() if grads else 0.0


def clip_by_global_norm(
    grads: Grads,
    max_norm: float,
    *,
    norm_type: float = 2.0,  # torch: 2.0 or inf; optax: 2.0 only
    convention: str = "torch",  # "torch" (clip_grad_norm_), "optax" or "tensorflow" (clip_by_global_norm)
    eps: float = TORCH_EPS,  # torch: 1e-6; the optax and tensorflow conventions have none and ignore it
    error_if_nonfinite: bool = False,  # torch's flag (default False); optax has none
) -> tuple[Grads, float]:
    """(clipped gradients, pre-clip norm n); see the module docstring for each convention."""
    _require_grads(grads)
    max_norm = require_real("max_norm", max_norm, minimum=0.0)
    norm_type = _require_norm_type(norm_type)
    convention = require_choice("convention", convention, CONVENTIONS)
    eps = require_real("eps", eps, minimum=0.0)
    _require_bool("error_if_nonfinite", error_if_nonfinite)
    if convention != "torch" and norm_type != 2.0:
        raise ValueError(
            f"norm_type: the {convention} convention clips by the L2 norm only (2.0), received {norm_type}"
        )
    if not grads:
        return {}, 0.0
    norm = _total_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(norm.reported()):
        raise NonFiniteNormError(
            f"grads: the total norm of order {norm_type} is {norm.reported()}, so the gradients"
            " cannot be clipped (error_if_nonfinite=True)"
        )
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        clipped = _clip_plain(grads, norm, max_norm, convention, eps)
        if clipped is None:
            clipped = _clip_scaled(grads, norm, max_norm, convention, eps)
    return clipped, norm.reported()


def _clip_plain(grads: Grads, norm: _Norm, max_norm: float, convention: str, eps: float) -> Grads | None:
    """Each convention's own arithmetic in the gradients' dtypes, or None where it would
    overflow or underflow although the answer is representable (then `_clip_scaled`)."""
    dtype = norm.n.dtype.type
    narrow = min((g.dtype for g in grads.values()), key=lambda d: np.finfo(d).max).type
    M = dtype(max_norm)
    if not (norm.plain and np.isfinite(M) and np.isfinite(narrow(max_norm))):
        return None
    if convention == "torch":
        if not np.isfinite(dtype(eps)):
            return None
        coef = np.minimum(M / (norm.n + dtype(eps)), dtype(1.0))  # clamp(max=1)
        if max_norm > 0 and coef < np.finfo(narrow).tiny and np.isfinite(norm.n):
            return None  # c underflows, g c need not
        return {k: np.asarray(g * g.dtype.type(coef)) for k, g in grads.items()}
    if convention == "tensorflow":
        scale = M * np.minimum(dtype(1.0) / norm.n, dtype(1.0) / M)
        scale = scale + (norm.n - norm.n)  # NaN for a non-finite norm
        if max_norm > 0 and np.isfinite(norm.n) and min(scale, dtype(1.0) / norm.n) < np.finfo(narrow).tiny:
            return None  # 1/n or s underflows, g s need not
        return {k: np.asarray(g * g.dtype.type(scale)) for k, g in grads.items()}
    if norm.n < M:  # NaN < M is False: NaN takes the rescaling branch
        return {k: g.copy() for k, g in grads.items()}
    if np.isfinite(norm.n) and not np.isfinite(narrow(norm.n)):
        return None  # a float64 norm beyond float32's range: g / n is not 0 for float32 g
    return {k: np.asarray((g / g.dtype.type(norm.n)) * g.dtype.type(M)) for k, g in grads.items()}


def _clip_scaled(grads: Grads, norm: _Norm, max_norm: float, convention: str, eps: float) -> Grads:
    """The convention's result computed in float64 from n = r 2^e, cast to each dtype once:
    optax and tensorflow (g 2^{-e} / r) M; torch g / (n + ε) M, or (g 2^{-e} / (r + ε 2^{-e})) M
    where n + ε overflows float64. Dividing first, no coefficient is formed that could underflow."""
    r, e = norm.r, norm.e
    n = float(np.ldexp(r, e))  # inf beyond float64's range
    if convention == "tensorflow":
        if norm.plain and not math.isfinite(n):  # an infinite or NaN entry: n - n is NaN
            return {k: np.asarray(g * g.dtype.type(math.nan)) for k, g in grads.items()}
        convention = "optax"  # M min(1/n, 1/M) is min(M/n, 1): optax's result, exactly
    if convention == "optax" and n < max_norm:
        return {k: g.copy() for k, g in grads.items()}
    if convention == "torch" and math.isfinite(n + eps) and max_norm >= n + eps:
        return {k: g.copy() for k, g in grads.items()}  # c = 1
    if convention == "torch" and math.isfinite(n + eps):
        return {k: ((g.astype(np.float64) / (n + eps)) * max_norm).astype(g.dtype) for k, g in grads.items()}
    below = r if convention == "optax" else r + float(np.ldexp(eps, -e))
    return {
        k: ((np.ldexp(g.astype(np.float64), -e) / below) * max_norm).astype(g.dtype) for k, g in grads.items()
    }


def clip_by_norm(grads: Grads, max_norm: float) -> Grads:
    """Each tensor clipped by its own L2 norm, as tf.clip_by_norm (Keras 3's clipnorm):

        n_k = √(Σ_i g_{k,i}²) (0 when the sum is 0);  g_k ← g_k · M / max(n_k, M)

    in the tensor's dtype; a NaN sum gives n_k = NaN and NaN entries, an infinite one
    ±0 and NaN as "infinite-norm"; below the threshold (g_k · M) / M may differ from
    g_k by one rounding. At the ends of the range ("range"), n_k is taken scaled and
    g_k · M / n_k computed in float64, dividing first."""
    _require_grads(grads)
    M = require_real("max_norm", max_norm, minimum=0.0)
    clipped = {}
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        for k, g in grads.items():
            norm = _total_norm({k: g}, 2.0)  # n_k in g's dtype: 0, inf and NaN as the sum gives them
            if norm.plain and np.isfinite(g.dtype.type(M)):
                clipped[k] = np.asarray(g * g.dtype.type(M) / np.maximum(norm.n, g.dtype.type(M)))
            else:  # g_k · M / max(n_k, M) exactly: g_k below the threshold, (g_k / n_k) · M above
                clipped[k] = _clip_scaled({k: g}, norm, M, "optax", 0.0)[k]
    return clipped


def clip_by_value(grads: Grads, clip_value: float) -> Grads:
    """g ← clamp(g, -v, v) elementwise, v cast to each tensor's dtype; NaN stays NaN."""
    _require_grads(grads)
    v = require_real("clip_value", clip_value, minimum=0.0)
    with np.errstate(over="ignore"):  # v beyond the dtype's range casts to inf: no clipping
        return {k: np.asarray(np.clip(g, g.dtype.type(-v), g.dtype.type(v))) for k, g in grads.items()}


@dataclass(frozen=True)
class ClipSpec:
    """A clipping step; serializes to JSON so a failing case can be replayed."""

    kind: str  # "global_norm" (needs max_norm) or "value" (needs clip_value)
    max_norm: float | None = None  # M, finite, >= 0; only for kind="global_norm"
    clip_value: float | None = None  # v, finite, >= 0; only for kind="value"
    norm_type: float = 2.0  # 2.0 or inf (torch only); also the norm apply_clip reports
    convention: str = "torch"  # "torch", "optax" or "tensorflow"
    eps: float = TORCH_EPS  # torch's 1e-6; unused by the optax and tensorflow conventions
    error_if_nonfinite: bool = False  # torch's default

    def __post_init__(self) -> None:
        kind = require_choice("kind", self.kind, KINDS)
        used, unused = ("max_norm", "clip_value")
        if kind == "value":
            used, unused = unused, used
        if getattr(self, unused) is not None:
            raise ValueError(f"{unused}: expected None for kind={kind!r}, received {getattr(self, unused)!r}")
        object.__setattr__(self, used, require_real(used, getattr(self, used), minimum=0.0))
        object.__setattr__(self, "norm_type", _require_norm_type(self.norm_type))
        require_choice("convention", self.convention, CONVENTIONS)
        object.__setattr__(self, "eps", require_real("eps", self.eps, minimum=0.0))
        _require_bool("error_if_nonfinite", self.error_if_nonfinite)
        if kind == "global_norm" and self.convention != "torch" and self.norm_type != 2.0:
            raise ValueError(
                f"norm_type: the {self.convention} convention clips by the L2 norm only (2.0),"
                f" received {self.norm_type}"
            )

    def to_json(self) -> str:
        return spec_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> ClipSpec:
        return spec_from_json(cls, text)


def spec_to_json(spec: Any) -> str:
    """A spec with a `norm_type` field as JSON, whose numbers have no inf: written "inf"."""
    if not (is_dataclass(spec) and not isinstance(spec, type) and hasattr(spec, "norm_type")):
        raise TypeError(f"spec: expected a spec dataclass with a norm_type field, received {describe(spec)}")
    data = asdict(spec)
    if math.isinf(data["norm_type"]):
        data["norm_type"] = "inf"
    return json.dumps(data, sort_keys=True)


def spec_from_json(cls: Any, text: str) -> Any:
    """The inverse of spec_to_json for the spec class `cls`."""
    if not (isinstance(cls, type) and is_dataclass(cls) and "norm_type" in {f.name for f in fields(cls)}):
        raise TypeError(f"cls: expected a spec dataclass with a norm_type field, received {describe(cls)}")
    data = json_fields(cls, text)
    if data.get("norm_type") == "inf":
        data["norm_type"] = math.inf
    return cls(**data)


def apply_clip(spec: ClipSpec, grads: Grads) -> tuple[Grads, float]:
    """(clipped gradients, pre-clip global norm of order spec.norm_type), for either kind."""
    if not isinstance(spec, ClipSpec):
        raise TypeError(f"spec: expected a ClipSpec, received {describe(spec)}")
    if spec.kind == "value":
        assert spec.clip_value is not None  # guaranteed by __post_init__
        return clip_by_value(grads, spec.clip_value), global_norm(grads, spec.norm_type)
    assert spec.max_norm is not None  # guaranteed by __post_init__
    return clip_by_global_norm(
        grads,
        spec.max_norm,
        norm_type=spec.norm_type,
        convention=spec.convention,
        eps=spec.eps,
        error_if_nonfinite=spec.error_if_nonfinite,
    )
