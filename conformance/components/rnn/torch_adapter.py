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
from conformance.frameworks.torch_paths import laid_out, path_of
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
    """nn.RNN and the readout. batch_first=True builds nn.RNN for batch-major X (N, T, D) (the
    layout "reordered"), whose states come back time-major for the readout; cell=True steps
    an nn.RNNCell holding nn.RNN's own parameters through time instead (the path "cell")."""

    def __init__(
        self, spec: RNNSpec, device: torch.device, batch_first: bool = False, cell: bool = False
    ) -> None:
        super().__init__()
        dtype = getattr(torch, spec.dtype)
        self.spec = spec
        self.time = 1 if batch_first else 0  # X's time axis
        self.rnn = nn.RNN(
            spec.input_size,
            spec.hidden_size,
            nonlinearity=spec.nonlinearity,
            bias=True,
            batch_first=batch_first,
            dtype=dtype,
            device=device,
        )
        self.readout = nn.Linear(spec.hidden_size, spec.output_size, dtype=dtype, device=device)
        self.cell: nn.RNNCell | None = None
        if cell:
            self.cell = nn.RNNCell(
                spec.input_size, spec.hidden_size, nonlinearity=spec.nonlinearity, dtype=dtype, device=device
            )
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):  # shared, not copied
                setattr(self.cell, name, getattr(self.rnn, f"{name}_l0"))

    def stepped(self, X: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """Every h_t, (T, N, H), the cell one step at a time, detached at each chunk boundary."""
        assert self.cell is not None and self.time == 0
        k, h, states = window(self.spec, X.shape[0]), h0, []
        for t in range(X.shape[0]):
            h = self.cell(X[t], h.detach() if t > 0 and t % k == 0 else h)
            states.append(h)
        return torch.stack(states)

    def hidden(self, X: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """Every h_t, (T, N, H), chunk by chunk with the state detached at each boundary."""
        if self.cell is not None:
            return self.stepped(X, h0)
        T, k = X.shape[self.time], window(self.spec, X.shape[self.time])
        h, outs = initial_state(h0), []
        for start in range(0, T, k):
            if start > 0:
                h = h.detach()  # truncated BPTT: nothing flows back across the boundary
            out, h = self.rnn(X.narrow(self.time, start, min(k, T - start)), h)
            outs.append(out)
        return torch.cat(outs, dim=self.time).movedim(self.time, 0)

    def readout_of(self, H_all: torch.Tensor) -> torch.Tensor:
        return self.readout(H_all[-1] if self.spec.readout == "last" else H_all)

    def forward(self, X: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return self.readout_of(self.hidden(X, h0))


def loss_of(spec: RNNSpec, Y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if spec.loss == "mse":
        return F.mse_loss(Y, targets)
    return F.cross_entropy(Y.reshape(-1, spec.output_size), targets.reshape(-1))


def layouts(case: Case, device: torch.device) -> tuple[str, ...]:
    """X and h0 handed over contiguous, strided or transposed, or X batch-major to an nn.RNN
    built with batch_first=True ("reordered")."""
    return ("contiguous", "strided", "transposed", "reordered")


def paths(case: Case, device: torch.device) -> tuple[str, ...]:
    """ "cell": nn.RNNCell stepped through time. torch.compile has no path here: Dynamo refuses
    nn.RNN ("Attempted to wrap RNN, GRU, or LSTM"; torch._dynamo.config.allow_rnn is experimental)."""
    return ("cell",)


def _prepare(case: Case, device: torch.device) -> tuple[TorchRNN, dict[str, torch.Tensor]]:
    """The model with the case's parameters, and X, h0 (in case.meta["layout"]) and targets."""
    spec: RNNSpec = case.spec
    layout = case.meta.get("layout", "contiguous")
    cell = path_of(case, ("cell",)) == "cell"
    if cell and layout != "contiguous":
        raise ValueError(f"meta: the path 'cell' takes X contiguous, received layout {layout!r}")
    model = TorchRNN(spec, device, batch_first=layout == "reordered", cell=cell)
    params = cast_floats(case.params, spec.dtype)
    own = dict(model.named_parameters())
    with torch.no_grad():
        for ref_name, torch_name in PARAM_NAMES.items():
            own[torch_name].copy_(from_numpy(params[ref_name]))
    inputs = cast_floats(case.inputs, spec.dtype)
    tensors = {k: from_numpy(inputs[k]).to(device) for k in ("X", "h0", "targets")}
    if layout == "reordered":  # batch-major storage, (N, T, D)
        tensors["X"] = tensors["X"].transpose(0, 1).contiguous()
    else:
        tensors.update({k: laid_out(tensors[k], layout) for k in ("X", "h0")})
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
    grads = _grads(objective, model, {"X": X, "h0": h0})
    grads["X"] = np.ascontiguousarray(np.moveaxis(grads["X"], model.time, 0))  # (T, N, D)
    return Outcome(outputs, grads, {})


def jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    """torch.func.jvp of (Y, loss) along tangents for every parameter, X and h0."""
    model, t = _prepare(case, device)
    keys = [*PARAM_NAMES, "X", "h0"]
    own = dict(model.named_parameters())
    primals = tuple(own[PARAM_NAMES[k]].detach() for k in PARAM_NAMES) + (t["X"], t["h0"])
    d = cast_floats(tangents, case.spec.dtype)
    d["X"] = np.moveaxis(d["X"], 0, model.time)  # in the order the model takes X
    directions = tuple(from_numpy(np.ascontiguousarray(d[k])).to(device) for k in keys)

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


def per_example_grads(case: Case, device: torch.device) -> Arrays:
    """∂L_n/∂θ, ∂L_n/∂x_n and ∂L_n/∂h0_n of every sequence's own loss L_n, by torch.func.vmap(grad)
    over the batch: {name: (N, *shape)}, "X" as (N, T, 1, D), "h0" as (N, 1, H)."""
    model, t = _prepare(case, device)
    own = dict(model.named_parameters())
    params = {PARAM_NAMES[k]: own[PARAM_NAMES[k]].detach() for k in PARAM_NAMES}
    row_axis = 0 if case.spec.readout == "last" else 1  # of Y and the targets

    def loss_of_row(
        weights: dict[str, torch.Tensor], x: torch.Tensor, h0: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        Y = torch.func.functional_call(model, weights, (x.unsqueeze(1), h0.unsqueeze(0)))
        return loss_of(case.spec, Y, targets.unsqueeze(row_axis))

    d_params, dX, dh0 = torch.func.vmap(
        torch.func.grad(loss_of_row, argnums=(0, 1, 2)), in_dims=(None, 1, 0, row_axis)
    )(params, t["X"], t["h0"], t["targets"])
    grads = {k: torch_mlp._numpy(d_params[PARAM_NAMES[k]]) for k in PARAM_NAMES}
    grads["X"] = torch_mlp._numpy(dX).reshape(dX.shape[0], dX.shape[1], 1, -1)
    grads["h0"] = torch_mlp._numpy(dh0).reshape(dh0.shape[0], 1, -1)
    return grads


def default_init(case: Case, device: torch.device) -> Arrays:
    """TorchRNNs as constructed (the property init-distribution)."""
    return torch_mlp.constructed(lambda: TorchRNN(case.spec, device), PARAM_NAMES, case, device)
