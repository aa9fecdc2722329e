"""The batch-normalized MLP "mlp_bn": refimpl.mlp with spec.batchnorm (Linear -> BN ->
activation in every hidden layer), in training or eval mode (case.train).

Outputs "Y" and "loss"; state: the running statistics "running_mean1",
"running_var1", ... after the forward (training mode updates them under the
spec's convention, eval mode normalizes with them and returns them unchanged).
Gradients of Σ <cot, out>: every parameter ("W1", "b1", "gamma1", "beta1", ...),
the input "X", and δˡ = ∂L/∂Zˡ of every layer as "Z1", ..., "ZL", which for a
layer followed by batch norm is the gradient of the normalization's input (the
invariants of conformance/checks_bn.py are about it). The batch-norm
properties live in conformance/checks_bn.py, imported here so they register.
"""

from __future__ import annotations

from conformance import checks_bn  # noqa: F401  (registers the batch-norm properties)
from conformance.backends.base import Outcome
from conformance.case import Arrays, Case
from conformance.components.base import Component
from conformance.components.mlp import run_reference
from refimpl.mlp import MLPSpec


def mlp_bn_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.mlp in case.spec.dtype and case.train: outputs {"Y", "loss"}, the new state,
    grads {"W1", "b1", "gamma1", "beta1", ..., "X", "Z1", ..., "ZL"}."""
    return run_reference(case, cotangents, deltas=True)


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set (strategies_bn.GOLDEN: both modes)."""
    from conformance.strategies_bn import CI_BATCH, GOLDEN, bn_case

    spec, train = GOLDEN[seed % len(GOLDEN)]
    return bn_case(spec, CI_BATCH, seed, train=train)


COMPONENT = Component("mlp_bn", MLPSpec, ("X",), ("Y", "loss"), mlp_bn_reference, golden_case)
