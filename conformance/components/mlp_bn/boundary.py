"""The batch-normalized MLP's boundary cases for `python -m conformance stress`.

Deep batch-norm chains (four normalizations in a row) at N = 2, 3, 4, where x̂ is ±1 or
nearly so and every gradient through a normalization is a difference of nearly equal
terms; single features; a batch of one under flax's convention (σ² = 0); eval mode with
running statistics away from (0, 1).
"""

from __future__ import annotations

from typing import NamedTuple

from conformance import properties as p
from conformance.case import Case
from conformance.component import Boundary
from conformance.components.mlp_bn import properties as bp
from conformance.components.mlp_bn.strategies import bn_case
from refimpl.mlp import MLPSpec


class Shape(NamedTuple):
    spec: MLPSpec
    N: int
    train: bool = True


def case(shape: Shape, seed: int) -> Case:
    return bn_case(shape.spec, shape.N, seed, train=shape.train)


def S(sizes: tuple[int, ...], hidden: str, output: str = "identity", loss: str = "mse") -> MLPSpec:
    return MLPSpec(sizes, hidden, output, loss, batchnorm=True)


# fmt: off
SHAPES = (
    Shape(S((2, 3, 3, 3, 3, 1), "tanh"), 3),
    Shape(S((2, 3, 3, 3, 3, 1), "tanh"), 4),
    Shape(S((3, 5, 5, 5, 5, 2), "sigmoid", "identity", "cross_entropy"), 3),
    Shape(S((2, 2, 2, 2, 2, 2), "relu"), 4),
    Shape(S((2, 4, 4, 2), "tanh"), 2),
    Shape(S((1, 1, 1), "tanh"), 2),  # one feature at every normalization
    Shape(S((2, 1, 3), "leaky_relu", "identity", "cross_entropy"), 3),
    Shape(S((3, 3, 1), "identity", "sigmoid"), 4),
    Shape(S((2, 3, 3), "relu", "relu"), 1),  # flax: σ² = 0, Ẑ = β; torch raises (not run)
    Shape(S((2, 3, 3, 3, 3, 1), "tanh"), 3, train=False),
    Shape(S((2, 4, 4, 2), "identity"), 1, train=False),
    Shape(S((3, 5, 2), "tanh", "identity", "cross_entropy"), 16),
)
# fmt: on

BOUNDARY = Boundary(
    SHAPES,
    case,
    (
        p.FORWARD_AGREEMENT,
        p.GRADIENT_AGREEMENT,
        p.LOSS_GRADIENT_AGREEMENT,
        bp.STATE_AGREEMENT,
        bp.EVAL_AGREEMENT,
    ),
)
