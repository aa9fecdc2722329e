"""The MLP's rounding bound: refimpl.mlp's forward and backward in conformance.rounding's arithmetic.

`mlp_rounding(case, cotangents)` answers the backend contract with rounding bounds instead
of values: for every output and gradient of mlp_reference, how far a correct
implementation in case.spec.dtype can be from the exact result (B_d of
conformance.tolerances, from conformance.rounding's arithmetic). The steps follow
refimpl.mlp (README, "An L-layer MLP"):

    Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ       one sum of D_{l-1} + 1 terms
    Aˡ = fˡ(Zˡ)              relu and leaky relu taken at each simulated Zˡ
    δˡ = fˡ'(Zˡ) ⊙ ∂L/∂Aˡ    tanh' = 1 - A², σ' = A (1 - A) from the rounded output, as torch
                             and JAX form them; relu's step at each simulated Zˡ, its jump
                             carried where Zˡ is within rounding of 0
    ∂L/∂Wˡ = δˡᵀ Aˡ⁻¹, ∂L/∂bˡ = Σ_n δˡ_n, δˡ Wˡ     sums of N, N and D_l terms
    L, ∂L/∂Y                 mse's mean; cross-entropy's max-shifted log-sum-exp

The activation and loss steps are shared with the other components built on them
(mlp_bn, rnn, trajectory).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.mlp.smooth_rounding import smooth_derivative, smooth_value
from conformance.rounding import Arithmetic, Uncertain
from refimpl.mlp import MLPSpec
from refimpl.smooth import NAMES, SmoothParams

Grads = dict[str, Uncertain]


# ---------------------------------------------------------------- activations


def activation(
    ar: Arithmetic, name: str, z: Uncertain, slope: float, smooth: SmoothParams | None = None
) -> Uncertain:
    """A = f(Z); the smooth activations with `smooth`'s parameters (smooth_rounding.py)."""
    if name in NAMES:
        return smooth_value(ar, name, z, smooth or SmoothParams())
    if name == "identity":
        return z
    if name == "tanh":
        return ar.tanh(z)
    if name == "sigmoid":
        return ar.sigmoid(z)
    below = ar.scale(z, slope) if name == "leaky_relu" else ar.exact(np.zeros_like(z.v))
    return ar.select(z, z, below, below)


def derivative(
    ar: Arithmetic,
    name: str,
    z: Uncertain,
    a: Uncertain,
    slope: float,
    kink: str,
    smooth: SmoothParams | None = None,
) -> Uncertain:
    """f'(Z): from the output A for tanh and sigmoid (1 - A², A (1 - A)), as torch and JAX
    form them; a step for relu and leaky relu, taken at each implementation's own Z; the
    smooth activations' at Z (smooth_rounding.py)."""
    if name in NAMES:
        return smooth_derivative(ar, name, z, smooth or SmoothParams())
    one = ar.exact(np.ones_like(z.v))
    if name == "identity":
        return one
    if name == "tanh":
        return ar.sub(one, ar.mul(a, a))
    if name == "sigmoid":
        return ar.mul(a, ar.sub(one, a))
    negative = ar.rounded(np.full_like(z.v, slope)) if name == "leaky_relu" else ar.exact(np.zeros_like(z.v))
    at_zero = one if name == "leaky_relu" and kink == "one" else negative
    return ar.select(z, one, negative, at_zero)


# ---------------------------------------------------------------- losses


def loss_forward(ar: Arithmetic, loss: str, Y: Uncertain, targets: np.ndarray) -> tuple[Uncertain, Any]:
    """(L, what loss_backward needs): mse over all elements, or cross-entropy over rows."""
    if loss == "mse":
        residual = ar.sub(Y, ar.rounded(targets))
        return ar.mean(ar.mul(residual, residual)), residual
    N = Y.v.shape[0]
    # in any implementation x - max x <= 0, Σ exp >= 1/2 (its largest term is exp(0) = 1, the
    # rest >= 0, each rounding by at most u <= 2^-8) and log p <= 0: ar.within holds the samples there
    shifted = ar.within(ar.sub(Y, ar.max(Y, axis=1, keepdims=True)), high=0.0)
    lse = ar.log(ar.within(ar.sum(ar.exp(shifted), axis=1), low=0.5))
    logp = ar.within(ar.sub(shifted, ar.reshape(lse, (N, 1))), high=0.0)
    picked = ar.take(logp, (np.arange(N), targets))
    return ar.neg(ar.mean(picked)), (logp, targets)


