"""The Elman RNN in torch: `nn.RNN` (time-major, two biases) and an `nn.Linear` readout.

The reference's parameters have torch's layout and go in unchanged:
W_ih -> rnn.weight_ih_l0 (H, D), W_hh -> rnn.weight_hh_l0 (H, H), b_ih -> rnn.bias_ih_l0,
b_hh -> rnn.bias_hh_l0, W_out -> readout.weight (C, H), b_out -> readout.bias.
h0 (N, H) is passed as nn.RNN's hx (1, N, H); X (T, N, D) is time-major, as
nn.RNN's default (batch_first=False).

Truncated BPTT with window k (refimpl/bptt.py): nn.RNN runs over chunks of k
steps; the hidden state crossing a chunk boundary is `.detach()`ed, so the
forward is unchanged and no gradient flows back across a boundary. The loss is
taken over all steps at once, as the reference defines it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.mlp import torch_adapter as torch_mlp
from conformance.frameworks.torch import from_numpy
from refimpl.rnn import RNNSpec

CONVENTIONS: dict[str, object] = {  # nn.RNN has the reference's two biases and layout
    "init": "torch",  # nn.RNN: every tensor U(±1/√H); the readout nn.Linear(H, C): U(±1/√H)
}

PARAM_NAMES = {  # reference name -> torch parameter name
    "W_ih": "rnn.weight_ih_l0",
    "W_hh": "rnn.weight_hh_l0",
    "b_ih": "rnn.bias_ih_l0",
    "b_hh": "rnn.bias_hh_l0",
    "W_out": "readout.weight",
    "b_out": "readout.bias",
}


def window(spec: RNNSpec, T: int) -> int:
    """Steps per chunk: k = spec.truncation, or T (one chunk) for full BPTT."""
    return T if spec.truncation is None else spec.truncation


def initial_state(h0: torch.Tensor) -> torch.Tensor:
    """hx for nn.RNN: (N, H) -> (1, N, H), one layer."""
    return h0.unsqueeze(0)


class TorchRNN(nn.Module):
    def __init__(self, spec: RNNSpec, device: torch.device) -> None:
        super().__init__()
        dtype = getattr(torch, spec.dtype)
        self.spec = spec
        self.rnn = nn.RNN(spec.input_size, spec.hidden_size, nonlinearity=spec.nonlinearity,
                          bias=True, dtype=dtype, device=device)
        self.readout = nn.Linear(spec.hidden_size, spec.output_size, dtype=dtype, device=device)

    def hidden(self, X: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """Every h_t, (T, N, H), chunk by chunk with the state detached at each boundary."""
        T, k = X.shape[0], window(self.spec, X.shape[0])
        h, outs = initial_state(h0), []
        for start in range(0, T, k):
            if start > 0:
                h = h.detach()  # truncated BPTT: nothing flows back across the boundary
            out, h = self.rnn(X[start : start + k], h)
            outs.append(out)
        return torch.cat(outs)

    def readout_of(self, H_all: torch.Tensor) -> torch.Tensor:
        return self.readout(H_all[-1] if self.spec.readout == "last" else H_all)

    def forward(self, X: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return self.readout_of(self.hidden(X, h0))


def loss_of(spec: RNNSpec, Y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if spec.loss == "mse":
        return F.mse_loss(Y, targets)
    return F.cross_entropy(Y.reshape(-1, spec.output_size), targets.reshape(-1))


def _prepare(case: Case, device: torch.device) -> tuple[TorchRNN, dict[str, torch.Tensor]]:
    spec: RNNSpec = case.spec
    model = TorchRNN(spec, device)
    params = cast_floats(case.params, spec.dtype)
    own = dict(model.named_parameters())
    with torch.no_grad():
        for ref_name, torch_name in PARAM_NAMES.items():
            own[torch_name].copy_(from_numpy(params[ref_name]))
    inputs = cast_floats(case.inputs, spec.dtype)
    tensors = {k: from_numpy(inputs[k]).to(device) for k in ("X", "h0", "targets")}
    return model, tensors


def _grads(objective: torch.Tensor, model: TorchRNN, wrt: dict[str, torch.Tensor]) -> Arrays:
    own = dict(model.named_parameters())
    tensors = [own[PARAM_NAMES[k]] for k in PARAM_NAMES] + list(wrt.values())
    grads = torch.autograd.grad(objective, tensors, allow_unused=True, materialize_grads=True)
    return {k: torch_mlp._numpy(g) for k, g in zip([*PARAM_NAMES, *wrt], grads, strict=True)}


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    model, t = _prepare(case, device)
    X, h0 = t["X"].requires_grad_(True), t["h0"].requires_grad_(True)
    Y = model(X, h0)
    loss = loss_of(case.spec, Y, t["targets"])
    outputs = {"Y": torch_mlp._numpy(Y), "loss": torch_mlp._numpy(loss)}
    if not cotangents:
        return Outcome(outputs, {}, {})
    objective = torch_mlp.objective(Y, loss, cotangents)
    return Outcome(outputs, _grads(objective, model, {"X": X, "h0": h0}), {})


def jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    """torch.func.jvp of (Y, loss) along tangents for every parameter, X and h0."""
    model, t = _prepare(case, device)
    keys = [*PARAM_NAMES, "X", "h0"]
    own = dict(model.named_parameters())
    primals = tuple(own[PARAM_NAMES[k]].detach() for k in PARAM_NAMES) + (t["X"], t["h0"])
    d = cast_floats(tangents, case.spec.dtype)
    directions = tuple(from_numpy(d[k]).to(device) for k in keys)

    def outputs(*values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = {PARAM_NAMES[k]: v for k, v in zip(PARAM_NAMES, values[:-2], strict=True)}
        Y = torch.func.functional_call(model, weights, values[-2:])
        return Y, loss_of(case.spec, Y, t["targets"])

    dY, dloss = torch.func.jvp(outputs, primals, directions)[1]
    return {"Y": torch_mlp._numpy(dY), "loss": torch_mlp._numpy(dloss)}


def hidden_grad_norms(case: Case, device: torch.device) -> np.ndarray:
    """‖∂L/∂h_t‖ over (N, H), t = 1..T, full BPTT: nn.RNN one step at a time, and autograd's
    gradient with respect to each returned state h_t (the readout term and the recurrent
    term: h_t feeds both the readout and step t + 1)."""
    model, t = _prepare(case, device)
    h, states = initial_state(t["h0"]), []
    for step in range(t["X"].shape[0]):
        _, h = model.rnn(t["X"][step : step + 1], h)
        states.append(h)
    loss = loss_of(case.spec, model.readout_of(torch.cat(states)), t["targets"])
    grads = torch.autograd.grad(loss, states)
    return np.array([float(torch.linalg.vector_norm(g)) for g in grads])


def default_init(case: Case, device: torch.device) -> Arrays:
    """TorchRNNs as constructed (the property init-distribution)."""
    return torch_mlp.constructed(lambda: TorchRNN(case.spec, device), PARAM_NAMES, case, device)
