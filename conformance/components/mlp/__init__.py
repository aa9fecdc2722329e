"""The MLP: Linear -> activation layers, mean-squared-error or cross-entropy loss.

Reference refimpl.mlp; torch through `nn.Linear` and `torch.nn.functional`
(torch_adapter.py), JAX through flax `Dense`, `jax.nn` and optax losses
(jax_adapter.py). Inputs "X"; outputs "Y" and "loss"; gradients every parameter
("W1", "b1", ...) and "X". The generic properties apply, batch decomposition
included, and the leaky-ReLU kink convention is pinned on cases with exact zeros. Each
framework's default initialization is held to the reference's scheme for it
(conformance.initialization). Sizes that cross vector widths, X in other memory layouts,
and every path of the framework (conformance.layouts, conformance.paths): its functional
API, JAX op by op, torch.compile, per-example gradients by vmap, a batch by row blocks.
"""

from __future__ import annotations

from functools import partial

from conformance import properties as p
from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.mlp.boundary import BOUNDARY
from conformance.components.mlp.reference import mlp_init, mlp_reference
from conformance.components.mlp.rounding import mlp_rounding
from conformance.components.mlp.strategies import (
    MLP_CATALOG,
    extreme_cases,
    init_cases,
    mlp_case,
    mlp_cases,
    path_cases,
    wide_cases,
)
from conformance.initialization import init_distribution
from conformance.isolation import isolation_cases, nonfinite_isolation
from conformance.layouts import LAYOUT_INVARIANCE, SIZE_AGREEMENT
from conformance.paths import (
    COMPILED_AGREEMENT,
    PATH_AGREEMENT,
    Batching,
    batch_blocks,
    per_example_gradients,
)
from refimpl.mlp import MLPSpec


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set (conformance.golden)."""
    return mlp_case(MLP_CATALOG[seed % len(MLP_CATALOG)], batch=4, seed=seed)


# the batch: the rows of X, the targets, the cotangents and Y (conformance.paths)
ROWS = Batching(lambda case: {"X": 0, "targets": 0, "dY": 0, "dY2": 0, "Y": 0})

MLP = Component(
    "mlp",
    MLPSpec,
    ("X",),
    ("Y", "loss"),
    mlp_reference,
    golden_case,
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
        # sizes, layouts and paths (conformance.layouts, conformance.paths)
        Check(SIZE_AGREEMENT, wide_cases, "size_agreement"),
        Check(LAYOUT_INVARIANCE, wide_cases, "layout_invariance"),
        Check(batch_blocks(ROWS), partial(wide_cases, blocks=True), "batch_blocks"),
        Check(PATH_AGREEMENT, path_cases, "path_agreement"),
        Check(COMPILED_AGREEMENT, partial(path_cases, compiled=True), "compiled_agreement"),
        Check(per_example_gradients(ROWS), path_cases, "per_example_gradients"),
        # special values (conformance.isolation)
        Check(
            nonfinite_isolation(ROWS), partial(isolation_cases, cases=mlp_cases, batching=ROWS), "isolation"
        ),
    ),
    adapters={
        "torch": "conformance.components.mlp.torch_adapter",
        "jax": "conformance.components.mlp.jax_adapter",
    },
    rounding=mlp_rounding,
    boundary=BOUNDARY,
)

COMPONENTS = (MLP,)
