"""GELU (exact and its tanh approximation), ELU, SELU, SiLU and softplus: f and f' written out.

README, "Activations". σ(x) = 1/(1 + e^{-x}), Φ the standard normal CDF, φ its density:

    gelu(x)      = x Φ(x),  Φ(x) = ½ erfc(-x/√2)        gelu'(x)      = Φ(x) + x φ(x),  φ(x) = e^{-x²/2}/√(2π)
    gelu_tanh(x) = ½ x (1 + tanh u) = x σ(2u),          gelu_tanh'(x) = σ(2u) + 2x σ(2u) σ(-2u) u',
                   u = √(2/π) (x + c x³), c = 0.044715                  u' = √(2/π) (1 + 3c x²)
    elu(x)       = x if x > 0, else α (e^x - 1)          elu'(x)       = 1 if x > 0, α e^x if x < 0
    selu(x)      = λ elu(x; α_S)                         selu'(x)      = λ elu'(x; α_S)
    silu(x)      = x σ(x)                                silu'(x)      = σ(x) + x σ(x) σ(-x)
    softplus(x)  = log(1 + e^{βx}) / β                   softplus'(x)  = σ(βx)
                   (x itself where βx > threshold)                        (1 there)

elu'(0) and selu'(0) are the convention `elu_kink`: "negative" takes the x ≤ 0 branch (α, λα:
torch's `x <= 0 ? ... : ...`, and `jnp.where(x > 0, x, ...)` in jax.nn.elu), "positive" the
other (1, λ). softplus's `threshold` is torch's switch to the identity (F.softplus, 20 by
default; at βx = threshold exactly the log form still applies); None is jax.nn.softplus,
`logaddexp(x, 0)`, without one. SELU's α_S and λ are the constants of Klambauer et al. (2017)
that torch, jax and keras use.

Stable for every x: σ from e^{-|x|} (no overflow, relatively accurate in both tails),
log(1 + e^{βx})/β = max(x, 0) + log1p(e^{-|βx|})/β, e^x - 1 by expm1 on min(x, 0), gelu_tanh's cubic on
x clipped to ±30 (where σ(2u) is already exactly 0 or 1), and a product x·s whose factor s
vanished (x = ±inf, s = 0) is 0, the limit: no NaN from finite or infinite x, none from
overflow. Each works in Z's dtype, except erf, computed in float64 (refimpl.erf).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl._validate import require_array, require_choice, require_instance, require_real
from refimpl.erf import erfc

Array = NDArray[Any]

NAMES = ("gelu", "gelu_tanh", "elu", "selu", "silu", "softplus")
ELU_KINKS = ("negative", "positive")
SELU_ALPHA = 1.6732632423543772848170429916717  # α_S
SELU_SCALE = 1.0507009873554804934193349852946  # λ
GELU_TANH_C = 0.044715
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CLIP = 30.0  # gelu_tanh: |x| >= 30 gives 2|u| > 1900, σ(±2u) exactly 0 or 1 in float32 and float64


class SmoothParams(NamedTuple):
    """The hyper-parameters and conventions of these activations (defaults: torch's)."""

    alpha: float = 1.0  # elu's α (torch, jax and keras default to 1.0)
    elu_kink: str = "negative"  # elu'(0), selu'(0): the x <= 0 branch (every framework)
    beta: float = 1.0  # softplus's β
    threshold: float | None = 20.0  # softplus: identity where βx > threshold; None: never


def _sigmoid_pair(x: Array) -> tuple[Array, Array]:
    """(σ(x), σ(-x)) from e = e^{-|x|}: 1/(1 + e) and e/(1 + e), relatively accurate everywhere."""
    e = np.exp(-np.abs(x))
    big, small = 1 / (1 + e), e / (1 + e)
    positive = x >= 0
    return np.where(positive, big, small), np.where(positive, small, big)


def _times(x: Array, s: Array) -> Array:
    """x s, taken as 0 where s = 0 (the limit, where x may be infinite)."""
    return np.where(s == 0, 0, x) * s


def _x(x: Any) -> Array:
    return require_array("x", x, finite=False)


def _alpha(alpha: Any) -> float:
    return require_real("alpha", alpha, minimum=0.0)


def _softplus_args(beta: Any, threshold: Any) -> tuple[float, float | None]:
    if require_real("beta", beta) <= 0.0:
        raise ValueError(f"beta: expected a number > 0, received {beta}")
    return float(beta), None if threshold is None else require_real("threshold", threshold)


def gelu(x: Array) -> Array:
    x = _x(x)
    Phi = _normal_cdf(x)
    return _times(x, Phi)


def gelu_prime(x: Array) -> Array:
    x = _x(x)
    xc = np.clip(x.astype(np.float64), -40.0, 40.0)  # x φ(x) = 0 beyond |x| = 38.6
    phi = np.exp(-0.5 * xc * xc) / math.sqrt(2 * math.pi)
    return (_normal_cdf(x).astype(np.float64) + xc * phi).astype(x.dtype)


def _normal_cdf(x: Array) -> Array:
    """Φ(x) = ½ erfc(-x/√2), in x's dtype."""
    return (0.5 * erfc(-x.astype(np.float64) / math.sqrt(2.0))).astype(x.dtype)


def _gelu_tanh_parts(x: Array) -> tuple[Array, Array, Array]:
    """σ(2u), σ(-2u), u' on x clipped to ±30."""
    xc = np.clip(x, -_CLIP, _CLIP)
    u = _SQRT_2_OVER_PI * (xc + GELU_TANH_C * xc * xc * xc)
    s, s_neg = _sigmoid_pair(2 * u)
    return s, s_neg, _SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_C * xc * xc)


