"""The MLP's boundary cases for `python -m conformance stress`: the sizes hypothesis shrinks toward.

Width-1 layers and outputs, 1-element bias gradients, N = 1..4, depth up to 5, every
activation and both losses, kinks (exact zeros) and vanished gradients: weights scaled up
so that tanh and sigmoid saturate (gradients of 1e-10 to 1e-30 through 5 layers) or down.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from conformance import properties as p
from conformance.case import Case
from conformance.component import Boundary
from conformance.components.mlp.strategies import mlp_case
from refimpl.mlp import MLPSpec


class Shape(NamedTuple):
    spec: MLPSpec
    N: int
    scale: float = 1.0  # every Wˡ times this: > 1 saturates tanh and sigmoid, < 1 shrinks
    kinks: bool = False  # zero biases and zero rows of X: pre-activations exactly 0


def case(shape: Shape, seed: int) -> Case:
    spec, N, scale, kinks = shape
    drawn = mlp_case(spec, N, seed, kinks=kinks)
    params = {k: v * scale if k.startswith("W") else v for k, v in drawn.params.items()}
    return replace(drawn, params=params)


S = MLPSpec
# fmt: off
SHAPES = (
    Shape(S((1, 1), "identity", "identity", "mse"), 1),
    Shape(S((1, 1), "identity", "tanh", "mse"), 2),
    Shape(S((3, 1), "identity", "sigmoid", "mse"), 4),
    Shape(S((1, 1, 1), "tanh", "identity", "mse"), 3),
    Shape(S((2, 1, 2), "relu", "identity", "cross_entropy"), 2),
    Shape(S((2, 1, 2), "leaky_relu", "leaky_relu", "mse", slope=0.1), 3, kinks=True),
    Shape(S((1, 1, 1, 1, 1, 1), "tanh", "identity", "mse"), 1),
    Shape(S((1, 1, 1, 1, 1, 1), "sigmoid", "sigmoid", "mse"), 4),
    Shape(S((2, 3, 3, 3, 3, 1), "tanh", "identity", "mse"), 2, scale=6.0),  # saturated: vanished
    Shape(S((3, 2, 2, 2, 2, 2), "sigmoid", "identity", "cross_entropy"), 3, scale=8.0),
    Shape(S((2, 3, 1), "tanh", "tanh", "mse"), 4, scale=0.05),
    Shape(S((3, 3, 3), "relu", "relu", "mse"), 4, kinks=True),
    Shape(S((3, 2, 3), "relu", "identity", "cross_entropy"), 1),
    Shape(S((1, 3, 1), "leaky_relu", "identity", "mse", slope=0.5, leaky_kink="one"), 2),
    Shape(S((2, 1), "identity", "identity", "cross_entropy"), 3),  # one class: ∂L/∂Y = 0
    Shape(S((4, 2, 2, 2, 3), "sigmoid", "tanh", "mse"), 2),
    Shape(S((2, 8, 1, 8, 2), "tanh", "identity", "cross_entropy"), 4),
    Shape(S((1, 2, 2, 1), "relu", "sigmoid", "mse"), 3, scale=3.0),
)
# fmt: on

BOUNDARY = Boundary(SHAPES, case, (p.FORWARD_AGREEMENT, p.GRADIENT_AGREEMENT, p.LOSS_GRADIENT_AGREEMENT))
