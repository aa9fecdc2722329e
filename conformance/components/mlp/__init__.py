"""The MLP: Linear -> activation layers, mean-squared-error or cross-entropy loss.

Reference refimpl.mlp; torch through `nn.Linear` and `torch.nn.functional`
(torch_adapter.py), JAX through flax `Dense`, `jax.nn` and optax losses
(jax_adapter.py). Inputs "X"; outputs "Y" and "loss"; gradients every parameter
("W1", "b1", ...) and "X". The generic properties apply, batch decomposition
included, and the leaky-ReLU kink convention is pinned on cases with exact zeros. Each
framework's default initialization is held to the reference's scheme for it
(conformance.initialization).
"""

from __future__ import annotations

from functools import partial

from conformance import properties as p
from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.mlp.boundary import BOUNDARY
from conformance.components.mlp.reference import mlp_init, mlp_reference
from conformance.components.mlp.rounding import mlp_rounding
from conformance.components.mlp.strategies import MLP_CATALOG, extreme_cases, init_cases, mlp_case, mlp_cases
from conformance.initialization import init_distribution
from refimpl.mlp import MLPSpec


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set (conformance.golden)."""
    return mlp_case(MLP_CATALOG[seed % len(MLP_CATALOG)], batch=4, seed=seed)


MLP = Component(
    "mlp", MLPSpec, ("X",), ("Y", "loss"), mlp_reference, golden_case,
    checks=(
        Check(p.FORWARD_AGREEMENT, mlp_cases, "forward"),
        Check(p.GRADIENT_AGREEMENT, mlp_cases, "gradient"),
        Check(p.LOSS_GRADIENT_AGREEMENT, mlp_cases, "loss_gradient"),
        Check(p.FINITE_DIFFERENCES, mlp_cases, "finite_differences"),
        Check(p.REVERSE_VS_FORWARD, mlp_cases, "reverse_vs_forward"),
        Check(p.UPSTREAM_LINEARITY, mlp_cases, "upstream_linearity"),
        Check(p.BATCH_DECOMPOSITION, mlp_cases, "batch_decomposition"),
        Check(p.KINK_CONVENTION, partial(mlp_cases, kinks=True), "kink_convention"),
        Check(p.EXTREME_AGREEMENT, extreme_cases, "extreme"),
        Check(init_distribution(mlp_init), init_cases, "init_distribution"),
    ),
    adapters={"torch": "conformance.components.mlp.torch_adapter",
              "jax": "conformance.components.mlp.jax_adapter"},
    rounding=mlp_rounding,
    boundary=BOUNDARY,
)

COMPONENTS = (MLP,)
