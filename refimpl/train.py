"""Training trajectories: SGD steps with optional clipping; params and state in, params and state out.

One step t, with θ_t the parameters, s_t the non-trainable state and B_t the batch:

    L_t, g_t, s_{t+1} = objective(θ_t, s_t, B_t)     forward and backward of the model, g_t = ∂L_t/∂θ_t
    ĝ_t, n_t = clip(g_t)                             refimpl.clip.apply_clip (ĝ_t = g_t without clipping)
    θ_{t+1} = θ_t - η ĝ_t                            torch.optim.SGD(lr=η), optax.sgd(η)

Frozen parameters (`SGDSpec.frozen`) are held fixed: they get no update and their
gradients are left out of ĝ and of the clipping norm, as a parameter with
requires_grad=False in torch or outside the optimized pytree in optax. The
one-bias RNN convention is an instance: flax's SimpleCell trains one bias
b = b_ih + b_hh, which is b_hh frozen and b_ih moved by -η ∂L/∂b (torch's nn.RNN
trains both, so the sum moves twice as far).

Arithmetic is in the parameters' dtype: θ - η ĝ with η cast to that dtype
(optax: θ + (-η ĝ); torch forms θ + (-η) ĝ in one kernel, which may round once
instead of twice). Nothing is written into an argument: every step returns new
dicts and new arrays. Objectives for the MLP and the Elman RNN are below; a
batch is a dict of arrays ("X", "targets", and "h0" for the RNN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import bptt, mlp, mlp_bn, rnn
from refimpl._validate import describe, require_array, require_real
from refimpl.clip import ClipSpec, apply_clip, global_norm

Array = NDArray[Any]
Params = dict[str, Array]
State = dict[str, Array]
Batch = dict[str, Array]
Objective = Callable[[Params, State, Batch], tuple[float, Params, State]]


@dataclass(frozen=True)
class SGDSpec:
    """Plain SGD (no momentum, no weight decay), optionally after clipping the gradients."""

    lr: float  # η > 0, finite
    clip: ClipSpec | None = None  # None: the gradients as they are
    frozen: tuple[str, ...] = ()  # names of parameters held fixed (see the module docstring)

    def __post_init__(self) -> None:
        lr = require_real("lr", self.lr)
        if lr <= 0.0:
            raise ValueError(f"lr: expected a number > 0, received {lr}")
        object.__setattr__(self, "lr", lr)
        if self.clip is not None and not isinstance(self.clip, ClipSpec):
            raise TypeError(f"clip: expected a ClipSpec or None, received {describe(self.clip)}")
        if not isinstance(self.frozen, tuple) or not all(isinstance(k, str) for k in self.frozen):
            raise TypeError(f"frozen: expected a tuple of parameter names, received {describe(self.frozen)}")


class StepInfo(NamedTuple):
    loss: float  # L_t, before the update
    norm: float  # n_t: the pre-clip global norm of the trained gradients (order clip.norm_type, or 2)


def _require_dict(field: str, value: Any) -> dict[str, Array]:
    if not isinstance(value, dict):
        raise TypeError(f"{field}: expected a dict of arrays, received {describe(value)}")
    for key, array in value.items():
        require_array(f"{field}[{key!r}]", array, finite=False)
    return value


def sgd_update(params: Params, grads: Params, lr: float) -> Params:
    """θ - η g for every parameter in `grads`; the others are returned as they are (not copied).

    Each g has its parameter's shape and dtype (no broadcasting, no promotion); η > 0, and
    a step that overflows the parameters' dtype raises instead of returning inf."""
    _require_dict("params", params)
    _require_dict("grads", grads)
    lr = require_real("lr", lr)
    if lr <= 0.0:
        raise ValueError(f"lr: expected a number > 0, received {lr}")
    unknown = sorted(set(grads) - set(params))
    if unknown:
        raise ValueError(f"grads: expected keys among the parameters {sorted(params)}, received {unknown}")
    new = dict(params)
    for k, g in grads.items():
        p = params[k]
        require_array(f"grads[{k!r}]", g, shape=p.shape, dtype=p.dtype.name, finite=False)
        with np.errstate(over="ignore", invalid="ignore"):
            eta = p.dtype.type(lr)
            new[k] = p - eta * g
        if not np.isfinite(new[k]).all() and np.isfinite(p).all() and np.isfinite(g).all():
            raise ValueError(
                f"lr: expected a step θ - η g within {p.dtype}'s range, received lr = {lr},"
                f" with which params[{k!r}] overflows (max |g| = {np.abs(g).max():.6g})"
            )
    return new


