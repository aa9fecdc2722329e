"""The padded-sequence RNN's boundary cases for `python -m conformance stress`.

H = 1 and D = 1 (W_hh and h0's gradient single sums that cancel), N = 1..4, T up to 64,
lengths at their edges (1, T, all equal, one long sequence among short ones), both readouts,
losses and nonlinearities, forward and reversed; a recurrent weight scaled by 0.2 over 64 steps
(vanished gradients) or by 3 (saturated tanh).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from conformance import properties as p
from conformance.case import Case
from conformance.component import Boundary
from conformance.components.rnn_varlen.strategies import Shape as VarLenShape
from conformance.components.rnn_varlen.strategies import varlen_case
from refimpl.varlen import VarLenRNNSpec


class Shape(NamedTuple):
    shape: VarLenShape
    recurrent_scale: float = 1.0  # W_hh times this


def case(shape: Shape, seed: int) -> Case:
    drawn = varlen_case(shape.shape, seed)
    return replace(drawn, params={**drawn.params, "W_hh": drawn.params["W_hh"] * shape.recurrent_scale})


V = VarLenRNNSpec
# fmt: off
SHAPES = (
    Shape(VarLenShape(V(1, 1, 2, "tanh", "last", "mse"), (1,), T=1)),
    Shape(VarLenShape(V(1, 1, 2, "tanh", "last", "mse"), (64,), T=64)),
    Shape(VarLenShape(V(1, 1, 2, "tanh", "every", "mse"), (64, 1), T=64), recurrent_scale=0.2),
    Shape(VarLenShape(V(2, 1, 3, "relu", "every", "cross_entropy"), (5, 5, 5), T=5)),
    Shape(VarLenShape(V(3, 1, 2, "tanh", "every", "mse", reverse=True), (12, 1, 7, 12), T=12)),
    Shape(VarLenShape(V(1, 2, 2, "relu", "last", "cross_entropy"), (1, 16), T=16), recurrent_scale=0.2),
    Shape(VarLenShape(V(2, 3, 2, "tanh", "last", "mse", reverse=True), (32,), T=32), recurrent_scale=3.0),
    Shape(VarLenShape(V(4, 5, 3, "tanh", "every", "cross_entropy"), (8, 2, 1, 5), T=8)),
)
# fmt: on

BOUNDARY = Boundary(SHAPES, case, (p.FORWARD_AGREEMENT, p.GRADIENT_AGREEMENT, p.LOSS_GRADIENT_AGREEMENT))
