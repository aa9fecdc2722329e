"""Training trajectories: several SGD steps with clipping, on MLPs (with batch norm: and its
running statistics) and on Elman RNNs.

Reference refimpl.train; torch's own loop (`zero_grad`, `backward`, `clip_grad_norm_` or
`clip_grad_value_`, `optim.SGD.step`; torch_adapter.py) and JAX's (`value_and_grad`,
`optax.chain(clip, sgd)`, `apply_updates`; jax_adapter.py). A case's inputs are the
batches of every step; its outputs each step's loss and pre-clip norm and the final
parameters, its state the final running statistics (reference.py).
"""

from __future__ import annotations

from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.trajectory import properties as tp
from conformance.components.trajectory.boundary import BOUNDARY
from conformance.components.trajectory.reference import TrajectorySpec, trajectory_reference
from conformance.components.trajectory.rounding import trajectory_rounding
from conformance.components.trajectory.strategies import GOLDEN_PLANS, trajectory_case, trajectory_cases


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set (strategies.GOLDEN_PLANS)."""
    return trajectory_case(GOLDEN_PLANS[seed % len(GOLDEN_PLANS)], seed, ratio=0.6)


TRAJECTORY = Component(
    "trajectory",
    TrajectorySpec,
    (),
    ("loss", "norm"),
    trajectory_reference,
    golden_case,
    checks=(
        Check(tp.TRAJECTORY_AGREEMENT, trajectory_cases, "agreement"),
        Check(tp.TRAJECTORY_RESTART, trajectory_cases, "restart"),
    ),
    adapters={
        "torch": "conformance.components.trajectory.torch_adapter",
        "jax": "conformance.components.trajectory.jax_adapter",
    },
    rounding=trajectory_rounding,
    boundary=BOUNDARY,
)

COMPONENTS = (TRAJECTORY,)
