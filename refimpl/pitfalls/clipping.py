"""A clipping routine that aliases its buffer, against a correct one, in a training loop.

Both clip by global norm with torch's formula (refimpl.clip): n = ‖g‖₂, c = min(1, M/(n + ε)),
ĝ = c g. For one norm over every tensor, both flatten the gradients into one vector
v = [g_1; g_2; ...] and scale it; they differ in where the scaled vector goes:

* `clip_flat`: back into new gradient arrays, ĝ_k = v[a_k:b_k] reshaped. The step is
  θ ← θ - η ĝ.
* `clip_flat_aliasing`: back through the helper that unflattens a vector "into the
  parameters" (torch's `vector_to_parameters` does `param.data = vec[a:b].view_as(param)`),
  so the parameters become views of the clipped buffer, θ = ĝ, and the gradients the
  optimizer then reads are still the unclipped g. The step is θ ← ĝ - η g = (c - η) g:

      every update throws the weights away and keeps a multiple of the last gradient,

  so the loss never improves on that of a network with weights of norm |c - η| n <= M + η n:
  training stalls. The suite's properties see it: clip-agreement (the .grad that comes
  back is unclipped), clip-norm-bound (‖clip(g)‖ = n > M) and clip-isolation (the
  parameters changed), and trajectory-agreement on the whole run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl.clip import TORCH_EPS, global_norm
from refimpl.mlp import MLPSpec, init_params, loss_and_grads

Array = NDArray[Any]
Params = dict[str, Array]


def _flat_scaled(params: Params, grads: Params, max_norm: float) -> tuple[Array, float]:
    """(c v, n): the gradients as one vector v in the parameters' order (as torch's
    `parameters_to_vector` of `model.parameters()`), scaled by c = min(1, M / (n + ε))."""
    flat = np.concatenate([grads[k].reshape(-1) for k in params])
    norm = float(np.sqrt(flat @ flat))
    flat *= min(1.0, max_norm / (norm + TORCH_EPS))
    return flat, norm


def _unflatten(flat: Array, like: Params) -> Params:
    """Views of `flat` shaped like the arrays of `like`, in order: no copy."""
    views, start = {}, 0
    for key, array in like.items():
        views[key] = flat[start : start + array.size].reshape(array.shape)
        start += array.size
    return views


def clip_flat(params: Params, grads: Params, max_norm: float) -> tuple[Params, Params, float]:
    """(parameters, clipped gradients, n): the parameters untouched, ĝ = c g."""
    flat, norm = _flat_scaled(params, grads, max_norm)
    return params, _unflatten(flat, params), norm


def clip_flat_aliasing(params: Params, grads: Params, max_norm: float) -> tuple[Params, Params, float]:
    """The bug: (parameters that are now views of ĝ, the gradients unclipped, n)."""
    flat, norm = _flat_scaled(params, grads, max_norm)
    return _unflatten(flat, params), grads, norm


class ClipRun(NamedTuple):
    losses: Array  # (S,): L_t before step t
    norms: Array  # (S,): n_t, the pre-clip global norm
    params: Params  # after the last step


def gradients(case: ClipCase, params: Params) -> Params:
    """∂L/∂θ for every parameter of the case's network at `params`."""
    grads = loss_and_grads(case.spec, params, case.X, case.targets)[1]
    return {k: g for k, g in grads.items() if k != "X"}


def train_with(
    clip: Any, spec: MLPSpec, params: Params, X: Array, targets: Array, lr: float, max_norm: float, steps: int
) -> ClipRun:
    """Full-batch SGD, `clip` (clip_flat or clip_flat_aliasing) before each update."""
    losses, norms = [], []
    for _ in range(steps):
        loss, grads = loss_and_grads(spec, params, X, targets)
        grads = {k: g for k, g in grads.items() if k != "X"}
        params, grads, norm = clip(params, grads, max_norm)
        params = {k: p - lr * grads[k] for k, p in params.items()}
        losses.append(loss)
        norms.append(norm)
    return ClipRun(np.array(losses), np.array(norms), params)


class ClipCase(NamedTuple):
    spec: MLPSpec
    params: Params
    X: Array
    targets: Array
    lr: float
    max_norm: float
    steps: int


def clip_case(seed: int = 0) -> ClipCase:
    """An 8-32-32-1 tanh regression on targets y = sin(x·v), torch's init; M = ‖g_0‖ / 4, so
    every step clips, and η = 0.1."""
    spec = MLPSpec((8, 32, 32, 1), "tanh", "identity", "mse")
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng)
    X = rng.standard_normal((64, 8))
    targets = np.sin(X @ rng.standard_normal((8, 1)))
    g0 = loss_and_grads(spec, params, X, targets)[1]
    max_norm = global_norm({k: v for k, v in g0.items() if k != "X"}) / 4.0
    return ClipCase(spec, params, X, targets, 0.1, max_norm, 40)


def clip_runs(case: ClipCase) -> dict[str, ClipRun]:
    """{"correct": ..., "aliasing": ...} from the same start."""
    args = (case.spec, case.params, case.X, case.targets, case.lr, case.max_norm, case.steps)
    return {"correct": train_with(clip_flat, *args), "aliasing": train_with(clip_flat_aliasing, *args)}


def stacked(case: ClipCase) -> dict[str, Array]:
    """The case's batch repeated for every step, stacked on a leading step axis."""
    return {"X": np.stack([case.X] * case.steps), "targets": np.stack([case.targets] * case.steps)}


def in_float32(case: ClipCase) -> ClipCase:
    """The same case computed in float32 (the rounding estimate of the suite's tolerances)."""
    return case._replace(
        spec=replace(case.spec, dtype="float32"),
        params={k: v.astype(np.float32) for k, v in case.params.items()},
        X=case.X.astype(np.float32),
        targets=case.targets.astype(np.float32),
    )
