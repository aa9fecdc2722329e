"""Dying ReLUs: units that a few large SGD steps switch off on every example, for good.

A hidden unit j is *off* when its pre-activation is <= 0 on every example of the batch.
For ReLU, relu'(z) = 0 there, so δ_{:,j} = 0 and its incoming weights and bias get
exactly zero gradient, ∂L/∂W_{j,:} = δ_{:,j}ᵀ A = 0 and ∂L/∂b_j = 0: with the same inputs
nothing ever moves them again, the unit is *dead*. A large step lands there easily: with
inputs >= 0 (pixels, counts) and a large residual, z_j moves by -η Σ_m δ_mj (x_m·x_n + 1)
for every example n at once, and x_m·x_n + 1 > 0. Leaky ReLU's slope a keeps
f'(z) = a > 0 on the off side: the same units are off, none is dead.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl.mlp import MLPSpec, init_params, loss_and_grads
from refimpl.train import SGDSpec, mlp_objective, train

Array = NDArray[Any]
Params = dict[str, Array]


class DyingCase(NamedTuple):
    spec: MLPSpec
    params: Params
    X: Array  # (N, D), U(0, 1): non-negative inputs
    targets: Array  # (N, 1), 2 + X v


LARGE_LR, LARGE_STEPS = 0.4, 3  # the few large steps
SMALL_LR, SMALL_STEPS = 0.05, 300  # then ordinary training


def dying_case(activation: str, seed: int = 0) -> DyingCase:
    """An 8-64-1 network, `activation` ("relu" or "leaky_relu", slope 0.01) in the hidden
    layer, mse on targets 2 + X v; torch's init, the same draws for both activations."""
    spec = MLPSpec((8, 64, 1), activation, "identity", "mse", slope=0.01)
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng)
    X = rng.uniform(0.0, 1.0, size=(64, 8))
    return DyingCase(spec, params, X, 2.0 + X @ rng.standard_normal((8, 1)))


class UnitCount(NamedTuple):
    off: Array  # (H,) bool: z_j <= 0 on every example
    dead: Array  # (H,) bool: ∂L/∂W1_j and ∂L/∂b1_j exactly zero
    margin: float  # min over units of |max_n z_nj|: how far the nearest unit is from switching


def count_units(case: DyingCase, params: Params) -> UnitCount:
    """Off and dead units of the hidden layer at `params`, on the case's batch."""
    Z = case.X @ params["W1"].T + params["b1"]  # Z¹, N, H
    _, grads = loss_and_grads(case.spec, params, case.X, case.targets)
    dead = np.all(grads["W1"] == 0.0, axis=1) & (grads["b1"] == 0.0)
    return UnitCount(np.all(Z <= 0.0, axis=0), dead, float(np.min(np.abs(Z.max(axis=0)))))


def large_steps(case: DyingCase, params: Params | None = None) -> Params:
    """The parameters after LARGE_STEPS full-batch SGD steps of η = LARGE_LR."""
    batch = {"X": case.X, "targets": case.targets}
    start = case.params if params is None else params
    return train(mlp_objective(case.spec), SGDSpec(LARGE_LR), start, {}, [batch] * LARGE_STEPS)[0]


class DyingRun(NamedTuple):
    off: Array  # (S + 1,): fraction of off units before each step and after the last
    dead: Array  # (S + 1,): fraction of dead units
    losses: Array  # (S + 1,)


def dying_run(case: DyingCase) -> DyingRun:
    """LARGE_STEPS steps of η = LARGE_LR, then SMALL_STEPS of η = SMALL_LR, counted at every step."""
    batch = {"X": case.X, "targets": case.targets}
    params, off, dead, losses = case.params, [], [], []
    for lr in [LARGE_LR] * LARGE_STEPS + [SMALL_LR] * SMALL_STEPS + [0.0]:
        count = count_units(case, params)
        off.append(count.off.mean())
        dead.append(count.dead.mean())
        losses.append(loss_and_grads(case.spec, params, case.X, case.targets)[0])
        if lr:
            params = train(mlp_objective(case.spec), SGDSpec(lr), params, {}, [batch])[0]
    return DyingRun(np.array(off), np.array(dead), np.array(losses))
