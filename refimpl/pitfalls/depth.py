"""Vanishing and exploding gradients: ‖∂L/∂Wˡ‖ for every layer of a deep MLP at initialization.

Backward through one hidden layer (README, "MLP") is δˡ⁻¹ = fˡ⁻¹'(Zˡ⁻¹) ⊙ (δˡ Wˡ). With Wˡ
drawn i.i.d. with variance g²/n (n = the layer's fan-in, g the *gain*) and δˡ independent
of Wˡ, E‖δˡ Wˡ‖² = g² ‖δˡ‖², so each layer multiplies ‖δ‖² by about

    χ = g² · E[f'(z)²]          relu: g²/2   leaky relu: g² (1 + a²)/2
                                tanh: <= g² (1 near z = 0)   sigmoid: <= g²/16 (σ' <= 1/4)

and over L layers the first layer's gradient is χ^{(L-1)/2} times the last one's: it
vanishes for χ < 1 and explodes for χ > 1. torch's `nn.Linear` draws U(±1/√n), variance
1/(3n), a gain of 1/√3: χ = 1/6 for relu, and the gradient shrinks about 2.4x per layer.
He's gain √2 gives χ = 1 for relu; no gain rescues sigmoid, whose σ' <= 1/4 and outputs
of mean ≈ 1/2 push later layers into saturation. Sigmoid's bound is strict for any
weights: ‖δˡ⁻¹‖ <= ‖δˡ Wˡ‖ max σ' <= ‖δˡ‖ ‖Wˡ‖₂ / 4 (‖·‖₂ the spectral norm).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl._validate import require_choice, require_int, require_real
from refimpl.activations import ACTIVATIONS
from refimpl.mlp import (
    MLPSpec,
    loss_and_grads,
    loss_backward,
    loss_forward,
    mlp_backward_deltas,
    mlp_forward,
)

Array = NDArray[Any]

TORCH_GAIN = 1.0 / np.sqrt(3.0)  # nn.Linear's U(±1/√n): variance 1/(3n)
HE_GAIN = float(np.sqrt(2.0))  # variance 2/n: χ = 1 for relu
LECUN_GAIN = 1.0  # variance 1/n: χ ≈ 1 for tanh near 0


class DepthCase(NamedTuple):
    """A deep MLP at initialization: spec, float64 parameters, batch and regression targets."""

    spec: MLPSpec
    params: dict[str, Array]
    X: Array  # (N, width), N(0, 1)
    targets: Array  # (N, width), N(0, 1)


def depth_case(
    activation: str,
    depth: int,
    *,
    gain: float = TORCH_GAIN,
    width: int = 64,
    batch: int = 64,
    seed: int = 0,
) -> DepthCase:
    """`depth` linear layers of `width` units, `activation` in every hidden layer, an identity
    output and mean squared error; Wˡ ~ U(±g √(3/n)) (variance g²/n), bˡ = 0."""
    require_choice("activation", activation, ACTIVATIONS)
    depth, width = require_int("depth", depth), require_int("width", width)
    batch = require_int("batch", batch)
    gain = require_real("gain", gain, minimum=0.0)
    spec = MLPSpec((width,) * (depth + 1), activation, "identity", "mse")
    rng = np.random.default_rng(seed)
    bound = gain * np.sqrt(3.0 / width)
    params: dict[str, Array] = {}
    for l in range(1, depth + 1):
        params[f"W{l}"] = rng.uniform(-bound, bound, size=(width, width))
        params[f"b{l}"] = np.zeros(width)
    X = rng.standard_normal((batch, width))
    return DepthCase(spec, params, X, rng.standard_normal((batch, width)))


def bias_grad_norms(grads: dict[str, Array], depth: int) -> Array:
    """(‖∂L/∂b¹‖, ..., ‖∂L/∂bᴸ‖), shape (L,): ∂L/∂bˡ = Σ_n δˡ_n, the error signal of layer l
    summed over the batch, and a gradient every implementation reports."""
    return np.array([np.linalg.norm(grads[f"b{l}"]) for l in range(1, depth + 1)])


def gradient_profile(case: DepthCase) -> Array:
    """‖∂L/∂bˡ‖ for l = 1..L, from the reference's backward pass."""
    _, grads = loss_and_grads(case.spec, case.params, case.X, case.targets)
    return bias_grad_norms(grads, case.spec.depth)


def delta_profile(case: DepthCase) -> Array:
    """‖δˡ‖_F = ‖∂L/∂Zˡ‖_F for l = 1..L, every example's error signal."""
    Y, cache = mlp_forward(case.spec, case.params, case.X)
    _, lcache = loss_forward(case.spec, Y, case.targets)
    _, deltas = mlp_backward_deltas(case.spec, loss_backward(case.spec, lcache), cache)
    return np.array([np.linalg.norm(delta) for delta in deltas])


def chi(activation: str, gain: float, slope: float = 0.01) -> float:
    """The per-layer factor of ‖δ‖² in the linear regime (module docstring); sigmoid's is its bound."""
    factors = {
        "relu": 0.5,
        "leaky_relu": (1.0 + slope**2) / 2.0,
        "tanh": 1.0,
        "sigmoid": 1.0 / 16.0,
        "identity": 1.0,
    }
    return gain**2 * factors[require_choice("activation", activation, ACTIVATIONS)]


def sigmoid_bound(case: DepthCase) -> Array:
    """∏_{k=l+1}^{L} ‖Wᵏ‖₂ / 4 for l = 1..L: the strict bound on ‖δˡ‖_F / ‖δᴸ‖_F of a sigmoid
    stack, since ‖σ'(Z) ⊙ (δ W)‖_F <= max σ' ‖δ W‖_F <= ‖δ‖_F ‖W‖₂ / 4."""
    L = case.spec.depth
    factors = [np.linalg.norm(case.params[f"W{k}"], 2) / 4.0 for k in range(2, L + 1)]
    return np.array([np.prod(factors[l - 1 :]) for l in range(1, L + 1)])


DEPTH = 12  # the stacks of docs/pitfalls.md
GAINS = {"torch": TORCH_GAIN, "lecun": LECUN_GAIN, "he": HE_GAIN, "2he": 2.0 * HE_GAIN}


def first_to_last(activation: str, gain: float, depth: int = DEPTH) -> float:
    """‖∂L/∂b¹‖ / ‖∂L/∂bᴸ‖ at initialization: < 1 vanishing, > 1 exploding."""
    norms = gradient_profile(depth_case(activation, depth, gain=gain))
    return float(norms[0] / norms[-1])
