"""Training trajectories in torch: the usual loop, `torch.optim.SGD` and `clip_grad_norm_`.

Every step, in training mode: `opt.zero_grad()`, the loss of the step's batch,
`loss.backward()`, clipping in place on the parameters' .grad (`clip_grad_norm_`,
whose returned norm is reported, or `clip_grad_value_`), `opt.step()`. The
networks are the adapters' own (TorchMLP: nn.Linear layers and, with batch
norm, nn.BatchNorm1d, whose running_mean and running_var buffers carry the
state) and, for the RNN, nn.RNN (time-major, two biases) with an nn.Linear
readout; parameters and buffers are copied in under the reference's names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.clip import torch_adapter as torch_clip
from conformance.components.mlp import torch_adapter as torch_mlp
from conformance.components.mlp_bn import torch_adapter as torch_mlp_bn
from conformance.components.rnn import torch_adapter as torch_rnn
from conformance.components.trajectory.reference import MLP_CONVENTIONS, TrajectorySpec, batches
from conformance.frameworks.torch_paths import one_thread
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec

CONVENTIONS: dict[str, object] = {
    **torch_mlp_bn.CONVENTIONS,  # leaky_relu'(0) and nn.BatchNorm1d's running statistics
    "convention": "torch",  # clip_grad_norm_: coef = clamp(M / (n + 1e-6), max=1)
    "eps": torch_clip.CONVENTIONS["eps"],  # the 1e-6 in torch's clip_grad_norm_
    "rnn_biases": "two",  # nn.RNN trains bias_ih_l0 and bias_hh_l0, each by -lr ∂L/∂b
}


def _given(threshold: float | None) -> float:
    """The clipping kind's threshold, which the spec sets whenever it clips by that kind."""
    if threshold is None:
        raise ValueError("TrajectorySpec: a clipping threshold of None for a kind that clips")
    return threshold


CLIP: dict[str, Callable[[list[nn.Parameter], TrajectorySpec], Any]] = {
    "global_norm": lambda params, spec: torch.nn.utils.clip_grad_norm_(
        params, _given(spec.max_norm), norm_type=spec.norm_type
    ),
    "value": lambda params, spec: torch.nn.utils.clip_grad_value_(params, _given(spec.clip_value)),
    "none": lambda params, spec: None,
}


def network_of(spec: TrajectorySpec) -> MLPSpec | RNNSpec:
    """spec.network in spec.dtype under the conventions the trajectory sets (torch's: CONVENTIONS),
    read from the fields here, not through the reference's TrajectorySpec.network_spec."""
    fixed = {k: getattr(spec, k) for k in MLP_CONVENTIONS if getattr(spec, k) is not None}
    return replace(spec.network, dtype=spec.dtype, **(fixed if isinstance(spec.network, MLPSpec) else {}))


def build(
    network: MLPSpec | RNNSpec, params: Arrays, device: torch.device
) -> tuple[nn.Module, dict[str, str]]:
    """The network with the case's parameters, and reference name -> torch parameter name."""
    if isinstance(network, MLPSpec):
        (torch_mlp_bn if network.batchnorm else torch_mlp).check_conventions(network)
        model: nn.Module = torch_mlp.TorchMLP(network, device)
        names = torch_mlp.param_names(network)
    else:
        model, names = torch_rnn.TorchRNN(network, device), dict(torch_rnn.PARAM_NAMES)
    own = dict(model.named_parameters())
    with torch.no_grad():
        for ref_name, torch_name in names.items():
            own[torch_name].copy_(torch.from_numpy(params[ref_name]))
    return model.train(True), names


def running_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    """State name -> nn.BatchNorm1d buffer ({} without batch norm)."""
    buffers = {}
    for l, norm in enumerate(getattr(model, "norms", []), start=1):  # norms[l - 1] follows layer l
        buffers[f"running_mean{l}"], buffers[f"running_var{l}"] = norm.running_mean, norm.running_var
    return buffers


def loss_of(network: MLPSpec | RNNSpec, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if isinstance(network, MLPSpec):
        return torch_mlp.loss_of(network, model(batch["X"]), batch["targets"])
    return torch_rnn.loss_of(network, model(batch["X"], batch["h0"]), batch["targets"])


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    with one_thread():  # small tensors: waking intra-op threads costs more than the math
        return _run(case, device)


def _run(case: Case, device: torch.device) -> Outcome:
    spec: TrajectorySpec = case.spec
    if spec.convention != "torch" or spec.rnn_biases != "two":
        raise ValueError(
            f"convention, rnn_biases: torch implements 'torch', 'two', received"
            f" {spec.convention!r}, {spec.rnn_biases!r}"
        )
    network = network_of(spec)
    model, names = build(network, cast_floats(case.params, spec.dtype), device)
    buffers = running_stats(model)
    with torch.no_grad():
        for k, v in cast_floats(case.state, spec.dtype).items():
            buffers[k].copy_(torch.from_numpy(v))
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr)
    losses, norms = [], []
    for step in batches(case):
        batch = {k: torch.from_numpy(v).to(device) for k, v in cast_floats(step, spec.dtype).items()}
        opt.zero_grad()
        loss = loss_of(network, model, batch)
        loss.backward()
        norm = CLIP[spec.clip_kind](list(model.parameters()), spec)
        opt.step()
        losses.append(float(loss.detach()))
        norms.append(float(norm) if norm is not None else np.nan)
    outputs = {"loss": np.array(losses, dtype=np.float64)}
    if spec.clip_kind == "global_norm":
        outputs["norm"] = np.array(norms, dtype=np.float64)
    own = dict(model.named_parameters())
    for ref_name, torch_name in names.items():
        outputs[f"final/{ref_name}"] = numpy(own[torch_name])
    return Outcome(outputs, {}, {k: numpy(b) for k, b in buffers.items()})


def numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)
