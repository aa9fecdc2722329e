"""Hypothesis strategies for training trajectories: a network, S steps of batches, SGD and clipping.

Hypothesis draws a plan (network spec, clipping kind, steps S, batch N, sequence
length T for RNNs, learning rate) and a seed; NumPy draws the values: torch's
initialization, a fresh batch per step (X ~ N(0, 1), targets, and a nonzero h0
for RNNs), and the clipping threshold as a ratio of the first step's gradient
(its global norm for M, its largest entry for v), so that clipping bites in
some steps and not in others. Under the ci profile the plans come from a fixed
catalog (one compiled JAX step function per plan and dtype); dev and thorough
draw MLPs and RNNs freely within small bounds.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from conformance.case import Arrays, Case
from conformance.components.mlp.strategies import mlp_params, mlp_specs
from conformance.components.rnn.strategies import outputs_shape, rnn_params
from conformance.components.trajectory.reference import CLIP_KINDS, TrajectorySpec
from conformance.profiles import Profile
from conformance.strategies import catalog_or, seeds
from refimpl import mlp, rnn
from refimpl.clip import global_norm
from refimpl.train import mlp_objective, rnn_objective

RATIOS = (0.3, 0.6, 1.5)  # threshold / first gradient's norm: clips always, mostly, rarely
NONLINEAR = ("tanh", "sigmoid", "relu", "leaky_relu")  # batch-norm MLPs' activations (free_plans)
# the activations whose conventions TrajectorySpec carries (leaky_kink): refimpl.smooth's (elu_kink,
# softplus's threshold) are held to each framework by the components "mlp_<activation>"
CONVENTIONAL = ("identity", *NONLINEAR)


class Plan(NamedTuple):
    spec: TrajectorySpec  # threshold fields are placeholders; trajectory_case sets them
    steps: int  # S
    N: int  # batch
    T: int = 1  # sequence length (RNN)


# fmt: off
# Two plans: each compiles one JAX step per dtype (about 1 s of XLA time each, the RNN's most).
# The MLP has batch norm in both hidden layers (the state), the RNN torch's two biases.
TRAJECTORY_CATALOG = (
    Plan(TrajectorySpec(mlp.MLPSpec((4, 8, 8, 3), "relu", "identity", "cross_entropy", batchnorm=True),
                        lr=0.5, norm_type=math.inf), steps=4, N=6),
    Plan(TrajectorySpec(rnn.RNNSpec(3, 4, 2, "tanh", "every", "mse"), lr=0.3, clip_kind="value",
                        max_norm=None, clip_value=1.0), steps=3, N=2, T=5),
)
# The golden set's plans (conformance/golden): the ci catalog's and a plain MLP; changing one
# changes the stored data (python -m conformance golden --write).
GOLDEN_PLANS = (
    *TRAJECTORY_CATALOG,
    Plan(TrajectorySpec(mlp.MLPSpec((3, 5, 2), "tanh", "identity", "mse"), lr=0.3, clip_kind="value",
                        max_norm=None, clip_value=1.0), steps=3, N=4),
)
# fmt: on


def _batch(network: mlp.MLPSpec | rnn.RNNSpec, rng: np.random.Generator, N: int, T: int) -> Arrays:
    lead: tuple[int, ...]
    batch: Arrays
    if isinstance(network, mlp.MLPSpec):
        D, C, lead = network.sizes[0], network.sizes[-1], (N,)
        batch = {"X": rng.standard_normal((N, D))}
    else:
        D, C = network.input_size, network.output_size
        lead = outputs_shape(network, T, N)[:-1]
        batch = {"X": rng.standard_normal((T, N, D)), "h0": rng.standard_normal((N, network.hidden_size))}
    if network.loss == "cross_entropy":
        batch["targets"] = rng.integers(0, C, size=lead)
    else:
        batch["targets"] = rng.standard_normal((*lead, C))
    return batch


def trajectory_case(plan: Plan, seed: int, ratio: float | None = None) -> Case:
    """Float64 initial parameters and state, stacked per-step batches, the threshold from step
    0's gradient. Running statistics start away from (0, 1): means N(0, 0.5²), variances U(0.5, 2)."""
    spec, steps, N, T = plan
    rng = np.random.default_rng(seed)
    network = replace(spec.network, dtype="float64")
    params = mlp_params(network, rng) if isinstance(network, mlp.MLPSpec) else rnn_params(network, rng)
    state: Arrays = {}
    if isinstance(network, mlp.MLPSpec) and network.batchnorm:
        for l in range(1, len(network.sizes) - 1):  # the layers followed by batch norm
            state[f"running_mean{l}"] = 0.5 * rng.standard_normal(network.sizes[l])
            state[f"running_var{l}"] = rng.uniform(0.5, 2.0, size=network.sizes[l])
    per_step = [_batch(network, rng, N, T) for _ in range(steps)]
    inputs = {k: np.stack([b[k] for b in per_step]) for k in per_step[0]}
    if spec.clip_kind != "none":
        objective = mlp_objective(network) if isinstance(network, mlp.MLPSpec) else rnn_objective(network)
        _, g, _ = objective(params, state, per_step[0])
        ratio = RATIOS[int(rng.integers(len(RATIOS)))] if ratio is None else ratio
        size = global_norm(g, spec.norm_type if spec.clip_kind == "global_norm" else math.inf)
        size = size or 1.0  # a zero first gradient (dead ReLUs): no threshold 0 (see clip-zero-max-norm)
        if spec.clip_kind == "global_norm":
            spec = replace(spec, max_norm=ratio * size)
        else:
            spec = replace(spec, clip_value=ratio * size)
    return Case("trajectory", spec, params, inputs, state, seed=seed)


