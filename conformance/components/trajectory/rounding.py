"""Trajectories' rounding bound: refimpl.train's SGD steps in conformance.rounding's arithmetic.

Parameters and running statistics carry their bounds from step to step: step t runs the
network's forward and backward (the MLP's, the batch-normalized MLP's or the RNN's
rounding module) on θ_t and s_t with their bounds, clips (components/clip/rounding.py)
and updates θ_{t+1} = θ_t - η ĝ_t, so an error made in step 1 is carried, through every
later product, into the final parameters. flax trains batch norm with its default
variance formula, E[x²] - E[x]², torch with two passes: the batch variance's rounding is
that of whichever errs more (components/mlp_bn/rounding.py, batch_variance); the formula
itself is pinned down by mlp_bn's bn-ill-conditioned.
"""

from __future__ import annotations

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.clip.rounding import clipped, global_norm
from conformance.components.mlp.rounding import Grads, network_passes
from conformance.components.mlp_bn.rounding import mlp_bn_passes
from conformance.components.rnn.rounding import rnn_passes
from conformance.components.trajectory.reference import TrajectorySpec, batches
from conformance.rounding import Arithmetic, Uncertain
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec

LOSS = {"loss": np.ones(())}


def objective(
    ar: Arithmetic, network: MLPSpec | RNNSpec, params: Grads, state: dict[str, Uncertain], batch: Arrays
) -> tuple[Uncertain, Grads, dict[str, Uncertain]]:
    """(L_t, ∂L_t/∂θ_t, s_{t+1}) with their bounds, in training mode."""
    X = ar.rounded(batch["X"])
    if isinstance(network, MLPSpec) and network.batchnorm:
        _, loss, grads, new_state = mlp_bn_passes(
            ar, network, params, X, batch["targets"], state, True, LOSS, variance="either"
        )
        return loss, grads, new_state
    if isinstance(network, MLPSpec):
        _, loss, grads = network_passes(ar, network, params, X, batch["targets"], LOSS)
        return loss, grads, state
    _, loss, grads, _ = rnn_passes(
        ar,
        network,
        params,
        X,
        ar.rounded(batch["h0"]),
        batch["targets"],
        LOSS,
        network.truncation,
    )
    return loss, grads, state


def trajectory_rounding(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """Error bounds for trajectory_reference: every step's loss and norm, the final
    parameters and the final state."""
    spec: TrajectorySpec = case.spec
    network = spec.network_spec()
    sgd = spec.sgd()
    ar = Arithmetic(spec.dtype)
    params = {k: ar.rounded(v) for k, v in case.params.items()}
    state = {k: ar.rounded(v) for k, v in case.state.items()}
    lr = ar.rounded(sgd.lr)
    folded = spec.model == "rnn" and spec.rnn_biases == "one"
    if folded:  # flax's one bias b = b_ih + b_hh, trained; b_ih reported as b - b_hh
        b = ar.add(params["b_ih"], params["b_hh"])
        params["b_ih"] = ar.sub(b, params["b_hh"])
    losses, norms = [], []
    for batch in batches(case):
        loss, grads, state = objective(ar, network, params, state, batch)
        trained = {k: g for k, g in grads.items() if k in params and k not in sgd.frozen}
        if sgd.clip is None:
            update, norm = trained, global_norm(ar, trained, 2.0)
        else:
            update, norm = clipped(ar, sgd.clip, trained)
        params = {k: ar.sub(p, ar.mul(lr, update[k])) if k in update else p for k, p in params.items()}
        losses.append(loss)
        norms.append(norm)
    if folded:
        params["b_ih"] = ar.sub(ar.add(params["b_ih"], params["b_hh"]), params["b_hh"])
    outputs = {"loss": ar.bound(ar.stack(losses))}
    if spec.clip_kind == "global_norm":
        outputs["norm"] = ar.bound(ar.stack(norms))
    outputs.update({f"final/{k}": ar.bound(p) for k, p in params.items()})
    return Outcome(outputs, {}, {k: ar.bound(s) for k, s in state.items()})
