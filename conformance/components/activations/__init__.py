"""GELU (exact and tanh), ELU, SELU, SiLU and softplus, one component each: "mlp_gelu", ...

Each is the MLP of conformance/components/mlp with that activation in its hidden layers (its
reference runner and its torch and JAX adapters: `nn.GELU`, `F.gelu(approximate="tanh")`,
`F.elu`, `F.selu`, `F.silu`, `F.softplus`; `jax.nn.gelu(approximate=...)`, `jax.nn.elu`, ...),
so the matrix has a row per activation and property. Its rounding bound is the MLP's, with
the smooth activations' steps (components/mlp/smooth_rounding.py). The generic properties run on it; ELU
and SELU pin their derivative at 0 (`kink-convention`, α ≠ 1 so the two sides differ), softplus
its threshold (`softplus-threshold`).
"""

from __future__ import annotations

from functools import partial

from conformance import properties as p
from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.activations import properties as ap
from conformance.components.activations.boundary import boundary
from conformance.components.activations.strategies import (
    CATALOG,
    CI_BATCH,
    activation_case,
    activation_cases,
    component_name,
)
from conformance.components.mlp.reference import mlp_reference
from conformance.components.mlp.rounding import mlp_rounding
from refimpl.mlp import MLPSpec
from refimpl.smooth import NAMES

ADAPTERS = {
    "torch": "conformance.components.mlp.torch_adapter",
    "jax": "conformance.components.mlp.jax_adapter",
}


def record(activation: str) -> Component:
    cases = partial(activation_cases, activation=activation)
    checks = [
        Check(p.FORWARD_AGREEMENT, cases, f"{activation}_forward"),
        Check(p.GRADIENT_AGREEMENT, cases, f"{activation}_gradient"),
        Check(p.FINITE_DIFFERENCES, cases, f"{activation}_finite_differences"),
        Check(p.REVERSE_VS_FORWARD, cases, f"{activation}_reverse_vs_forward"),
    ]
    if activation in ("elu", "selu"):
        checks.append(Check(p.KINK_CONVENTION, partial(cases, kinks=True), f"{activation}_kink"))
    if activation == "softplus":
        checks.append(Check(ap.SOFTPLUS_THRESHOLD, partial(cases, threshold=True), "softplus_threshold"))

    def golden_case(seed: int) -> Case:
        return activation_case(CATALOG[activation], CI_BATCH, seed)

    return Component(
        component_name(activation),
        MLPSpec,
        ("X",),
        ("Y", "loss"),
        mlp_reference,
        golden_case,
        checks=tuple(checks),
        adapters=ADAPTERS,
        rounding=mlp_rounding,
        boundary=boundary(activation),
    )


COMPONENTS = tuple(record(activation) for activation in NAMES)
