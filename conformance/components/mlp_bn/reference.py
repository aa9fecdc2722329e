"""The batch-normalized MLP's reference runner: refimpl.mlp_bn (Linear -> BN -> activation in
every hidden layer), in training or eval mode (case.train).

Outputs "Y" and "loss"; state: the running statistics "running_mean1",
"running_var1", ... after the forward (training mode updates them under the
spec's convention, eval mode normalizes with them and returns them unchanged).
Gradients of Σ <cot, out>: every parameter ("W1", "b1", "gamma1", "beta1", ...),
the input "X", and δˡ = ∂L/∂Zˡ of every layer as "Z1", ..., "ZL", which for a
layer followed by batch norm is the gradient of the normalization's input (the
invariants of properties.py are about it).
"""

from __future__ import annotations

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.mlp.reference import run_reference


def mlp_bn_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.mlp_bn in case.spec.dtype and case.train: outputs {"Y", "loss"}, the new state,
    grads {"W1", "b1", "gamma1", "beta1", ..., "X", "Z1", ..., "ZL"}."""
    return run_reference(case, cotangents, deltas=True)
