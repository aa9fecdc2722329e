"""The batch-normalized MLP in torch: `nn.Linear` -> `nn.BatchNorm1d` -> activation.

The running statistics of the case are copied into each `nn.BatchNorm1d`'s
`running_mean` and `running_var` buffers; `model.train(case.train)` selects
the mode, and after the forward the buffers (which torch updates in place in
training mode) are read back as the new state. δˡ = ∂L/∂Zˡ ("Z1", ...) is the
gradient of the tensor each `nn.Linear` returned, taken by `torch.autograd.grad`
directly (TorchMLP.taps). A training batch of one row raises torch's own
ValueError ("Expected more than 1 value per channel when training").
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from conformance.backend import Outcome, cast_floats, require_conventions
from conformance.case import Arrays, Case
from conformance.components.mlp import torch_adapter as mlp
from conformance.frameworks.torch import from_numpy
from conformance.frameworks.torch_paths import one_thread, path_of
from refimpl.mlp import MLPSpec

# nn.BatchNorm1d (torch/nn/modules/batchnorm.py, _BatchNorm and F.batch_norm):
# running = (1 - momentum) running + momentum batch, momentum 0.1; the running
# variance takes the unbiased batch variance (N - 1), normalization the biased one.
CONVENTIONS: dict[str, object] = {
    **mlp.CONVENTIONS,
    "bn_momentum": 0.1,
    "bn_momentum_convention": "torch",
    "bn_running_var": "unbiased",
    "bn_eps": 1e-5,
    "bn_single_example": "raise",
}
_FIXED = ("bn_momentum_convention", "bn_running_var", "bn_single_example")


default_init = mlp.default_init  # TorchMLP builds the batch norms too
paths = mlp.paths  # "functional": F.linear and F.batch_norm; "compiled": torch.compile
layouts = mlp.layouts


def check_conventions(spec: MLPSpec) -> None:
    mlp.check_conventions(spec, batchnorm=True)
    require_conventions("torch", spec, CONVENTIONS, _FIXED)


def _model(case: Case, device: torch.device) -> tuple[mlp.TorchMLP, Any, torch.Tensor, torch.Tensor]:
    """The model with the case's parameters and running statistics in its mode, how
    case.meta["path"] calls it (mlp.network), X in case.meta["layout"] and the targets."""
    spec: MLPSpec = case.spec
    check_conventions(spec)
    model, forward = mlp.network(case, device)
    mlp.load(model, case)
    state = cast_floats(case.state, spec.dtype)
    with torch.no_grad():
        for l, norm in enumerate(model.norms, start=1):  # norms[l - 1] follows layer l
            norm.running_mean.copy_(from_numpy(state[f"running_mean{l}"]))
            norm.running_var.copy_(from_numpy(state[f"running_var{l}"]))
    model.train(case.train)
    return (model, forward, *mlp.inputs_of(case, device))


def _state(model: mlp.TorchMLP) -> Arrays:
    state = {}
    for l, norm in enumerate(model.norms, start=1):
        state[f"running_mean{l}"] = mlp._numpy(norm.running_mean)
        state[f"running_var{l}"] = mlp._numpy(norm.running_var)
    return state


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    with one_thread():
        return _run(case, cotangents, device)


def _run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    model, forward, X, targets = _model(case, device)
    Y = forward(X)
    loss = mlp.loss_of(case.spec, Y, targets)
    outputs = {"Y": mlp._numpy(Y), "loss": mlp._numpy(loss)}
    state = _state(model)
    if not cotangents:
        return Outcome(outputs, {}, state)
    objective = mlp.objective(Y, loss, cotangents)
    names = mlp.param_names(case.spec)
    own = dict(model.named_parameters())
    # ∂L/∂Zˡ through the taps, the eager module's intermediates; a compiled graph computes Y
    # inside itself and hands no intermediate back to autograd, so its path answers without them
    taps = [] if path_of(case, mlp.PATHS) == "compiled" else model.taps
    keys = [*names, "X", *(f"Z{l}" for l in range(1, len(taps) + 1))]
    grads = torch.autograd.grad(objective, [own[names[k]] for k in names] + [X, *taps])
    return Outcome(outputs, {k: mlp._numpy(g) for k, g in zip(keys, grads, strict=True)}, state)


def jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    """torch.func.jvp of (Y, loss) along tangents for every parameter and X. In training mode
    the running statistics, which do not enter the outputs, are switched off with
    torch.func.replace_all_batch_norm_modules_ (torch.func refuses their in-place update)."""
    with one_thread():
        return _jvp(case, tangents, device)


def _jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    default_path = replace(case, meta={k: v for k, v in case.meta.items() if k != "path"})
    model, _, X, targets = _model(default_path, device)  # a module of its own: it is changed below
    if case.train:
        torch.func.replace_all_batch_norm_modules_(model)
    names = mlp.param_names(case.spec)
    own = dict(model.named_parameters())
    primals = tuple(own[names[k]].detach() for k in names) + (X.detach(),)
    t = cast_floats(tangents, case.spec.dtype)
    directions = tuple(from_numpy(t[k]).to(device) for k in [*names, "X"])

    def outputs(*values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = {names[k]: v for k, v in zip(names, values[:-1], strict=True)}
        Y = torch.func.functional_call(model, weights, (values[-1],))
        return Y, mlp.loss_of(case.spec, Y, targets)

    _, (dY, dloss) = torch.func.jvp(outputs, primals, directions)
    return {"Y": mlp._numpy(dY), "loss": mlp._numpy(dloss)}
