"""A whole population through torch in one call: `torch.func.vmap` over `functional_call`.

The modules are the adapters' own (`TorchMLP` of nn.Linear, nn.BatchNorm1d and
torch.nn.functional activations; `TorchRNN` of nn.RNN and an nn.Linear readout), built
once per spec; vmap gives every member its own parameters, buffers and batch. Each
member's forward runs once, and its pullback twice: under the random upstream gradient
dY and under the loss. Batch norm's running statistics are updated in place by torch's
own module, which torch.func allows only outside a gradient transform, so in training
mode a second copy of the module with `track_running_stats=False` (the same batch
statistics, none stored) is differentiated, and the first runs without gradients to
update the member's buffers.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, vjp, vmap

from conformance.backend import cast_floats
from conformance.components.mlp import torch_adapter as mlp
from conformance.components.rnn import torch_adapter as rnn
from conformance.frameworks.torch import from_numpy, to_numpy
from conformance.hunt.populations import Population
from conformance.hunt.reference import Results

CPU = torch.device("cpu")


def run(population: Population, spec: Any, dtype: str) -> Results:
    """The groups of conformance.hunt.reference, from torch, in `dtype`."""
    spec = replace(spec, dtype=dtype)  # spec carries torch's conventions
    runner = _mlp if hasattr(spec, "sizes") else _rnn
    with torch.no_grad():  # vjp inside takes its own graph; nothing else needs one
        results = runner(population, spec, dtype)
    return {g: {k: to_numpy(v) for k, v in a.items()} for g, a in results.items()}


def _tensors(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, torch.Tensor]:
    return {k: from_numpy(v) for k, v in cast_floats(arrays, dtype).items()}  # bfloat16 by its bits


@cache
def _mlp_models(spec: Any, train: bool) -> tuple[mlp.TorchMLP, mlp.TorchMLP]:
    """(the module that updates the running statistics, the module that is differentiated)."""
    model = mlp.TorchMLP(spec, CPU).train(train)
    differentiated = copy.deepcopy(model)
    if train:
        for norm in differentiated.norms:
            norm.track_running_stats = False
    return model, differentiated


def _mlp(population: Population, spec: Any, dtype: str) -> dict[str, dict[str, torch.Tensor]]:
    train = population.bucket.train
    model, differentiated = _mlp_models(spec, train)
    names = mlp.param_names(spec)
    params = {names[k]: v for k, v in _tensors(population.stacked("params", list(names)), dtype).items()}
    inputs = _tensors(population.stacked("inputs", ["X", "targets", "dY"]), dtype)
    buffers: dict[str, torch.Tensor] = {}
    if spec.batchnorm:
        state = _tensors(population.stacked("state"), dtype)
        for i, l in enumerate(spec.bn_layers()):
            buffers[f"norms.{i}.running_mean"] = state[f"running_mean{l}"]
            buffers[f"norms.{i}.running_var"] = state[f"running_var{l}"]
            buffers[f"norms.{i}.num_batches_tracked"] = torch.zeros(len(population), dtype=torch.long)

    def member(
        p: dict[str, torch.Tensor],
        b: dict[str, torch.Tensor],
        x: torch.Tensor,
        t: torch.Tensor,
        u: torch.Tensor,
    ) -> Any:
        b = {k: v.clone() for k, v in b.items()}
        if spec.batchnorm and train:
            functional_call(model, {**p, **b}, (x,))  # updates b, the member's running statistics
        seen = {} if train else b

        def f(p: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            Y = functional_call(differentiated, {**p, **seen}, (x,))
            return Y, mlp.loss_of(spec, Y, t)

        with torch.enable_grad():
            (Y, loss), pullback = vjp(f, p, x)
            g = pullback((u, torch.zeros_like(loss)))
            gl = pullback((torch.zeros_like(Y), torch.ones_like(loss)))
        return Y, loss, g, gl, b

    Y, loss, g, gl, b = vmap(member)(params, buffers, inputs["X"], inputs["targets"], inputs["dY"])

    def by_reference_name(grads: tuple[dict[str, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**{k: grads[0][names[k]] for k in names}, "X": grads[1]}

    results = {
        "forward": {"Y": Y, "loss": loss},
        "gradient": by_reference_name(g),
        "loss-gradient": by_reference_name(gl),
    }
    if spec.batchnorm and train:
        results["state"] = {
            f"{stat}{l}": b[f"norms.{i}.{stat}"]
            for i, l in enumerate(spec.bn_layers())
            for stat in ("running_mean", "running_var")
        }
    return results


@cache
def _rnn_model(spec: Any) -> rnn.TorchRNN:
    return rnn.TorchRNN(spec, CPU)


def _rnn(population: Population, spec: Any, dtype: str) -> dict[str, dict[str, torch.Tensor]]:
    model = _rnn_model(spec)
    names = rnn.PARAM_NAMES
    params = {names[k]: v for k, v in _tensors(population.stacked("params", list(names)), dtype).items()}
    inputs = _tensors(population.stacked("inputs", ["X", "h0", "targets", "dY"]), dtype)

    def member(
        p: dict[str, torch.Tensor], x: torch.Tensor, h0: torch.Tensor, t: torch.Tensor, u: torch.Tensor
    ) -> Any:
        def f(p: dict[str, torch.Tensor], x: torch.Tensor, h0: torch.Tensor) -> Any:
            Y = functional_call(model, p, (x, h0))
            return Y, rnn.loss_of(spec, Y, t)

        with torch.enable_grad():
            (Y, loss), pullback = vjp(f, p, x, h0)
            g = pullback((u, torch.zeros_like(loss)))
            gl = pullback((torch.zeros_like(Y), torch.ones_like(loss)))
        return Y, loss, g, gl

    Y, loss, g, gl = vmap(member)(params, inputs["X"], inputs["h0"], inputs["targets"], inputs["dY"])

    def by_reference_name(grads: Any) -> dict[str, torch.Tensor]:
        return {**{k: grads[0][names[k]] for k in names}, "X": grads[1], "h0": grads[2]}

    return {
        "forward": {"Y": Y, "loss": loss},
        "gradient": by_reference_name(g),
        "loss-gradient": by_reference_name(gl),
    }