def loss_backward(ar: Arithmetic, loss: str, cache: Any, dloss: float) -> Uncertain:
    """∂L/∂Y times the cotangent dloss: 2 (Y - T) dloss / (N C), or (softmax - onehot) dloss / N."""
    if loss == "mse":
        residual: Uncertain = cache
        return ar.scale(residual, 2.0 * dloss / residual.v.size, roundings=3)
    logp, labels = cache
    N = logp.v.shape[0]
    probs = ar.exp(logp)
    onehot = np.zeros_like(probs.v)
    onehot[np.arange(N), labels] = 1.0
    return ar.scale(ar.sub(probs, ar.exact(onehot)), dloss / N, roundings=3)


def upstream(ar: Arithmetic, loss: str, cache: Any, cotangents: Arrays, shape: tuple[int, ...]) -> Uncertain:
    """∂/∂Y of Σ <cotangent, output>: the loss term (cotangent "loss") plus the cotangent "Y"."""
    dY = ar.exact(np.zeros(shape))
    if float(cotangents.get("loss", 0.0)) != 0.0:
        dY = loss_backward(ar, loss, cache, float(cotangents["loss"]))
    if "Y" in cotangents:
        dY = ar.add(dY, ar.rounded(cotangents["Y"]))
    return dY


# ---------------------------------------------------------------- linear layers


Triple = tuple[Uncertain, Uncertain, Uncertain]


def linear_backward(ar: Arithmetic, delta: Uncertain, A: Uncertain, W: Uncertain) -> Triple:
    """(δ W, δᵀ A, Σ_n δ_n): the input, weight and bias gradients of Z = A Wᵀ + b."""
    return ar.matmul(delta, W), ar.matmul(ar.transpose(delta), A), ar.sum(delta, axis=0)


class Normalization(NamedTuple):
    """What a batch-normalized network adds to a layer l in bn_layers: Zˡ -> (Ẑˡ, cache), and
    (δ at Ẑˡ, cache) -> (δˡ, ∂L/∂γˡ, ∂L/∂βˡ) (components/mlp_bn/rounding.py)."""

    forward: Callable[[int, Uncertain], tuple[Uncertain, Any]]
    backward: Callable[[Uncertain, Any], Triple]


def network_passes(
    ar: Arithmetic,
    spec: MLPSpec,
    params: Grads,
    X: Uncertain,
    targets: np.ndarray,
    cotangents: Arrays | None,
    normalization: Normalization | None = None,
) -> tuple[Uncertain, Uncertain, Grads]:
    """(Y, loss, grads of Σ <cot, out> with δˡ as "Zˡ"), as Uncertain values; the layers in
    spec.bn_layers() normalized by `normalization`."""
    A, layers = X, []
    for l in range(1, spec.depth + 1):
        bias = params[f"b{l}"] if f"b{l}" in params else ar.exact(np.zeros(spec.sizes[l]))
        Z = ar.affine(A, params[f"W{l}"], bias)
        pre, cache = normalization.forward(l, Z) if normalization and l in spec.bn_layers() else (Z, None)
        layers.append((A, pre, cache))
        A = activation(ar, spec.activation(l), pre, spec.slope, spec.smooth_params())
    Y = A
    loss, loss_cache = loss_forward(ar, spec.loss, Y, targets)
    grads: Grads = {}
    if cotangents:
        dA = upstream(ar, spec.loss, loss_cache, cotangents, Y.v.shape)
        for l in range(spec.depth, 0, -1):
            A_prev, pre, cache = layers[l - 1]
            A_l = layers[l][0] if l < spec.depth else Y
            f_prime = derivative(
                ar, spec.activation(l), pre, A_l, spec.slope, spec.leaky_kink, spec.smooth_params()
            )
            delta = ar.mul(f_prime, dA)
            if cache is not None and normalization is not None:
                delta, grads[f"gamma{l}"], grads[f"beta{l}"] = normalization.backward(delta, cache)
            grads[f"Z{l}"] = delta
            dA, grads[f"W{l}"], db = linear_backward(ar, delta, A_prev, params[f"W{l}"])
            if f"b{l}" in params:
                grads[f"b{l}"] = db
        grads["X"] = dA
    return Y, loss, grads


def mlp_rounding(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """Rounding bounds for mlp_reference's outputs {"Y", "loss"} and grads {"W1", ..., "X"}."""
    spec: MLPSpec = case.spec
    ar = Arithmetic(spec.dtype)
    params = {k: ar.rounded(v) for k, v in case.params.items()}
    Y, loss, grads = network_passes(
        ar, spec, params, ar.rounded(case.inputs["X"]), case.inputs["targets"], cotangents
    )
    bounds = {k: ar.bound(g) for k, g in grads.items() if not k.startswith("Z")}
    return Outcome({"Y": ar.bound(Y), "loss": ar.bound(loss)}, bounds, {})
