"""Element-wise activations f and their derivatives f'.

The backward pass of an activation is δ = f'(Z) ⊙ ∂L/∂A (README, "MLP").

Conventions, named because frameworks differ at the non-differentiable point:

* relu'(0) = 0. torch (`threshold_backward`) and `jax.nn.relu` (a custom JVP)
  agree; `jnp.maximum(x, 0)` would give 1/2, which is why adapters must use
  `jax.nn.relu`.
* leaky_relu'(0) is the `leaky_kink` parameter:
  - "slope": the negative side's slope (torch: `x > 0 ? g : g * slope`),
  - "one":   the positive side's 1 (jax: `where(x >= 0, x, slope * x)`).
  The default is "slope", torch's value.

GELU (exact and tanh approximation), ELU, SELU, SiLU and softplus, their derivatives, the
ELU/SELU kink at 0 (`elu_kink`) and softplus's threshold are refimpl.smooth.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import smooth
from refimpl._validate import require_array, require_choice, require_instance, require_real

Array = NDArray[Any]

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", *smooth.NAMES)
LEAKY_KINKS = ("slope", "one")
ELU_KINKS = smooth.ELU_KINKS
DEFAULT_SLOPE = 0.01  # torch's F.leaky_relu and jax.nn.leaky_relu both default to 0.01
DEFAULT_LEAKY_KINK = "slope"  # torch's convention
DEFAULTS = smooth.SmoothParams()  # elu's α = 1, elu'(0) on the x <= 0 side, softplus β = 1, threshold 20
# The spec fields (MLPSpec) of the activations that read them; other activations ignore them.
PARAMETERS = {
    "elu": ("elu_alpha", "elu_kink"),
    "selu": ("elu_kink",),
    "softplus": ("softplus_beta", "softplus_threshold"),
}


class ActivationCache(NamedTuple):
    """The name and either the input Z (piece-wise linear f) or the output A (smooth f).

    sigmoid' = A (1 - A) and tanh' = 1 - A², so smooth activations keep A and
    recompute nothing; the piece-wise linear ones only need the sign of Z.
    """

    name: str
    kept: Array  # Z for relu/leaky_relu/identity and refimpl.smooth's, A for sigmoid/tanh
    slope: float
    leaky_kink: str
    smooth: smooth.SmoothParams = DEFAULTS  # α, elu_kink, β, threshold (refimpl.smooth)


def sigmoid(Z: Array) -> Array:
    """σ(z) = 1 / (1 + e^{-z}), written as (1 + tanh(z/2)) / 2: no overflow for any z."""
    require_array("Z", Z, finite=False)
    return 0.5 * (1.0 + np.tanh(0.5 * Z))


def smooth_params(
    alpha: float, elu_kink: str, softplus_beta: float, softplus_threshold: float | None
) -> smooth.SmoothParams:
    """refimpl.smooth's parameters, validated: α >= 0, a known kink, β > 0, a real threshold or None."""
    alpha = require_real("elu_alpha", alpha, minimum=0.0)
    require_choice("elu_kink", elu_kink, ELU_KINKS)
    if require_real("softplus_beta", softplus_beta) <= 0.0:
        raise ValueError(f"softplus_beta: expected a number > 0, received {softplus_beta}")
    if softplus_threshold is not None:
        softplus_threshold = require_real("softplus_threshold", softplus_threshold)
    return smooth.SmoothParams(alpha, elu_kink, float(softplus_beta), softplus_threshold)


def activation_forward(
    name: str,
    Z: Array,
    *,
    slope: float = DEFAULT_SLOPE,
    leaky_kink: str = DEFAULT_LEAKY_KINK,
    params: smooth.SmoothParams = DEFAULTS,
) -> tuple[Array, ActivationCache]:
    """A = f(Z) element-wise, for f one of ACTIVATIONS; `params` (smooth_params) for refimpl.smooth's."""
    require_choice("activation", name, ACTIVATIONS)
    require_choice("leaky_kink", leaky_kink, LEAKY_KINKS)
    slope = require_real("slope", slope, minimum=0.0, maximum=1.0)
    require_instance("params", params, smooth.SmoothParams, "refimpl.smooth.SmoothParams (smooth_params)")
    params = smooth_params(*params)
    require_array("Z", Z, finite=False)
    if name in smooth.NAMES:
        return smooth.value(name, Z, params), ActivationCache(name, Z, slope, leaky_kink, params)
    if name == "identity":
        return Z, ActivationCache(name, Z, slope, leaky_kink)
    if name == "sigmoid":
        A = sigmoid(Z)
        return A, ActivationCache(name, A, slope, leaky_kink)
    if name == "tanh":
        A = np.tanh(Z)
        return A, ActivationCache(name, A, slope, leaky_kink)
    if name == "relu":
        return np.maximum(Z, 0.0), ActivationCache(name, Z, slope, leaky_kink)
    A = np.where(Z > 0, Z, Z * Z.dtype.type(slope))
    return A, ActivationCache(name, Z, slope, leaky_kink)


def activation_derivative(cache: ActivationCache) -> Array:
    """f'(Z), with the kink conventions above at Z = 0."""
    name, kept, slope, leaky_kink, params = require_instance("cache", cache, ActivationCache)
    require_choice("cache.name", name, ACTIVATIONS)
    require_choice("cache.leaky_kink", leaky_kink, LEAKY_KINKS)
    if name in smooth.NAMES:
        return smooth.derivative(name, kept, smooth_params(*params))
    one = kept.dtype.type(1)
    if name == "identity":
        return np.ones_like(kept)
    if name == "sigmoid":
        return kept * (one - kept)
    if name == "tanh":
        return one - kept * kept
    if name == "relu":
        return (kept > 0).astype(kept.dtype)  # relu'(0) = 0
    at_zero = kept.dtype.type(slope if leaky_kink == "slope" else 1.0)
    return np.where(kept > 0, one, np.where(kept < 0, kept.dtype.type(slope), at_zero))


def activation_backward(dA: Array, cache: ActivationCache) -> Array:
    """δ = f'(Z) ⊙ ∂L/∂A."""
    require_instance("cache", cache, ActivationCache)
    require_array("dA", dA, shape=cache.kept.shape, dtype=cache.kept.dtype.name)
    delta = activation_derivative(cache)  # a new array, so the product can be taken in place
    delta *= dA
    return delta
