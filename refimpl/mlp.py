"""An L-layer perceptron, optionally batch-normalized: forward, backpropagation, loss, gradients.

Forward (README, "MLP"), for l = 1..L, with A⁰ = X:

    Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ          linear_forward
    Aˡ = fˡ(Zˡ)                  activation_forward (f = hidden activation, f^L = output)
    Y  = Aᴸ,  L = loss(Y, T)

With batch norm (spec.batchnorm; README, "Batch normalization"), each hidden layer l < L
normalizes Zˡ before its activation, Linear -> BN -> activation:

    Ẑˡ = γˡ ⊙ (Zˡ - μˡ)/√(σˡ² + ε) + βˡ    batchnorm_forward: μ, σ² of the batch (training)
    Aˡ = fˡ(Ẑˡ)                           or the running statistics (eval)

Backward, with δˡ = ∂L/∂Zˡ:

    δᴸ     = fᴸ'(Zᴸ) ⊙ ∂L/∂Y    activation_backward
    ∂L/∂Wˡ = δˡᵀ Aˡ⁻¹           linear_backward
    ∂L/∂bˡ = Σ_n δˡ_n           linear_backward
    δˡ⁻¹   = fˡ⁻¹'(Zˡ⁻¹) ⊙ (δˡ Wˡ)
    ∂L/∂X  = δ¹ W¹

With batch norm, fˡ'(Ẑˡ) ⊙ (δˡ⁺¹ Wˡ⁺¹) is ∂L/∂Ẑˡ, and batchnorm_backward turns it into
∂L/∂γˡ, ∂L/∂βˡ and δˡ (terms [1] [2] [3] of refimpl.batchnorm). A layer followed by batch
norm has no bias, Zˡ = Aˡ⁻¹ Wˡᵀ (torch's nn.Linear(bias=False), flax's Dense(use_bias=False)):
βˡ takes its place, and in training mode the batch mean would absorb it, its gradient
Σ_n δˡ_n being 0.

Parameters are a flat dict: "W1", "b1", ..., "WL", "bL" (Wˡ of shape (sizes[l], sizes[l-1])),
with batch norm "gamma1", "beta1", ... instead of "b1", ... for the layers l < L, each
(sizes[l],); gradients use the same keys plus "X". State, with batch norm only:
"running_mean1", "running_var1", ..., (sizes[l],), returned anew by mlp_forward_state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import activations, losses
from refimpl import batchnorm as bn
from refimpl._checks import (
    FLOAT_DTYPES,
    describe,
    json_fields,
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
    # Batch norm after every hidden linear layer; the other bn_ fields are its conventions
    # (refimpl.batchnorm.BatchNormConvention; defaults: torch's, flax's in the comments).
    batchnorm: bool = False
    bn_momentum: float = bn.TORCH_CONVENTION.momentum  # m: 0.1 (torch), 0.99 (flax)
    bn_momentum_convention: str = "torch"  # r ← (1-m) r + m b ("torch") or m r + (1-m) b ("flax")
    bn_running_var: str = "unbiased"  # running-variance estimator: "unbiased" (torch), "biased" (flax)
    bn_eps: float = bn.DEFAULT_EPS  # ε in 1/√(σ² + ε): 1e-5 in both
    bn_single_example: str = "raise"  # training with N = 1: "raise" (torch) or "allow" (flax)

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
        if not isinstance(self.batchnorm, bool):
            raise TypeError(f"batchnorm: expected a bool, received {describe(self.batchnorm)}")
        require_real("bn_momentum", self.bn_momentum, minimum=0.0, maximum=1.0)
        require_choice("bn_momentum_convention", self.bn_momentum_convention,
                       bn.MOMENTUM_CONVENTIONS)
        require_choice("bn_running_var", self.bn_running_var, bn.VAR_ESTIMATORS)
        if require_real("bn_eps", self.bn_eps) <= 0.0:
            raise ValueError(f"bn_eps: expected a number > 0, received {self.bn_eps}")
        require_choice("bn_single_example", self.bn_single_example, bn.SINGLE_EXAMPLE)

    @property
    def depth(self) -> int:
        """L, the number of linear layers."""
        return len(self.sizes) - 1

    def activation(self, layer: int) -> str:
        """The activation of layer l (1-based)."""
        return self.output_activation if layer == self.depth else self.hidden_activation

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """{"W1": (D_1, D_0), "b1": (D_1,), ...} in layer order; with batch norm
        {"W1", "gamma1", "beta1", ...} for the layers before it (no bias)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for l in range(1, self.depth + 1):
            shapes[f"W{l}"] = (self.sizes[l], self.sizes[l - 1])
            if l in self.bn_layers():
                shapes[f"gamma{l}"] = shapes[f"beta{l}"] = (self.sizes[l],)
            else:
                shapes[f"b{l}"] = (self.sizes[l],)
        return shapes

    def bn_layers(self) -> range:
        """The layers l followed by batch norm: 1..L-1 with spec.batchnorm, else none."""
        return range(1, self.depth if self.batchnorm else 1)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """{"running_mean1": (D_1,), "running_var1": (D_1,), ...}: empty without batch norm."""
        shapes: dict[str, tuple[int, ...]] = {}
        for l in self.bn_layers():
            shapes[f"running_mean{l}"] = shapes[f"running_var{l}"] = (self.sizes[l],)
        return shapes

    def bn_convention(self) -> bn.BatchNormConvention:
        return bn.BatchNormConvention(self.bn_momentum, self.bn_momentum_convention,
                                      self.bn_running_var, self.bn_eps, self.bn_single_example)

    def to_json(self) -> str:
        """The fields as JSON; the bn_ fields only with batchnorm on, so a spec without
        batch norm reads as it did before they existed (stored reproducers, golden sets)."""
        data = asdict(self)
        if not self.batchnorm:
            data = {k: v for k, v in data.items() if k != "batchnorm" and not k.startswith("bn_")}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MLPSpec:
        data = json_fields(cls, text)
        if isinstance(data.get("sizes"), list):
            data["sizes"] = tuple(data["sizes"])
        return cls(**data)


