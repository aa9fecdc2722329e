"""Rounding bounds of the smooth activations (refimpl/smooth.py) and their derivatives.

Each is taken exactly at every simulated Z (the change f(Z + d) - f(Z), Arithmetic.function)
and a library's evaluation adds c_f ulps (ELEMENTARY_ULPS) of the magnitude of the terms its
formula adds. Where those cancel the error is relative to them, not to the result, so the
magnitude is theirs (σ̄(x) = max(σ(x), 1 - σ(x)) = σ(|x|), Φ̄(x) = Φ(|x|)):

    f            formula a library evaluates           magnitude of its terms
    gelu         ½ x (1 + erf(x/√2))                   |x| Φ̄(x)
    gelu'        ½ (1 + erf(x/√2)) + x φ(x)            Φ̄(x) + |x| φ(x)
    gelu_tanh    ½ x (1 + tanh u)                      |x| σ̄(2u)
    gelu_tanh'   ½ (1 + tanh u) + ½ x (1 - tanh² u) u'  σ̄(2u) + |x| u'
    silu         x σ(x)                                |x| σ̄(x)
    silu'        σ(x) (1 + x (1 - σ(x)))               σ̄(x) (1 + |x|)
    elu, x < 0   α (e^x - 1)                           α (e^x + |e^x - 1|), 0 at x = 0
    elu', x < 0  α e^x, or elu(x) + α                  α (e^x + |e^x - 1|)
    softplus     max(x, 0) + log1p(e^{-|βx|}) / β      the result (every term >= 0)
    softplus'    σ(βx), or e^{βx - softplus(βx)}       σ̄(βx) (1 + |βx|)

SELU is λ times ELU with α_S (one more rounding). ELU's and SELU's branches meet at 0 and
softplus's at βx = threshold: `Arithmetic.select` takes each simulated Z's own branch and
carries the jump where the side is uncertain; at 0 the derivative follows the spec's
`elu_kink`.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.rounding import Arithmetic, Uncertain
from refimpl import smooth
from refimpl.erf import erfc
from refimpl.smooth import SmoothParams

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _sigma_bar(x: np.ndarray) -> np.ndarray:
    """max(σ(x), 1 - σ(x)) = σ(|x|), in [1/2, 1]."""
    return 1.0 / (1.0 + np.exp(-np.abs(x)))


def _gelu_tanh_u(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, u') of gelu_tanh at x (clipped to ±30, as refimpl.smooth)."""
    xc = np.clip(x, -30.0, 30.0)
    u = _SQRT_2_OVER_PI * (xc + smooth.GELU_TANH_C * xc**3)
    return u, _SQRT_2_OVER_PI * (1 + 3 * smooth.GELU_TANH_C * xc * xc)


def _elu_constants(name: str, p: SmoothParams) -> tuple[float, float]:
    """(α, λ) of f = λ elu(·; α): ELU's own α and 1, or SELU's α_S and λ."""
    return (p.alpha, 1.0) if name == "elu" else (smooth.SELU_ALPHA, smooth.SELU_SCALE)


def _elu_terms(x: np.ndarray, alpha: float) -> np.ndarray:
    below = np.minimum(x, 0.0)
    return alpha * (np.exp(below) + np.abs(np.expm1(below)))


def smooth_value(ar: Arithmetic, name: str, z: Uncertain, p: SmoothParams) -> Uncertain:
    """A = f(Z) for f one of refimpl.smooth.NAMES."""
    x = z.v
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name in ("elu", "selu"):
            alpha, scale = _elu_constants(name, p)
            # elu(0) = α (e^0 - 1) = 0 exactly in every implementation: no rounding there, so an
            # exact 0 (a kink case) reaches the next layer exact and its side stays certain
            size = np.where(x == 0, 0.0, scale * _elu_terms(x, alpha))
            below = ar.function("elu", z, lambda v: scale * smooth.elu(np.minimum(v, 0.0), alpha), size)
            above = z if name == "elu" else ar.scale(z, scale)
            return ar.select(z, above, below, below)
        if name == "softplus":
            log_form = ar.function(
                "softplus", z, lambda v: smooth.softplus(v, p.beta, None), smooth.softplus(x, p.beta, None)
            )
            if p.threshold is None:
                return log_form
            return ar.select(ar.scale(z, p.beta), z, log_form, log_form, threshold=p.threshold)
        if name == "gelu":
            size = np.abs(x) * 0.5 * erfc(-np.abs(x) / math.sqrt(2.0))
        elif name == "gelu_tanh":
            size = np.abs(x) * _sigma_bar(2 * _gelu_tanh_u(x)[0])
        else:  # silu
            size = np.abs(x) * _sigma_bar(x)
        return ar.function(name, z, lambda v: smooth.value(name, v, p), size)


def smooth_derivative(ar: Arithmetic, name: str, z: Uncertain, p: SmoothParams) -> Uncertain:
    """f'(Z) for f one of refimpl.smooth.NAMES; f'(0) of ELU and SELU by p.elu_kink."""
    x = z.v
    one = ar.exact(np.ones_like(x))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name in ("elu", "selu"):
            alpha, scale = _elu_constants(name, p)
            below = ar.function(
                "elu",
                z,
                lambda v: scale * alpha * np.exp(np.minimum(v, 0.0)),
                scale * _elu_terms(x, alpha),
            )
            above = one if name == "elu" else ar.rounded(np.full_like(x, scale))
            return ar.select(z, above, below, above if p.elu_kink == "positive" else below)
        if name == "softplus":
            beta = p.beta
            log_form = ar.function(
                "softplus",
                z,
                lambda v: smooth.softplus_prime(v, beta, None),
                _sigma_bar(beta * x) * (1 + np.abs(beta * x)),
            )
            if p.threshold is None:
                return log_form
            return ar.select(ar.scale(z, beta), one, log_form, log_form, threshold=p.threshold)
        if name == "gelu":
            phi = np.exp(-0.5 * np.minimum(x * x, 1600.0)) / math.sqrt(2 * math.pi)
            size = 0.5 * erfc(-np.abs(x) / math.sqrt(2.0)) + np.abs(x) * phi
        elif name == "gelu_tanh":
            u, du = _gelu_tanh_u(x)
            size = _sigma_bar(2 * u) + np.abs(x) * du
        else:  # silu
            size = _sigma_bar(x) * (1 + np.abs(x))
        return ar.function(name, z, lambda v: smooth.derivative(name, v, p), size)
