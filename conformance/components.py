"""The components the suite knows, and the NumPy reference for each.

A component is data: its spec class, the names of its differentiable inputs,
and the reference runner that answers the backend contract
(conformance.backends.base) with refimpl. New components join by adding an
entry here, an adapter per framework, and a property module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.backends.base import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from refimpl.mlp import MLPSpec, loss_backward, loss_forward, mlp_backward, mlp_forward


@dataclass(frozen=True)
class Component:
    name: str
    spec_class: type[Any]
    inputs: tuple[str, ...]  # differentiable inputs: gradients are reported for these
    outputs: tuple[str, ...]
    reference: Callable[[Case, Arrays | None], Outcome]


def mlp_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.mlp in case.spec.dtype: outputs {"Y", "loss"}, grads {"W1", ..., "X"}."""
    spec: MLPSpec = case.spec
    params = cast_floats(case.params, spec.dtype)
    inputs = cast_floats(case.inputs, spec.dtype)
    Y, cache = mlp_forward(spec, params, inputs["X"])
    loss, loss_cache = loss_forward(spec, Y, inputs["targets"])
    outputs = {"Y": Y, "loss": np.asarray(loss)}
    grads: Arrays = {}
    if cotangents:
        dY = loss_backward(spec, loss_cache, float(cotangents.get("loss", 0.0)))
        if "Y" in cotangents:
            dY = dY + cotangents["Y"].astype(spec.dtype)
        grads = mlp_backward(spec, dY, cache)
    return Outcome(as_float64(outputs), as_float64(grads), {})


COMPONENTS: dict[str, Component] = {
    "mlp": Component("mlp", MLPSpec, ("X",), ("Y", "loss"), mlp_reference),
}


def component(name: str) -> Component:
    if name not in COMPONENTS:
        raise ValueError(f"component: expected one of {sorted(COMPONENTS)}, received {name!r}")
    return COMPONENTS[name]
