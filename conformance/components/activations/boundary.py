"""The smooth activations' boundary cases for `python -m conformance stress`, one set per
activation: the sizes hypothesis shrinks toward (width-1 layers and outputs, N = 1..4, depth
up to 4), kinks (exact zeros into ELU and SELU), softplus at and past its threshold, weights
scaled up until units saturate (GELU and SiLU at -x·0, softplus at x, ELU at -α) or down to
where every unit sits near 0.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from conformance import properties as p
from conformance.case import Case
from conformance.component import Boundary
from conformance.components.activations.strategies import activation_case
from refimpl.mlp import MLPSpec


class Shape(NamedTuple):
    spec: MLPSpec
    N: int
    scale: float = 1.0  # every Wˡ times this
    kinks: bool = False  # zero biases and zero rows of X: pre-activations exactly 0
    threshold: bool = False  # softplus: the first layer's pre-activations at its threshold


def case(shape: Shape, seed: int) -> Case:
    spec, N, scale, kinks, threshold = shape
    drawn = activation_case(spec, N, seed, kinks=kinks, threshold=threshold)
    params = {k: v * scale if k.startswith("W") else v for k, v in drawn.params.items()}
    return replace(drawn, params=params)


def shapes(activation: str) -> tuple[Shape, ...]:
    """The shapes for one activation; ELU with α = 1.5 (its slopes at 0 differ), softplus with
    β = 2 and a threshold of 20, or none (jax.nn.softplus)."""
    extra = {"elu": {"elu_alpha": 1.5}, "softplus": {"softplus_beta": 2.0}}.get(activation, {})

    def spec(sizes: tuple[int, ...], output: str = "identity", loss: str = "mse") -> MLPSpec:
        return MLPSpec(sizes, activation, output, loss, **extra)  # type: ignore[arg-type]

    found = [
        Shape(spec((1, 1), activation), 1),
        Shape(spec((3, 1), activation), 4),
        Shape(spec((1, 1, 1)), 2),
        Shape(spec((2, 1, 2), loss="cross_entropy"), 3),
        Shape(spec((1, 1, 1, 1, 1)), 1),
        Shape(spec((1, 1, 1, 1, 1), activation), 4),
        Shape(spec((2, 3, 3, 3, 1)), 2, scale=6.0),  # saturated
        Shape(spec((3, 2, 2, 2, 2), loss="cross_entropy"), 3, scale=8.0),
        Shape(spec((2, 3, 1), "tanh"), 4, scale=0.05),  # near 0
        Shape(spec((3, 2, 3), loss="cross_entropy"), 1),
        Shape(spec((2, 8, 1, 8, 2), loss="cross_entropy"), 4),
        Shape(spec((4, 2, 2, 3), "sigmoid"), 2),
    ]
    if activation in ("elu", "selu"):
        found += [Shape(spec((2, 2, 2), activation), 3, kinks=True), Shape(spec((3, 3, 3)), 4, kinks=True)]
    if activation == "softplus":
        found += [
            Shape(spec((2, 4, 2)), 4, threshold=True),
            Shape(replace(spec((2, 4, 2)), softplus_threshold=None), 4, threshold=True),
        ]
    return tuple(found)


def boundary(activation: str) -> Boundary:
    return Boundary(
        shapes(activation), case, (p.FORWARD_AGREEMENT, p.GRADIENT_AGREEMENT, p.LOSS_GRADIENT_AGREEMENT)
    )