@st.composite
def free_plans(draw: st.DrawFn) -> Plan:
    """MLPs of depth 1-3 (widths 1-8) or RNNs (D 1-4, H 1-5, C 2-3, T 1-6); S 1-5 steps, N 1-6.

    Batch-norm MLPs are kept well conditioned (conditioning is the mlp_bn component's subject): N 4-8 and
    widths >= 2 (with N = 2 or one feature, x̂ = ±1 and the backward cancels almost entirely) and
    no identity activation, which would let a later batch norm cancel an earlier β exactly,
    leaving a zero reference against rounding residue.
    """
    N = draw(st.integers(1, 6))
    if draw(st.booleans()):
        batchnorm = draw(st.booleans())
        if batchnorm:
            N = draw(st.integers(4, 8))
            specs = mlp_specs(max_depth=3, widths=(2, 3, 5, 8), activations=NONLINEAR)
        else:
            specs = mlp_specs(max_depth=3, widths=(1, 2, 3, 5, 8), activations=CONVENTIONAL)
        network: mlp.MLPSpec | rnn.RNNSpec = replace(draw(specs), batchnorm=batchnorm)
        T = 1
    else:
        network = rnn.RNNSpec(
            draw(st.integers(1, 4)),
            draw(st.integers(1, 5)),
            draw(st.integers(2, 3)),
            draw(st.sampled_from(rnn.NONLINEARITIES)),
            draw(st.sampled_from(rnn.READOUTS)),
            draw(st.sampled_from(("mse", "cross_entropy"))),
        )
        T = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(CLIP_KINDS))
    spec = TrajectorySpec(
        network,
        lr=draw(st.sampled_from((0.05, 0.1, 0.3, 0.5))),
        clip_kind=kind,
        max_norm=1.0 if kind == "global_norm" else None,
        clip_value=1.0 if kind == "value" else None,
        norm_type=draw(st.sampled_from((2.0, math.inf))),
    )
    return Plan(spec, draw(st.integers(1, 5)), N, T)


@st.composite
def trajectory_cases(draw: st.DrawFn, profile: Profile) -> Case:
    plan = draw(catalog_or(profile, TRAJECTORY_CATALOG, free_plans()))
    convention = draw(st.sampled_from(("torch", "optax")))  # the reference's own rows: either
    if convention == "optax":
        plan = plan._replace(spec=replace(plan.spec, convention="optax", norm_type=2.0))
    return trajectory_case(plan, draw(seeds()))
