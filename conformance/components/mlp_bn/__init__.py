"""The batch-normalized MLP: Linear -> batch norm -> activation in every hidden layer.

Reference refimpl.mlp_bn under each framework's conventions (momentum and its
direction, the running-variance estimator, ε, a training batch of one); torch through
`nn.BatchNorm1d` (torch_adapter.py), JAX through flax `BatchNorm` with mutable
`batch_stats` (jax_adapter.py). Outputs "Y", "loss" and the running statistics as
state; gradients every parameter, "X", and δˡ = ∂L/∂Zˡ as "Z1", ... (the input
gradient of each normalization, which the invariants of properties.py are about).
Training mode unless a check says eval; no batch decomposition (batch statistics
couple the rows), hence no per-example gradients nor row blocks either. Sizes, layouts and
paths (conformance.layouts, conformance.paths): batch statistics over batches that cross
vector widths, `F.batch_norm` against `nn.BatchNorm1d`, JAX op by op, torch.compile.
"""

from __future__ import annotations

from functools import partial

from conformance import properties as p
from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.mlp.reference import mlp_init
from conformance.components.mlp_bn import properties as bp
from conformance.components.mlp_bn.boundary import BOUNDARY
from conformance.components.mlp_bn.range_ends import (
    BN_RANGE_ENDS,
    BN_RANGE_ENDS_TINY,
    spread_cases,
    tiny_cases,
)
from conformance.components.mlp_bn.reference import mlp_bn_reference
from conformance.components.mlp_bn.rounding import mlp_bn_rounding
from conformance.components.mlp_bn.strategies import (
    CI_BATCH,
    EVAL_SPECS,
    FIRST,
    GOLDEN,
    bn_case,
    bn_cases,
    extreme_cases,
    init_cases,
    path_cases,
    wide_cases,
)
from conformance.initialization import init_distribution
from conformance.layouts import LAYOUT_INVARIANCE, SIZE_AGREEMENT
from conformance.paths import COMPILED_AGREEMENT, PATH_AGREEMENT
from refimpl.mlp import MLPSpec


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set (strategies.GOLDEN: both modes)."""
    spec, train = GOLDEN[seed % len(GOLDEN)]
    return bn_case(spec, CI_BATCH, seed, train=train)


first = partial(bn_cases, ci=FIRST)
evaluation = partial(bn_cases, train=False, ci=EVAL_SPECS)
ill_conditioned = partial(bn_cases, ci=FIRST, ill_conditioned=True)

MLP_BN = Component(
    "mlp_bn",
    MLPSpec,
    ("X",),
    ("Y", "loss"),
    mlp_bn_reference,
    golden_case,
    checks=(
        # training mode: the generic properties
        Check(p.FORWARD_AGREEMENT, bn_cases, "forward"),
        Check(p.GRADIENT_AGREEMENT, bn_cases, "gradient"),
        Check(p.LOSS_GRADIENT_AGREEMENT, bn_cases, "loss_gradient"),
        Check(p.FINITE_DIFFERENCES, bn_cases, "finite_differences"),
        Check(p.REVERSE_VS_FORWARD, first, "reverse_vs_forward"),
        Check(p.UPSTREAM_LINEARITY, bn_cases, "upstream_linearity"),
        # running statistics, eval mode
        Check(bp.STATE_AGREEMENT, bn_cases, "state"),
        Check(bp.EVAL_AGREEMENT, evaluation, "eval"),
        # invariants and conventions
        Check(bp.BN_GRADIENT_SUMS, bn_cases, "gradient_sums"),
        Check(bp.BN_SHIFT_SCALE_INVARIANCE, first, "shift_scale"),
        Check(bp.BN_EVAL_AFFINE, partial(bn_cases, train=False, ci=EVAL_SPECS, affine=True), "eval_affine"),
        Check(bp.BN_BATCH_OF_ONE, partial(bn_cases, ci=FIRST, batch=1), "batch_of_one"),
        Check(bp.BN_ILL_CONDITIONED, ill_conditioned, "ill_conditioned"),
        Check(bp.BN_ILL_CONDITIONED_TWO_PASS, ill_conditioned, "ill_conditioned_two_pass"),
        Check(p.EXTREME_AGREEMENT, extreme_cases, "extreme"),
        Check(BN_RANGE_ENDS, spread_cases, "range_ends"),
        Check(BN_RANGE_ENDS_TINY, tiny_cases, "range_ends_tiny"),
        # initialization: W as the MLP's, γ = 1 and β = 0 in both frameworks
        Check(init_distribution(mlp_init), init_cases, "init_distribution"),
        # sizes, layouts and paths (conformance.layouts, conformance.paths)
        Check(SIZE_AGREEMENT, wide_cases, "size_agreement"),
        Check(LAYOUT_INVARIANCE, wide_cases, "layout_invariance"),
        Check(PATH_AGREEMENT, path_cases, "path_agreement"),
        Check(COMPILED_AGREEMENT, partial(path_cases, compiled=True), "compiled_agreement"),
    ),
    adapters={
        "torch": "conformance.components.mlp_bn.torch_adapter",
        "jax": "conformance.components.mlp_bn.jax_adapter",
    },
    rounding=mlp_bn_rounding,
    boundary=BOUNDARY,
)

COMPONENTS = (MLP_BN,)
