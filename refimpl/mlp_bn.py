"""The batch-normalized MLP: Linear -> batch norm -> activation in every hidden layer.

README, "Batch normalization". For l = 1..L-1 (the hidden layers), with A⁰ = X:

    Zˡ = Aˡ⁻¹ Wˡᵀ                          linear_forward, no bias    (N, D_l)
    Ẑˡ = γˡ ⊙ (Zˡ - μˡ)/√(σˡ² + ε) + βˡ    batchnorm_forward          (N, D_l)
    Aˡ = fˡ(Ẑˡ)                            activation_forward

and the output layer as in refimpl.mlp: Zᴸ = Aᴸ⁻¹ Wᴸᵀ + bᴸ, Y = fᴸ(Zᴸ). In training mode
μˡ, σˡ² are the batch's statistics and the running ones are updated under the spec's
convention; in eval mode the running statistics normalize and come back unchanged.

A layer followed by batch norm has no bias (torch's nn.Linear(bias=False), flax's
Dense(use_bias=False)): βˡ takes its place, and in training mode the batch mean would
absorb it, its gradient Σ_n δˡ_n being 0.

Backward, with δˡ = ∂L/∂Zˡ: fˡ'(Ẑˡ) ⊙ (δˡ⁺¹ Wˡ⁺¹) is ∂L/∂Ẑˡ, and batchnorm_backward turns
it into ∂L/∂γˡ, ∂L/∂βˡ and δˡ (terms [1] [2] [3] of refimpl.batchnorm); then
∂L/∂Wˡ = δˡᵀ Aˡ⁻¹ and δˡ Wˡ flows on, as in the plain MLP.

Parameters "W1", "gamma1", "beta1", ..., "W{L-1}", "gamma{L-1}", "beta{L-1}", "WL", "bL";
gradients the same keys plus "X". State: "running_mean1", "running_var1", ..., each (D_l,),
returned anew by mlp_bn_forward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import activations, init
from refimpl import batchnorm as bn
from refimpl._validate import describe, raise_if_overflowed, require_array, require_same_keys
from refimpl.linear import LinearCache, linear_backward, linear_forward
from refimpl.mlp import (
    MLPSpec,
    check_batch,
    check_cache,
    check_params,
    loss_backward,
    loss_forward,
    require_spec,
)

Array = NDArray[Any]


class BNLayerCache(NamedTuple):
    linear: LinearCache  # Aˡ⁻¹ and Wˡ
    activation: activations.ActivationCache  # what fˡ' needs
    batchnorm: bn.BatchNormCache | bn.BatchNormEvalCache | None  # None for the output layer


class BNMLPCache(NamedTuple):
    layers: tuple[BNLayerCache, ...]  # one per layer, 1..L


def _require_batchnorm(spec: MLPSpec) -> None:
    if not require_spec(spec).batchnorm:
        raise ValueError(
            "spec.batchnorm: refimpl.mlp_bn runs batch-normalized MLPs, expected True,"
            " received False (the plain MLP is refimpl.mlp)"
        )


def init_params(spec: MLPSpec, rng: np.random.Generator, scheme: str = "torch") -> dict[str, Array]:
    """Wˡ, bᴸ as refimpl.mlp.init_params under `scheme` (refimpl.init); γˡ = 1, βˡ = 0 in both
    schemes, as nn.BatchNorm1d and flax's BatchNorm (no draws: the weights are as without batch norm)."""
    _require_batchnorm(spec)
    return init.draw(init.mlp_inits(spec.sizes, True, scheme), spec.param_shapes(), rng, spec.dtype)


def init_state(spec: MLPSpec) -> dict[str, Array]:
    """Running means 0 and variances 1, as both frameworks start; {} without batch norm."""
    require_spec(spec)
    return {
        k: (np.zeros if k.startswith("running_mean") else np.ones)(shape, spec.dtype)
        for k, shape in spec.state_shapes().items()
    }


def check_state(spec: MLPSpec, state: dict[str, Array]) -> None:
    """Keys, shapes and dtype of a state dict."""
    require_spec(spec)
    if not isinstance(state, dict):
        raise TypeError(f"state: expected a dict of arrays, received {describe(state)}")
    shapes = spec.state_shapes()
    require_same_keys("state", state, shapes)
    for name, shape in shapes.items():
        require_array(f"state[{name!r}]", state[name], shape=shape, dtype=spec.dtype)


