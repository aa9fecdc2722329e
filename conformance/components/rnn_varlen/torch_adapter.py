"""Padded sequences in torch: `pack_padded_sequence`, `nn.RNN` on the PackedSequence,
`pad_packed_sequence`, and an `nn.Linear` readout on the packed rows.

X (T, N, D) time-major and the lengths go to `pack_padded_sequence(X, lengths,
enforce_sorted=...)`: True exactly when the batch comes sorted by decreasing length (what
torch requires for it), False otherwise (torch sorts it, and puts the outputs and h_n back in
the batch's order). `pad_packed_sequence(total_length=T)` gives H with 0 at the padded steps
(padding_value). reverse=True: `nn.RNN(bidirectional=True)`, whose reverse direction reads each
packed sequence from its last valid step; the reference's parameters go into the `_reverse`
weights, the forward direction's are 0 and its half of the outputs is not read. The readout
runs on the packed rows (`PackedSequence.data`): readout "every" is padded back (0 at padded
steps), and the loss is taken over the packed rows against the targets packed alike, the mean
over the valid steps. torch.func.jvp does not reach through `_pack_padded_sequence` (forward-mode
AD is not implemented there): reverse-vs-forward skips with torch's message.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from conformance.backend import Outcome, Unsupported, cast_floats
from conformance.case import Arrays, Case
from conformance.components.mlp import torch_adapter as torch_mlp
from conformance.frameworks.torch import from_numpy
from refimpl.varlen import VarLenRNNSpec

CONVENTIONS: dict[str, object] = {
    "zero_length": "raise",  # pack_padded_sequence: "Length of all samples has to be greater than 0"
}
KEYS = ("W_ih", "W_hh", "b_ih", "b_hh")
TORCH_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def param_names(spec: VarLenRNNSpec) -> dict[str, str]:
    suffix = "_reverse" if spec.reverse else ""
    names = {k: f"rnn.{n}{suffix}" for k, n in zip(KEYS, TORCH_NAMES, strict=True)}
    return {**names, "W_out": "readout.weight", "b_out": "readout.bias"}


def pack(x: torch.Tensor, lengths: torch.Tensor) -> PackedSequence:
    """The valid steps of x (T, N, ...), enforce_sorted when the batch is sorted by length."""
    return pack_padded_sequence(x, lengths, enforce_sorted=bool((lengths[:-1] >= lengths[1:]).all()))


class PackedRNN(nn.Module):
    def __init__(self, spec: VarLenRNNSpec, device: torch.device) -> None:
        super().__init__()
        dtype = getattr(torch, spec.dtype)
        self.spec = spec
        self.rnn = nn.RNN(
            spec.input_size,
            spec.hidden_size,
            nonlinearity=spec.nonlinearity,
            bidirectional=spec.reverse,
            dtype=dtype,
            device=device,
        )
        self.readout = nn.Linear(spec.hidden_size, spec.output_size, dtype=dtype, device=device)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor) -> Any:
        """(Y, H (T, N, H), h_n (N, H), the packed readout rows, the packed output)."""
        hx = torch.stack([torch.zeros_like(h0), h0]) if self.spec.reverse else h0[None]
        out, h_n = self.rnn(pack(X, lengths), hx)
        H_size = self.spec.hidden_size
        rows = out.data[:, -H_size:]  # the reverse half for a bidirectional RNN
        T = X.shape[0]
        H = pad_packed_sequence(out, total_length=T)[0][..., -H_size:]
        if self.spec.readout == "last":
            return self.readout(h_n[-1]), H, h_n[-1], None
        Y_rows = self.readout(rows)
        return pad_packed_sequence(out._replace(data=Y_rows), total_length=T)[0], H, h_n[-1], Y_rows


def loss_of(
    spec: VarLenRNNSpec,
    Y: torch.Tensor,
    Y_rows: torch.Tensor | None,
    targets: torch.Tensor,
    lengths: torch.Tensor,
) -> torch.Tensor:
    if spec.readout == "every":  # over the packed rows: the valid steps
        Y, targets = Y_rows, pack(targets, lengths).data
    if spec.loss == "mse":
        return F.mse_loss(Y, targets)
    return F.cross_entropy(Y, targets)


def _prepare(case: Case, device: torch.device) -> tuple[PackedRNN, dict[str, torch.Tensor]]:
    spec: VarLenRNNSpec = case.spec
    model = PackedRNN(spec, device)
    params = cast_floats(case.params, spec.dtype)
    own = dict(model.named_parameters())
    with torch.no_grad():
        for p in own.values():
            p.zero_()  # the forward direction of a reversed RNN is not read
        for ref_name, torch_name in param_names(spec).items():
            own[torch_name].copy_(from_numpy(params[ref_name]))
    x = cast_floats(case.inputs, spec.dtype)
    tensors = {k: from_numpy(x[k]).to(device) for k in ("X", "h0", "targets")}
    tensors["lengths"] = from_numpy(x["lengths"]).to(torch.int64)  # on the CPU, as torch asks
    return model, tensors


def _numpy(t: torch.Tensor) -> np.ndarray:
    return torch_mlp._numpy(t)


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    model, t = _prepare(case, device)
    X, h0 = t["X"].requires_grad_(True), t["h0"].requires_grad_(True)
    Y, H, h_n, rows = model(X, t["lengths"], h0)
    loss = loss_of(case.spec, Y, rows, t["targets"], t["lengths"])
    outputs = {"Y": Y, "H": H, "h_n": h_n, "loss": loss}
    result = {k: _numpy(v) for k, v in outputs.items()}
    if not cotangents:
        return Outcome(result, {}, {})
    cot = cast_floats(cotangents, case.spec.dtype)
    total = sum((outputs[k] * from_numpy(c).to(device)).sum() for k, c in cot.items())
    names = param_names(case.spec)
    own = dict(model.named_parameters())
    wrt = [own[names[k]] for k in names] + [X, h0]
    grads = torch.autograd.grad(total, wrt, allow_unused=True, materialize_grads=True)
    return Outcome(result, {k: _numpy(g) for k, g in zip([*names, "X", "h0"], grads, strict=True)}, {})


def jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    """torch.func.jvp of (Y, loss) along tangents for every parameter, X and h0."""
    model, t = _prepare(case, device)
    names = param_names(case.spec)
    own = dict(model.named_parameters())
    primals = tuple(own[names[k]].detach() for k in names) + (t["X"], t["h0"])
    d = cast_floats(tangents, case.spec.dtype)
    directions = tuple(from_numpy(d[k]).to(device) for k in [*names, "X", "h0"])

    def outputs(*values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = {names[k]: v for k, v in zip(names, values[:-2], strict=True)}
        Y, _, _, rows = torch.func.functional_call(model, weights, (values[-2], t["lengths"], values[-1]))
        return Y, loss_of(case.spec, Y, rows, t["targets"], t["lengths"])

    try:
        dY, dloss = torch.func.jvp(outputs, primals, directions)[1]
    except NotImplementedError as err:
        raise Unsupported(f"torch.func.jvp through pack_padded_sequence: {str(err).splitlines()[0]}") from err
    return {"Y": _numpy(dY), "loss": _numpy(dloss)}
