"""The MLP's reference runner: refimpl.mlp (refimpl.mlp_bn for batch-norm specs) answering
the backend contract."""

from __future__ import annotations

import numpy as np

from conformance.backend import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from conformance.initialization import INIT_SALT, stacked
from refimpl import init, mlp, mlp_bn
from refimpl.mlp import MLPSpec, loss_backward, loss_forward


def run_reference(case: Case, cotangents: Arrays | None, *, deltas: bool) -> Outcome:
    """refimpl.mlp in case.spec.dtype and case.train: outputs {"Y", "loss"}, the new state,
    grads {"W1", "b1", ..., "X"}; with deltas=True also δˡ = ∂L/∂Zˡ as "Z1", ..., "ZL"."""
    spec: MLPSpec = case.spec
    params = cast_floats(case.params, spec.dtype)
    inputs = cast_floats(case.inputs, spec.dtype)
    state = cast_floats(case.state, spec.dtype)
    cache: mlp.MLPCache | mlp_bn.BNMLPCache
    if spec.batchnorm:
        Y, new_state, cache = mlp_bn.mlp_bn_forward(spec, params, inputs["X"], state, train=case.train)
    else:
        (Y, cache), new_state = mlp.mlp_forward(spec, params, inputs["X"]), {}
    loss, loss_cache = loss_forward(spec, Y, inputs["targets"])
    outputs = {"Y": Y, "loss": np.asarray(loss)}
    grads: Arrays = {}
    if cotangents:
        dY = loss_backward(spec, loss_cache, float(cotangents.get("loss", 0.0)))
        if "Y" in cotangents:
            dY = dY + cotangents["Y"].astype(spec.dtype)
        if isinstance(cache, mlp_bn.BNMLPCache):
            grads, layer_deltas = mlp_bn.mlp_bn_backward_deltas(spec, dY, cache)
        else:
            grads, layer_deltas = mlp.mlp_backward_deltas(spec, dY, cache)
        if deltas:
            grads.update({f"Z{l}": delta for l, delta in enumerate(layer_deltas, start=1)})
    return Outcome(as_float64(outputs), as_float64(grads), as_float64(new_state))


def mlp_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.mlp: outputs {"Y", "loss"}, grads {"W1", ..., "X"}."""
    return run_reference(case, cotangents, deltas=False)


def mlp_init(case: Case, scheme: str, draws: int) -> tuple[Arrays, dict[str, init.Init]]:
    """`draws` initializations by refimpl's init_params under `scheme` (mlp_bn's for batch-norm
    specs), from one generator seeded by the case, stacked; and refimpl.init's law of each tensor."""
    spec: MLPSpec = case.spec
    init_params = mlp_bn.init_params if spec.batchnorm else mlp.init_params
    rng = np.random.default_rng([case.seed, INIT_SALT])
    drawn = stacked(lambda: init_params(spec, rng, scheme), draws)
    return drawn, init.mlp_inits(spec.sizes, spec.batchnorm, scheme)