def gelu_tanh(x: Array) -> Array:
    x = _x(x)
    return _times(x, _gelu_tanh_parts(x)[0])


def gelu_tanh_prime(x: Array) -> Array:
    s, s_neg, du = _gelu_tanh_parts(_x(x))
    return s + _times(x, 2 * s * s_neg) * du


def elu(x: Array, alpha: float) -> Array:
    x, alpha = _x(x), _alpha(alpha)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_prime(x: Array, alpha: float, elu_kink: str) -> Array:
    x, alpha = _x(x), _alpha(alpha)
    require_choice("elu_kink", elu_kink, ELU_KINKS)
    d = np.where(x > 0, 1, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)
    return np.where(x == 0, 1, d).astype(x.dtype) if elu_kink == "positive" else d


def silu(x: Array) -> Array:
    x = _x(x)
    return _times(x, _sigmoid_pair(x)[0])


def silu_prime(x: Array) -> Array:
    s, s_neg = _sigmoid_pair(_x(x))
    return s + _times(x, s * s_neg)


def _scaled(x: Array, beta: float) -> Array:
    """βx; where it overflows, ±inf serves: it only enters e^{-|βx|} = 0, σ(βx) and βx > threshold."""
    with np.errstate(over="ignore"):
        return beta * x


def softplus(x: Array, beta: float, threshold: float | None) -> Array:
    x, (beta, threshold) = _x(x), _softplus_args(beta, threshold)
    y = _scaled(x, beta)
    log_form = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(y))) / beta  # max(βx, 0)/β = max(x, 0)
    return log_form if threshold is None else np.where(y > threshold, x, log_form)


def softplus_prime(x: Array, beta: float, threshold: float | None) -> Array:
    x, (beta, threshold) = _x(x), _softplus_args(beta, threshold)
    y = _scaled(x, beta)
    s = _sigmoid_pair(y)[0]
    return s if threshold is None else np.where(y > threshold, 1, s).astype(x.dtype)


def value(name: str, x: Array, p: SmoothParams) -> Array:
    """f(x) for f one of NAMES."""
    require_choice("name", name, NAMES)
    require_instance("p", p, SmoothParams)
    with np.errstate(under="ignore"):  # e^{-|x|} below the subnormals is 0, the limit
        return _value(name, x, p)


def derivative(name: str, x: Array, p: SmoothParams) -> Array:
    """f'(x) for f one of NAMES, elu'(0) and selu'(0) by p.elu_kink."""
    require_choice("name", name, NAMES)
    require_instance("p", p, SmoothParams)
    with np.errstate(under="ignore"):
        return _derivative(name, x, p)


def _value(name: str, x: Array, p: SmoothParams) -> Array:
    if name == "gelu":
        return gelu(x)
    if name == "gelu_tanh":
        return gelu_tanh(x)
    if name in ("elu", "selu"):
        alpha, scale = (p.alpha, 1.0) if name == "elu" else (SELU_ALPHA, SELU_SCALE)
        return (scale * elu(x, alpha)).astype(x.dtype)
    if name == "silu":
        return silu(x)
    return softplus(x, p.beta, p.threshold)


def _derivative(name: str, x: Array, p: SmoothParams) -> Array:
    if name == "gelu":
        return gelu_prime(x)
    if name == "gelu_tanh":
        return gelu_tanh_prime(x)
    if name in ("elu", "selu"):
        alpha, scale = (p.alpha, 1.0) if name == "elu" else (SELU_ALPHA, SELU_SCALE)
        return (scale * elu_prime(x, alpha, p.elu_kink)).astype(x.dtype)
    if name == "silu":
        return silu_prime(x)
    return softplus_prime(x, p.beta, p.threshold)
