"""Trajectories' boundary cases for `python -m conformance stress`.

Width-1 MLPs, batch-norm MLPs at N = 2..4 (where every gradient through a normalization
nearly cancels), an RNN with H = 1, one to four SGD steps, each clipping kind with the
threshold at, just around and far from the first gradient's norm.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from conformance.case import Case
from conformance.component import Boundary
from conformance.components.trajectory import properties as tp
from conformance.components.trajectory.reference import TrajectorySpec
from conformance.components.trajectory.strategies import Plan, trajectory_case
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec

RATIOS = (0.3, 0.999, 1.0, 1.001, 1.5)


class Shape(NamedTuple):
    plan: Plan


def case(shape: Shape, seed: int) -> Case:
    ratio = float(np.random.default_rng([seed, 0x7A]).choice(RATIOS))
    return trajectory_case(shape.plan, seed, ratio=ratio)


def T(network: MLPSpec | RNNSpec, kind: str, **fields: object) -> TrajectorySpec:
    threshold = (
        {"max_norm": 1.0, "clip_value": None}
        if kind == "global_norm"
        else ({"max_norm": None, "clip_value": 1.0} if kind == "value" else {"max_norm": None})
    )
    return TrajectorySpec(network, clip_kind=kind, **threshold, **fields)  # type: ignore[arg-type]


# fmt: off
SHAPES = (
    Shape(Plan(T(MLPSpec((1, 1), "identity", "identity", "mse"), "global_norm", lr=0.5), steps=4, N=1)),
    Shape(Plan(T(MLPSpec((2, 1, 2), "tanh", "identity", "cross_entropy"), "value", lr=0.3), steps=3, N=2)),
    Shape(Plan(T(MLPSpec((1, 3, 1), "relu", "identity", "mse"), "none", lr=0.1), steps=2, N=3)),
    Shape(Plan(T(MLPSpec((2, 3, 3, 1), "tanh", "identity", "mse", batchnorm=True), "global_norm",
                 lr=0.5), steps=3, N=2)),
    Shape(Plan(T(MLPSpec((2, 3, 3, 2), "sigmoid", "identity", "cross_entropy", batchnorm=True),
                 "global_norm", lr=0.3, norm_type=math.inf), steps=4, N=4)),
    Shape(Plan(T(MLPSpec((3, 2, 2), "relu", "identity", "mse", batchnorm=True), "value", lr=0.5),
               steps=2, N=3)),
    Shape(Plan(T(RNNSpec(1, 1, 2, "tanh", "every", "mse"), "global_norm", lr=0.3), steps=3, N=1, T=4)),
    Shape(Plan(T(RNNSpec(2, 1, 2, "relu", "last", "cross_entropy"), "value", lr=0.5), steps=2, N=3, T=3)),
)
# fmt: on

BOUNDARY = Boundary(SHAPES, case, (tp.TRAJECTORY_AGREEMENT,))
