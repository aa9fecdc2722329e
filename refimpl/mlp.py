"""An L-layer perceptron: forward, backpropagation, loss, gradients (README, "An L-layer MLP").

Forward, for l = 1..L, with A⁰ = X:

    Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ          linear_forward                (N, D_l)
    Aˡ = fˡ(Zˡ)                  activation_forward            f = hidden activation, fᴸ = output
    Y  = Aᴸ,  L = loss(Y, T)     loss_forward

Backward, with δˡ = ∂L/∂Zˡ:

    δᴸ     = fᴸ'(Zᴸ) ⊙ ∂L/∂Y      activation_backward           (N, D_L)
    ∂L/∂Wˡ = δˡᵀ Aˡ⁻¹             linear_backward               (D_l, D_{l-1})
    ∂L/∂bˡ = Σ_n δˡ_n             linear_backward               (D_l,)
    δˡ⁻¹   = fˡ⁻¹'(Zˡ⁻¹) ⊙ (δˡ Wˡ)                              (N, D_{l-1})
    ∂L/∂X  = δ¹ W¹                                              (N, D_0)

Parameters are a flat dict "W1", "b1", ..., "WL", "bL" (Wˡ of shape (D_l, D_{l-1}));
gradients use the same keys plus "X". The batch-normalized MLP (Linear -> batch norm ->
activation, `MLPSpec(batchnorm=True)`) is refimpl.mlp_bn; the spec, its JSON and the
parameter initialization are shared, so `MLPSpec` carries batch norm's conventions too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import activations, init, losses
from refimpl import batchnorm as bn
from refimpl._validate import (
    SPEC_DTYPES,
    describe,
    json_fields,
    raise_if_overflowed,
    require_array,
    require_choice,
    require_instance,
    require_int,
    require_real,
    require_same_keys,
)
from refimpl.linear import LinearCache, linear_backward, linear_forward
from refimpl.smooth import SmoothParams

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
    # refimpl.smooth's parameters; an activation the spec does not use leaves its fields at
    # these defaults (set there whatever is passed); to_json leaves out the ones at their defaults.
    elu_alpha: float = activations.DEFAULTS.alpha  # ELU's α
    elu_kink: str = activations.DEFAULTS.elu_kink  # elu'(0), selu'(0): "negative" (α, λα) or "positive"
    softplus_beta: float = activations.DEFAULTS.beta  # softplus(βx)/β
    softplus_threshold: float | None = activations.DEFAULTS.threshold  # 20 (torch) or None (jax)
    dtype: str = "float64"  # the computation's: "float32" or "float64" (a framework run: SPEC_DTYPES)
    # Batch norm after every hidden linear layer (refimpl.mlp_bn); the other bn_ fields are its
    # conventions (refimpl.batchnorm.BatchNormConvention; defaults: torch's, flax's in the comments).
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
            raise ValueError(f"sizes: expected at least 2 entries (input, output), received {self.sizes}")
        sizes = tuple(require_int(f"sizes[{i}]", n) for i, n in enumerate(self.sizes))
        object.__setattr__(self, "sizes", sizes)
        require_choice("hidden_activation", self.hidden_activation, activations.ACTIVATIONS)
        require_choice("output_activation", self.output_activation, activations.ACTIVATIONS)
        require_choice("loss", self.loss, losses.LOSSES)
        require_real("slope", self.slope, minimum=0.0, maximum=1.0)
        require_choice("leaky_kink", self.leaky_kink, activations.LEAKY_KINKS)
        self.smooth_params()  # validates them
        used = {
            f
            for name in (self.hidden_activation, self.output_activation)
            for f in activations.PARAMETERS.get(name, ())
        }
        for name, default in SMOOTH_DEFAULTS.items():
            if name not in used:
                object.__setattr__(self, name, default)
        require_choice("dtype", self.dtype, SPEC_DTYPES)
        if not isinstance(self.batchnorm, bool):
            raise TypeError(f"batchnorm: expected a bool, received {describe(self.batchnorm)}")
        require_real("bn_momentum", self.bn_momentum, minimum=0.0, maximum=1.0)
        require_choice("bn_momentum_convention", self.bn_momentum_convention, bn.MOMENTUM_CONVENTIONS)
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

    def smooth_params(self) -> SmoothParams:
        """The parameters of refimpl.smooth's activations, validated."""
        return activations.smooth_params(
            self.elu_alpha, self.elu_kink, self.softplus_beta, self.softplus_threshold
        )

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
        return bn.BatchNormConvention(
            self.bn_momentum,
            self.bn_momentum_convention,
            self.bn_running_var,
            self.bn_eps,
            self.bn_single_example,
        )

    def to_json(self) -> str:
        """The fields as JSON; the bn_ fields only with batchnorm on, so a spec without
        batch norm reads as it did before they existed (stored reproducers, golden sets)."""
        data = asdict(self)
        if not self.batchnorm:
            data = {k: v for k, v in data.items() if k != "batchnorm" and not k.startswith("bn_")}
        unused = [k for k, v in SMOOTH_DEFAULTS.items() if data[k] == v]
        return json.dumps({k: v for k, v in data.items() if k not in unused}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MLPSpec:
        data = json_fields(cls, text)
        if isinstance(data.get("sizes"), list):
            data["sizes"] = tuple(data["sizes"])
        return cls(**data)


SMOOTH_DEFAULTS = dict(
    zip(("elu_alpha", "elu_kink", "softplus_beta", "softplus_threshold"), activations.DEFAULTS, strict=True)
)


class LayerCache(NamedTuple):
    linear: LinearCache  # Aˡ⁻¹ and Wˡ
    activation: activations.ActivationCache  # what fˡ' needs: Zˡ or Aˡ


class MLPCache(NamedTuple):
    layers: tuple[LayerCache, ...]  # one per layer, 1..L


def require_spec(spec: Any) -> MLPSpec:
    """An MLPSpec (TypeError otherwise)."""
    return require_instance("spec", spec, MLPSpec, "an MLPSpec")


def _require_plain(spec: MLPSpec) -> None:
    require_spec(spec)
    if spec.batchnorm:
        raise ValueError(
            "spec.batchnorm: refimpl.mlp runs MLPs without batch norm, expected False,"
            " received True (the batch-normalized MLP is refimpl.mlp_bn)"
        )


def init_params(spec: MLPSpec, rng: np.random.Generator, scheme: str = "torch") -> dict[str, Array]:
    """Wˡ, bˡ drawn in layer order under the initialization `scheme` (refimpl.init): "torch",
    nn.Linear's U(-1/√D_{l-1}, 1/√D_{l-1}), or "flax", Dense's lecun_normal kernel and zero bias.
    For a batch-norm spec only the linear layers' parameters (its layers before batch norm have
    no bias); refimpl.mlp_bn.init_params adds γ and β."""
    require_spec(spec)
    inits = init.mlp_inits(spec.sizes, spec.batchnorm, scheme)
    linear = {name: dist for name, dist in inits.items() if not name.startswith(bn.PARAM_KEYS)}
    return init.draw(linear, spec.param_shapes(), rng, spec.dtype)


def check_params(spec: MLPSpec, params: dict[str, Array]) -> None:
    """Keys, shapes, dtype and finiteness of a parameter dict."""
    shapes = require_spec(spec).param_shapes()
    require_same_keys("params", params, shapes)
    for name, shape in shapes.items():
        require_array(f"params[{name!r}]", params[name], shape=shape, dtype=spec.dtype)


def check_batch(spec: MLPSpec, X: Array) -> None:
    """X of shape (N, D_0), N >= 1, in the spec's dtype."""
    require_spec(spec)
    require_array("X", X, shape=(None, spec.sizes[0]), dtype=spec.dtype)
    if X.shape[0] < 1:
        raise ValueError(f"X: expected at least one row (N >= 1), received shape {X.shape}")


def check_cache(spec: MLPSpec, cache: Any, cache_type: type[Any]) -> None:
    """A cache of `cache_type` from a forward pass of this spec's depth."""
    require_spec(spec)
    if not isinstance(cache_type, type):
        raise TypeError(f"cache_type: expected a cache class, received {describe(cache_type)}")
    if not isinstance(cache, cache_type) or len(cache.layers) != spec.depth:
        received = len(cache.layers) if isinstance(cache, cache_type) else describe(cache)
        raise ValueError(
            f"cache: expected the {cache_type.__name__} of a {spec.depth}-layer"
            f" forward pass, received {received}"
        )


def mlp_forward(spec: MLPSpec, params: dict[str, Array], X: Array) -> tuple[Array, MLPCache]:
    """Y = Aᴸ (N, D_L) for a batch X (N, D_0), and the cache the backward pass reads."""
    _require_plain(spec)
    check_params(spec, params)
    check_batch(spec, X)
    A, layers = X, []
    for l in range(1, spec.depth + 1):
        try:
            Z, lin = linear_forward(A, params[f"W{l}"], params[f"b{l}"])  # Zˡ, N, D_l
        except ValueError as err:  # A is X at l = 1, checked above; later, computed
            raise_if_overflowed(err, "params", f"the forward pass (A{l - 1})", A)
        A, act = activations.activation_forward(
            spec.activation(l), Z, slope=spec.slope, leaky_kink=spec.leaky_kink, params=spec.smooth_params()
        )  # Aˡ, N, D_l
        layers.append(LayerCache(lin, act))
    return A, MLPCache(tuple(layers))


def mlp_backward(spec: MLPSpec, dY: Array, cache: MLPCache) -> dict[str, Array]:
    """∂L/∂Wˡ, ∂L/∂bˡ for every layer and ∂L/∂X, given the upstream ∂L/∂Y (N, D_L)."""
    return mlp_backward_deltas(spec, dY, cache)[0]


def mlp_backward_deltas(
    spec: MLPSpec, dY: Array, cache: MLPCache
) -> tuple[dict[str, Array], tuple[Array, ...]]:
    """The gradients of mlp_backward, and δ¹, ..., δᴸ (δˡ = ∂L/∂Zˡ, (N, D_l))."""
    _require_plain(spec)
    check_cache(spec, cache, MLPCache)
    require_array("dY", dY, shape=cache.layers[-1].activation.kept.shape, dtype=spec.dtype)
    grads: dict[str, Array] = {}
    deltas: list[Array] = []
    dA = dY  # ∂L/∂Aᴸ
    for l in range(spec.depth, 0, -1):
        lin, act = cache.layers[l - 1]
        try:
            delta = activations.activation_backward(dA, act)  # δˡ = fˡ'(Zˡ) ⊙ ∂L/∂Aˡ, N, D_l
        except ValueError as err:  # dA is dY at l = L, checked above; later, computed
            raise_if_overflowed(err, "params", f"the backward pass (∂L/∂A{l})", dA)
        deltas.append(delta)
        dA, grads[f"W{l}"], grads[f"b{l}"] = linear_backward(delta, lin)  # δˡ Wˡ, δˡᵀ Aˡ⁻¹, Σ_n δˡ_n
    grads["X"] = dA
    return grads, tuple(reversed(deltas))


def loss_forward(spec: MLPSpec, Y: Array, targets: Array) -> tuple[float, Any]:
    """The spec's loss on the network output Y."""
    if require_spec(spec).loss == "mse":
        return losses.mse_forward(Y, targets)
    return losses.cross_entropy_forward(Y, targets)


def loss_backward(spec: MLPSpec, cache: Any, dloss: float = 1.0) -> Array:
    """∂L/∂Y for the spec's loss."""
    if require_spec(spec).loss == "mse":
        return losses.mse_backward(dloss, cache)
    return losses.cross_entropy_backward(dloss, cache)


def loss_and_grads(
    spec: MLPSpec, params: dict[str, Array], X: Array, targets: Array
) -> tuple[float, dict[str, Array]]:
    """The loss and its gradient for every parameter and for the input X."""
    Y, cache = mlp_forward(spec, params, X)
    loss, lcache = loss_forward(spec, Y, targets)
    return loss, mlp_backward(spec, loss_backward(spec, lcache), cache)