def _require_gradients(result: Any, params: Params, frozen: tuple[str, ...]) -> tuple[float, Params, State]:
    """The objective's (loss, grads, new state): a real loss and a gradient for every trained
    parameter (frozen ones may be left out or are ignored), none for anything else."""
    if not (isinstance(result, tuple) and len(result) == 3):
        raise TypeError(f"objective: expected a tuple (loss, grads, state), received {describe(result)}")
    loss, grads, new_state = result
    if isinstance(loss, bool) or not isinstance(loss, Real):
        raise TypeError(f"objective: expected a real loss, received {describe(loss)}")
    _require_dict("objective's grads", grads)
    _require_dict("objective's state", new_state)
    trained = set(params) - set(frozen)
    missing, unknown = sorted(trained - set(grads)), sorted(set(grads) - set(params))
    if missing or unknown:
        raise ValueError(
            f"objective: expected a gradient for every trained parameter {sorted(trained)},"
            f" received none for {missing} and unknown ones {unknown}"
        )
    return float(loss), grads, new_state


def train_step(
    objective: Objective, sgd: SGDSpec, params: Params, state: State, batch: Batch
) -> tuple[Params, State, StepInfo]:
    """(θ_{t+1}, s_{t+1}, (L_t, n_t)) for one batch."""
    if not callable(objective):
        raise TypeError(f"objective: expected a callable, received {describe(objective)}")
    if not isinstance(sgd, SGDSpec):
        raise TypeError(f"sgd: expected an SGDSpec, received {describe(sgd)}")
    _require_dict("params", params)
    _require_dict("state", state)
    missing = sorted(set(sgd.frozen) - set(params))
    if missing:
        raise ValueError(f"frozen: expected names among the parameters {sorted(params)}, received {missing}")
    loss, grads, new_state = _require_gradients(objective(params, state, batch), params, sgd.frozen)
    trained = {k: g for k, g in grads.items() if k not in sgd.frozen}
    if sgd.clip is None:
        clipped, norm = trained, global_norm(trained)
    else:
        clipped, norm = apply_clip(sgd.clip, trained)
    return sgd_update(params, clipped, sgd.lr), new_state, StepInfo(loss, float(norm))


def train(
    objective: Objective, sgd: SGDSpec, params: Params, state: State, batches: Sequence[Batch]
) -> tuple[Params, State, tuple[StepInfo, ...]]:
    """train_step over the batches in order: the final parameters and state, and each step's info."""
    if isinstance(batches, str | bytes) or not isinstance(batches, Sequence):
        raise TypeError(f"batches: expected a sequence of batch dicts, received {describe(batches)}")
    for i, batch in enumerate(batches):
        if not isinstance(batch, dict):
            raise TypeError(f"batches[{i}]: expected a dict of arrays, received {describe(batch)}")
    infos = []
    for t, batch in enumerate(batches):
        try:
            params, state, info = train_step(objective, sgd, params, state, batch)
        except (ValueError, TypeError) as err:
            if t > 0:  # e.g. a backward pass that overflows at parameters an earlier step made
                err.add_note(f"in step {t + 1} of train, at the parameters of {t} updates with lr = {sgd.lr}")
            raise
        infos.append(info)
    return params, state, tuple(infos)


def _require_batch(batch: Any, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """A dict with `keys` and possibly `optional` ones, nothing else (values: the model checks)."""
    if not isinstance(batch, dict):
        raise TypeError(f"batch: expected a dict of arrays, received {describe(batch)}")
    present = set(batch) - set(optional)
    if present != set(keys):
        raise ValueError(
            f"batch: expected keys {sorted(keys)} (optional {sorted(optional)}), received {sorted(batch)}"
        )


def mlp_objective(spec: mlp.MLPSpec) -> Objective:
    """The MLP's loss on batch {"X", "targets"} and its parameter gradients, in training mode:
    with batch norm the batch's statistics normalize and the running ones are updated (state
    "running_mean1", "running_var1", ..., refimpl.mlp_bn); without it the state is {}."""

    mlp.require_spec(spec)

    def objective(params: Params, state: State, batch: Batch) -> tuple[float, Params, State]:
        _require_batch(batch, ("X", "targets"))
        if spec.batchnorm:
            loss, grads, new_state = mlp_bn.loss_and_grads_state(
                spec, params, batch["X"], batch["targets"], state, train=True
            )
        else:
            mlp_bn.check_state(spec, state)  # {} without batch norm
            loss, grads = mlp.loss_and_grads(spec, params, batch["X"], batch["targets"])
            new_state = {}
        return loss, {k: g for k, g in grads.items() if k != "X"}, new_state

    return objective


def rnn_objective(spec: rnn.RNNSpec) -> Objective:
    """The RNN's loss on batch {"X" (T, N, D), "h0" (N, H), "targets"}, its parameter gradients."""

    rnn.require_spec(spec)

    def objective(params: Params, state: State, batch: Batch) -> tuple[float, Params, State]:
        _require_batch(batch, ("X", "targets"), optional=("h0",))
        loss, grads = bptt.loss_and_grads(spec, params, batch["X"], batch.get("h0"), batch["targets"])
        return loss, {k: g for k, g in grads.items() if k not in ("X", "h0")}, dict(state)

    return objective