class LayerCache(NamedTuple):
    linear: LinearCache
    activation: activations.ActivationCache
    batchnorm: bn.BatchNormCache | bn.BatchNormEvalCache | None = None  # layers in bn_layers()


class MLPCache(NamedTuple):
    layers: tuple[LayerCache, ...]  # one per layer, 1..L


def init_params(spec: MLPSpec, rng: np.random.Generator) -> dict[str, Array]:
    """Wˡ, bˡ ~ U(-1/√D_{l-1}, 1/√D_{l-1}), torch's `nn.Linear` initialization; γˡ = 1,
    βˡ = 0, as nn.BatchNorm1d and flax's BatchNorm (no draws: W and b are as without them)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, received {describe(rng)}")
    params: dict[str, Array] = {}
    for name, shape in spec.param_shapes().items():
        if name.startswith(bn.PARAM_KEYS):
            params[name] = (np.ones if name.startswith("gamma") else np.zeros)(shape, spec.dtype)
            continue
        bound = 1.0 / np.sqrt(spec.sizes[int(name[1:]) - 1])
        params[name] = rng.uniform(-bound, bound, size=shape).astype(spec.dtype)
    return params


def check_params(spec: MLPSpec, params: dict[str, Array]) -> None:
    """Keys, shapes, dtype and finiteness of a parameter dict."""
    shapes = spec.param_shapes()
    require_same_keys("params", params, shapes)
    for name, shape in shapes.items():
        require_array(f"params[{name!r}]", params[name], shape=shape, dtype=spec.dtype)


def init_state(spec: MLPSpec) -> dict[str, Array]:
    """Running means 0 and variances 1, as both frameworks start; {} without batch norm."""
    return {k: (np.zeros if k.startswith("running_mean") else np.ones)(shape, spec.dtype)
            for k, shape in spec.state_shapes().items()}


def check_state(spec: MLPSpec, state: dict[str, Array]) -> None:
    """Keys, shapes and dtype of a state dict ({} without batch norm)."""
    if not isinstance(state, dict):
        raise TypeError(f"state: expected a dict of arrays, received {describe(state)}")
    shapes = spec.state_shapes()
    require_same_keys("state", state, shapes)
    for name, shape in shapes.items():
        require_array(f"state[{name!r}]", state[name], shape=shape, dtype=spec.dtype)


def mlp_forward(spec: MLPSpec, params: dict[str, Array], X: Array) -> tuple[Array, MLPCache]:
    """Y = Aᴸ for a batch X of shape (N, D_0); Y has shape (N, D_L). With batch norm this is
    training mode, whose output does not depend on the running statistics (their update is
    dropped: mlp_forward_state returns it)."""
    Y, _, cache = mlp_forward_state(spec, params, X, init_state(spec), train=True)
    return Y, cache


def mlp_forward_state(
    spec: MLPSpec, params: dict[str, Array], X: Array, state: dict[str, Array], *, train: bool
) -> tuple[Array, dict[str, Array], MLPCache]:
    """(Y, new state, cache). Training mode normalizes with the batch's statistics and
    returns the running ones updated under the spec's convention; eval mode normalizes with
    them and returns them unchanged. Without batch norm, `train` changes nothing."""
    if not isinstance(train, bool):
        raise TypeError(f"train: expected a bool, received {describe(train)}")
    check_params(spec, params)
    require_array("X", X, shape=(None, spec.sizes[0]), dtype=spec.dtype)
    if X.shape[0] < 1:
        raise ValueError(f"X: expected at least one row (N >= 1), received shape {X.shape}")
    check_state(spec, state)
    normalized = spec.bn_layers()
    convention = spec.bn_convention() if spec.batchnorm else bn.TORCH_CONVENTION
    A, new_state = X, {}
    layers = []
    for l in range(1, spec.depth + 1):
        b = params[f"b{l}"] if l not in normalized else np.zeros(spec.sizes[l], spec.dtype)
        Z, lin = linear_forward(A, params[f"W{l}"], b)  # N, D_l
        norm = None
        if l in normalized:  # Zˡ -> Ẑˡ = γˡ ⊙ x̂ˡ + βˡ, N, D_l
            stats = {"running_mean": state[f"running_mean{l}"], "running_var": state[f"running_var{l}"]}
            Z, stats, norm = bn.batchnorm_forward(
                Z, {"gamma": params[f"gamma{l}"], "beta": params[f"beta{l}"]}, stats,
                train=train, convention=convention)
            new_state[f"running_mean{l}"], new_state[f"running_var{l}"] = (
                stats["running_mean"], stats["running_var"])
        A, act = activations.activation_forward(
            spec.activation(l), Z, slope=spec.slope, leaky_kink=spec.leaky_kink
        )
        layers.append(LayerCache(lin, act, norm))
    return A, new_state, MLPCache(tuple(layers))


def mlp_backward(spec: MLPSpec, dY: Array, cache: MLPCache) -> dict[str, Array]:
    """∂L/∂Wˡ, ∂L/∂bˡ (or ∂L/∂γˡ, ∂L/∂βˡ) for every layer and ∂L/∂X, given the upstream ∂L/∂Y."""
    return mlp_backward_deltas(spec, dY, cache)[0]


def mlp_backward_deltas(
    spec: MLPSpec, dY: Array, cache: MLPCache
) -> tuple[dict[str, Array], tuple[Array, ...]]:
    """The gradients of mlp_backward, and δ¹, ..., δᴸ (δˡ = ∂L/∂Zˡ, (N, D_l)): the error at
    each linear output, with batch norm the gradient of its input."""
    if not isinstance(cache, MLPCache) or len(cache.layers) != spec.depth:
        received = len(cache.layers) if isinstance(cache, MLPCache) else describe(cache)
        raise ValueError(
            f"cache: expected the MLPCache of a {spec.depth}-layer forward pass, received {received}"
        )
    require_array("dY", dY, shape=cache.layers[-1].activation.kept.shape, dtype=spec.dtype)
    grads: dict[str, Array] = {}
    deltas: list[Array] = []
    dA = dY
    for l in range(spec.depth, 0, -1):
        lin, act, norm = cache.layers[l - 1]
        delta = activations.activation_backward(dA, act)  # δˡ (∂L/∂Ẑˡ with batch norm), N, D_l
        if norm is not None:  # terms [1] [2] [3] of refimpl.batchnorm
            through = bn.batchnorm_backward(delta, norm)
            delta, grads[f"gamma{l}"], grads[f"beta{l}"] = (
                through["X"], through["gamma"], through["beta"])  # δˡ, D_l, D_l
        deltas.append(delta)
        dA, grads[f"W{l}"], db = linear_backward(delta, lin)
        if norm is None:  # a layer followed by batch norm has no bias
            grads[f"b{l}"] = db
    grads["X"] = dA
    return grads, tuple(reversed(deltas))


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


def loss_and_grads_state(
    spec: MLPSpec, params: dict[str, Array], X: Array, targets: Array,
    state: dict[str, Array], *, train: bool,
) -> tuple[float, dict[str, Array], dict[str, Array]]:
    """The loss, its gradients (as loss_and_grads) and the new state, in either mode."""
    Y, new_state, cache = mlp_forward_state(spec, params, X, state, train=train)
    loss, lcache = loss_forward(spec, Y, targets)
    return loss, mlp_backward(spec, loss_backward(spec, lcache), cache), new_state
