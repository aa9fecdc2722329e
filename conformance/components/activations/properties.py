"""The activations' own property (the kink at 0 of ELU and SELU is the generic `kink-convention`).

Ids:
  softplus-threshold   outputs and every gradient with first-layer pre-activations exactly at and
                       just past βz = 20 (torch's switch to the identity) and z = 20, under each
                       framework's convention (torch: threshold 20; jax: none, β = 1)
"""

from __future__ import annotations

from conformance.backend import Backend
from conformance.compare import Context
from conformance.component import Property
from conformance.properties import forward_agreement, gradient_agreement


def threshold_agreement(ctx: Context, backend: Backend) -> None:
    forward_agreement(ctx, backend)
    gradient_agreement(ctx, backend)


SOFTPLUS_THRESHOLD = Property("softplus-threshold", threshold_agreement, frameworks_only=True)
