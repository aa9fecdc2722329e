"""The batch-normalized MLP in Keras: `Dense(use_bias=False)` -> `BatchNormalization` -> activation.

`BatchNormalization(momentum=spec.bn_momentum, epsilon=spec.bn_eps)` (keras 3,
layers/normalization/batch_normalization.py): its trainable variables `gamma`, `beta`
are the reference's γˡ, βˡ; its non-trainable `moving_mean`, `moving_variance` are the
running statistics, passed in and returned by `stateless_call` (training mode: the
batch statistics normalize, and the returned moving statistics are
m·r + (1 - m)·b; eval mode: the moving statistics normalize and come back unchanged).
The batch variance is `keras.ops.moments` -> `jnp.var`, two passes and biased, in both
the normalization and the running average; a batch of one row gives σ² = 0, no error.
Keras has one variance computation, so case.meta["bn_variance"] changes nothing here.
"""

from __future__ import annotations

from typing import Any

from conformance.backend import Outcome, require_conventions
from conformance.case import Arrays, Case
from conformance.frameworks.jax_paths import paths as paths
from conformance_keras import mlp

CONVENTIONS: dict[str, object] = {
    **mlp.CONVENTIONS,
    "bn_momentum": 0.99,  # BatchNormalization(momentum=0.99): r <- m r + (1 - m) b
    "bn_momentum_convention": "flax",  # m weighs the old running value, as flax's
    "bn_running_var": "biased",  # ops.moments -> jnp.var (ddof=0) feeds the running variance
    "bn_eps": 1e-3,  # BatchNormalization(epsilon=1e-3)
    "bn_single_example": "allow",  # no check on N; σ² = 0 for one row
}
_FIXED = ("bn_momentum_convention", "bn_running_var", "bn_single_example")


def check_spec(case: Case) -> None:
    mlp.check_spec(case.spec, batchnorm=True)
    require_conventions("keras", case.spec, CONVENTIONS, _FIXED)


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    check_spec(case)
    return mlp.run_network(case, cotangents, deltas=True)


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    check_spec(case)
    return mlp.jvp_network(case, tangents)
