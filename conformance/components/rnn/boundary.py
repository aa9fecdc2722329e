"""The RNN's boundary cases for `python -m conformance stress`, full and truncated BPTT.

H = 1 (W_hh and h0's gradient are single sums that cancel), D = 1, N = 1..4, T from 1 to
64, both readouts, losses and nonlinearities; vanished gradients: W_hh scaled by 0.2 over
64 steps takes ∂L/∂h0 to 1e-40 and below, subnormal in float32, which JAX on CPU flushes
to zero; windows k = 1, 2, T - 1 and T.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from conformance import properties as p
from conformance.case import Case
from conformance.component import Boundary
from conformance.components.rnn import properties as rp
from conformance.components.rnn.strategies import Shape as RNNShape
from conformance.components.rnn.strategies import rnn_case
from refimpl.rnn import RNNSpec


class Shape(NamedTuple):
    shape: RNNShape
    recurrent_scale: float = 1.0  # W_hh times this: 0.2 over 64 steps vanishes


def _case(shape: Shape, seed: int, component: str) -> Case:
    drawn = rnn_case(shape.shape, seed, component=component)
    params = {**drawn.params, "W_hh": drawn.params["W_hh"] * shape.recurrent_scale}
    return replace(drawn, params=params)


def case(shape: Shape, seed: int) -> Case:
    return _case(shape, seed, "rnn")


def truncated_case(shape: Shape, seed: int) -> Case:
    return _case(shape, seed, "rnn_truncated")


R = RNNSpec
# fmt: off
SHAPES = (
    Shape(RNNShape(R(1, 1, 2, "tanh", "last", "mse"), T=1, N=1)),
    Shape(RNNShape(R(1, 1, 2, "tanh", "last", "mse"), T=64, N=1)),
    Shape(RNNShape(R(1, 1, 2, "tanh", "every", "mse"), T=64, N=2), recurrent_scale=0.2),
    Shape(RNNShape(R(2, 1, 3, "relu", "every", "cross_entropy"), T=5, N=3)),
    Shape(RNNShape(R(3, 1, 2, "tanh", "every", "mse"), T=12, N=4)),
    Shape(RNNShape(R(1, 2, 2, "relu", "last", "cross_entropy"), T=16, N=2), recurrent_scale=0.2),
    Shape(RNNShape(R(2, 3, 2, "tanh", "last", "mse"), T=32, N=1), recurrent_scale=3.0),  # saturated
    Shape(RNNShape(R(4, 5, 3, "tanh", "every", "cross_entropy"), T=8, N=4)),
)
TRUNCATED_SHAPES = tuple(
    s._replace(shape=s.shape._replace(spec=replace(s.shape.spec, truncation=k)))
    for s in SHAPES if s.shape.T > 1
    for k in sorted({1, 2, s.shape.T - 1, s.shape.T})
)
# fmt: on

BOUNDARY = Boundary(
    SHAPES,
    case,
    (p.FORWARD_AGREEMENT, p.GRADIENT_AGREEMENT, p.LOSS_GRADIENT_AGREEMENT, rp.HIDDEN_GRADIENT_PROFILE),
)
TRUNCATED_BOUNDARY = Boundary(
    TRUNCATED_SHAPES, truncated_case, (p.FORWARD_AGREEMENT, p.GRADIENT_AGREEMENT, p.LOSS_GRADIENT_AGREEMENT)
)
