"""The MLP component: refimpl.mlp answering the backend contract."""

from __future__ import annotations

import numpy as np

from conformance.backends.base import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from conformance.components.base import Component
from refimpl.mlp import MLPSpec, loss_backward, loss_forward, mlp_backward, mlp_forward


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


def golden_case(seed: int) -> Case:
    """A deterministic case for the golden set (conformance.golden)."""
    from conformance.strategies import MLP_CATALOG, mlp_case

    return mlp_case(MLP_CATALOG[seed % len(MLP_CATALOG)], batch=4, seed=seed)


COMPONENT = Component("mlp", MLPSpec, ("X",), ("Y", "loss"), mlp_reference, golden_case)