def mlp_bn_forward(
    spec: MLPSpec, params: dict[str, Array], X: Array, state: dict[str, Array], *, train: bool
) -> tuple[Array, dict[str, Array], BNMLPCache]:
    """(Y (N, D_L), new state, cache). Training mode normalizes with the batch's statistics
    and returns the running ones updated under the spec's convention; eval mode normalizes
    with them and returns them unchanged."""
    _require_batchnorm(spec)
    if not isinstance(train, bool):
        raise TypeError(f"train: expected a bool, received {describe(train)}")
    check_params(spec, params)
    check_batch(spec, X)
    check_state(spec, state)
    convention = spec.bn_convention()
    A, new_state, layers = X, {}, []
    for l in range(1, spec.depth + 1):
        bias = params[f"b{l}"] if l == spec.depth else np.zeros(spec.sizes[l], spec.dtype)
        try:  # Zᴸ = Aᴸ⁻¹ Wᴸᵀ + bᴸ for the output layer, Zˡ = Aˡ⁻¹ Wˡᵀ before batch norm
            Z, lin = linear_forward(A, params[f"W{l}"], bias)  # N, D_l
        except ValueError as err:  # A is X at l = 1, checked above; later, computed
            raise_if_overflowed(err, "params", f"the forward pass (A{l - 1})", A)
        norm = None
        if l < spec.depth:  # Ẑˡ = γˡ ⊙ x̂ˡ + βˡ
            stats = {"running_mean": state[f"running_mean{l}"], "running_var": state[f"running_var{l}"]}
            try:
                Z, stats, norm = bn.batchnorm_forward(
                    Z,
                    {"gamma": params[f"gamma{l}"], "beta": params[f"beta{l}"]},
                    stats,
                    train=train,
                    convention=convention,
                )  # Ẑˡ, N, D_l
            except ValueError as err:
                raise_if_overflowed(err, "params", f"the forward pass (Z{l})", Z)
            new_state[f"running_mean{l}"] = stats["running_mean"]
            new_state[f"running_var{l}"] = stats["running_var"]
        A, act = activations.activation_forward(
            spec.activation(l), Z, slope=spec.slope, leaky_kink=spec.leaky_kink, params=spec.smooth_params()
        )
        layers.append(BNLayerCache(lin, act, norm))
    return A, new_state, BNMLPCache(tuple(layers))


def mlp_bn_backward(spec: MLPSpec, dY: Array, cache: BNMLPCache) -> dict[str, Array]:
    """∂L/∂Wˡ, ∂L/∂γˡ, ∂L/∂βˡ, ∂L/∂bᴸ and ∂L/∂X, given the upstream ∂L/∂Y."""
    return mlp_bn_backward_deltas(spec, dY, cache)[0]


def mlp_bn_backward_deltas(
    spec: MLPSpec, dY: Array, cache: BNMLPCache
) -> tuple[dict[str, Array], tuple[Array, ...]]:
    """The gradients of mlp_bn_backward, and δ¹, ..., δᴸ (δˡ = ∂L/∂Zˡ, (N, D_l)): for a
    hidden layer the gradient of its normalization's input."""
    _require_batchnorm(spec)
    check_cache(spec, cache, BNMLPCache)
    require_array("dY", dY, shape=cache.layers[-1].activation.kept.shape, dtype=spec.dtype)
    grads: dict[str, Array] = {}
    deltas: list[Array] = []
    dA = dY
    for l in range(spec.depth, 0, -1):
        lin, act, norm = cache.layers[l - 1]
        try:
            delta = activations.activation_backward(dA, act)  # δᴸ, or ∂L/∂Ẑˡ before batch norm
        except ValueError as err:  # dA is dY at l = L, checked above; later, computed
            raise_if_overflowed(err, "params", f"the backward pass (∂L/∂A{l})", dA)
        if norm is not None:  # terms [1] [2] [3] of refimpl.batchnorm
            try:
                through = bn.batchnorm_backward(delta, norm)
            except ValueError as err:
                raise_if_overflowed(err, "params", f"the backward pass (∂L/∂Ẑ{l})", delta)
            delta, grads[f"gamma{l}"], grads[f"beta{l}"] = (
                through["X"],
                through["gamma"],
                through["beta"],
            )  # δˡ (N, D_l), D_l, D_l
        deltas.append(delta)
        dA, grads[f"W{l}"], db = linear_backward(delta, lin)
        if norm is None:  # only the output layer has a bias
            grads[f"b{l}"] = db
    grads["X"] = dA
    return grads, tuple(reversed(deltas))


def loss_and_grads_state(
    spec: MLPSpec,
    params: dict[str, Array],
    X: Array,
    targets: Array,
    state: dict[str, Array],
    *,
    train: bool,
) -> tuple[float, dict[str, Array], dict[str, Array]]:
    """The loss, its gradient for every parameter and X, and the new state, in either mode."""
    Y, new_state, cache = mlp_bn_forward(spec, params, X, state, train=train)
    loss, lcache = loss_forward(spec, Y, targets)
    return loss, mlp_bn_backward(spec, loss_backward(spec, lcache), cache), new_state
