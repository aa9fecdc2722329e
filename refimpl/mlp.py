"""An L-layer perceptron: forward, backpropagation, loss, gradients.

Forward (README, "MLP"), for l = 1..L, with A⁰ = X:

    Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ          linear_forward
    Aˡ = fˡ(Zˡ)                  activation_forward (f = hidden activation, f^L = output)
    Y  = Aᴸ,  L = loss(Y, T)

Backward, with δˡ = ∂L/∂Zˡ:

    δᴸ     = fᴸ'(Zᴸ) ⊙ ∂L/∂Y    activation_backward
    ∂L/∂Wˡ = δˡᵀ Aˡ⁻¹           linear_backward
    ∂L/∂bˡ = Σ_n δˡ_n           linear_backward
    δˡ⁻¹   = fˡ⁻¹'(Zˡ⁻¹) ⊙ (δˡ Wˡ)
    ∂L/∂X  = δ¹ W¹

Parameters are a flat dict: "W1", "b1", ..., "WL", "bL" (Wˡ of shape
(sizes[l], sizes[l-1])); gradients use the same keys plus "X".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import activations, losses
from refimpl._checks import (
    FLOAT_DTYPES,
    describe,
    require_array,
    require_choice,
    require_int,
    require_real,
    require_same_keys,
)
from refimpl.linear import LinearCache, linear_backward, linear_forward

Array = NDArray[Any]


@dataclass(frozen=True)
class MLPSpec:
    """Hyper-parameters of an MLP; serializes to JSON so a failing case can be replayed."""

    sizes: tuple[int, ...]  # (D_0, D_1, ..., D_L): input width, hidden widths, output width
    hidden_activation: str = "tanh"  # f for layers 1..L-1
    output_activation: str = "identity"  # f^L; "identity" gives logits for cross-entropy
    loss: str = "mse"  # "mse" (mean over all elements) or "cross_entropy" (mean over rows)
    slope: float = activations.DEFAULT_SLOPE  # leaky ReLU's negative slope
    leaky_kink: str = activations.DEFAULT_LEAKY_KINK  # leaky_relu'(0): "slope" or "one"
    dtype: str = "float64"  # "float32" or "float64", for parameters and batches alike

    def __post_init__(self) -> None:
        if not isinstance(self.sizes, tuple | list):
            raise TypeError(f"sizes: expected a tuple of integers, received {describe(self.sizes)}")
        if len(self.sizes) < 2:
            raise ValueError(
                f"sizes: expected at least 2 entries (input, output), received {self.sizes}"
            )
        sizes = tuple(require_int(f"sizes[{i}]", n) for i, n in enumerate(self.sizes))
        object.__setattr__(self, "sizes", sizes)
        require_choice("hidden_activation", self.hidden_activation, activations.ACTIVATIONS)
        require_choice("output_activation", self.output_activation, activations.ACTIVATIONS)
        require_choice("loss", self.loss, losses.LOSSES)
        require_real("slope", self.slope, minimum=0.0, maximum=1.0)
        require_choice("leaky_kink", self.leaky_kink, activations.LEAKY_KINKS)
        require_choice("dtype", self.dtype, FLOAT_DTYPES)

    @property
    def depth(self) -> int:
        """L, the number of linear layers."""
        return len(self.sizes) - 1

    def activation(self, layer: int) -> str:
        """The activation of layer l (1-based)."""
        return self.output_activation if layer == self.depth else self.hidden_activation

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """{"W1": (D_1, D_0), "b1": (D_1,), ...} in layer order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for l in range(1, self.depth + 1):
            shapes[f"W{l}"] = (self.sizes[l], self.sizes[l - 1])
            shapes[f"b{l}"] = (self.sizes[l],)
        return shapes

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MLPSpec:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"spec: expected a JSON object, received {describe(data)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"spec: expected fields among {sorted(known)}, received {unknown}")
        if isinstance(data.get("sizes"), list):
            data["sizes"] = tuple(data["sizes"])
        return cls(**data)


class LayerCache(NamedTuple):
    linear: LinearCache
    activation: activations.ActivationCache


class MLPCache(NamedTuple):
    layers: tuple[LayerCache, ...]  # one per layer, 1..L


def init_params(spec: MLPSpec, rng: np.random.Generator) -> dict[str, Array]:
    """Wˡ, bˡ ~ U(-1/√D_{l-1}, 1/√D_{l-1}), torch's `nn.Linear` initialization."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, received {describe(rng)}")
    params: dict[str, Array] = {}
    for name, shape in spec.param_shapes().items():
        bound = 1.0 / np.sqrt(spec.sizes[int(name[1:]) - 1])
        params[name] = rng.uniform(-bound, bound, size=shape).astype(spec.dtype)
    return params


def check_params(spec: MLPSpec, params: dict[str, Array]) -> None:
    """Keys, shapes, dtype and finiteness of a parameter dict."""
    shapes = spec.param_shapes()
    require_same_keys("params", params, shapes)
    for name, shape in shapes.items():
        require_array(f"params[{name!r}]", params[name], shape=shape, dtype=spec.dtype)


def mlp_forward(spec: MLPSpec, params: dict[str, Array], X: Array) -> tuple[Array, MLPCache]:
    """Y = Aᴸ for a batch X of shape (N, D_0); Y has shape (N, D_L)."""
    check_params(spec, params)
    require_array("X", X, shape=(None, spec.sizes[0]), dtype=spec.dtype)
    A = X
    layers = []
    for l in range(1, spec.depth + 1):
        Z, lin = linear_forward(A, params[f"W{l}"], params[f"b{l}"])  # N, D_l
        A, act = activations.activation_forward(
            spec.activation(l), Z, slope=spec.slope, leaky_kink=spec.leaky_kink
        )
        layers.append(LayerCache(lin, act))
    return A, MLPCache(tuple(layers))


def mlp_backward(spec: MLPSpec, dY: Array, cache: MLPCache) -> dict[str, Array]:
    """∂L/∂Wˡ, ∂L/∂bˡ for every layer and ∂L/∂X, given the upstream gradient ∂L/∂Y."""
    grads: dict[str, Array] = {}
    dA = dY
    for l in range(spec.depth, 0, -1):
        lin, act = cache.layers[l - 1]
        delta = activations.activation_backward(dA, act)  # δˡ, N, D_l
        dA, grads[f"W{l}"], grads[f"b{l}"] = linear_backward(delta, lin)
    grads["X"] = dA
    return grads


def loss_forward(spec: MLPSpec, Y: Array, targets: Array) -> tuple[float, Any]:
    """The spec's loss on the network output Y."""
    if spec.loss == "mse":
        return losses.mse_forward(Y, targets)
    return losses.cross_entropy_forward(Y, targets)


def loss_backward(spec: MLPSpec, cache: Any, dloss: float = 1.0) -> Array:
    """∂L/∂Y for the spec's loss."""
    if spec.loss == "mse":
        return losses.mse_backward(dloss, cache)
    return losses.cross_entropy_backward(dloss, cache)


def loss_and_grads(
    spec: MLPSpec, params: dict[str, Array], X: Array, targets: Array
) -> tuple[float, dict[str, Array]]:
    """The loss and its gradient for every parameter and for the input X."""
    Y, cache = mlp_forward(spec, params, X)
    loss, lcache = loss_forward(spec, Y, targets)
    return loss, mlp_backward(spec, loss_backward(spec, lcache), cache)
