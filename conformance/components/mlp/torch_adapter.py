"""The MLP in torch: `nn.Linear` layers, `torch.nn.functional` activations and losses.

Parameters are copied into the layers' own `weight` (out, in) and `bias`,
which have the reference's layout, so no transpose is involved. Activations:
`torch.sigmoid`, `torch.tanh`, `F.relu`, `F.leaky_relu(negative_slope)`, `nn.GELU()` (exact, the
default `approximate="none"`), `F.gelu(approximate="tanh")`, `F.elu(alpha)`, `F.selu`, `F.silu`,
`F.softplus(beta, threshold)`. With
spec.batchnorm, an `nn.BatchNorm1d` follows each hidden layer (its `weight`
and `bias` are γ and β); the component "mlp_bn" runs those specs
(components/mlp_bn/torch_adapter.py), this module's `run` only specs without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.frameworks.torch import from_numpy, to_numpy
from conformance.frameworks.torch_paths import compiled, laid_out, path_of, run_compiled
from conformance.initialization import stacked
from refimpl.mlp import MLPSpec

CONVENTIONS: dict[str, object] = {
    "leaky_kink": "slope",  # aten leaky_relu_backward: x > 0 ? g : g * slope
    "elu_kink": "negative",  # aten elu_backward: x <= 0 ? g * α e^x : g (selu: λ times both)
    "softplus_threshold": 20.0,  # F.softplus's default: (βx) > 20 ? x : log1p(e^{βx}) / β
    "init": "torch",  # nn.Linear: U(±1/√fan_in) for weight and bias; nn.BatchNorm1d: γ = 1, β = 0
}

# Looked up at call time, so a test can swap one in to inject a fault. Each reads the spec's fields.
ACTIVATIONS: dict[str, Callable[[torch.Tensor, MLPSpec], torch.Tensor]] = {
    "identity": lambda z, spec: z,
    "sigmoid": lambda z, spec: torch.sigmoid(z),
    "tanh": lambda z, spec: torch.tanh(z),
    "relu": lambda z, spec: F.relu(z),
    "leaky_relu": lambda z, spec: F.leaky_relu(z, negative_slope=spec.slope),
    "gelu": lambda z, spec: nn.GELU()(z),
    "gelu_tanh": lambda z, spec: F.gelu(z, approximate="tanh"),
    "elu": lambda z, spec: F.elu(z, alpha=spec.elu_alpha),
    "selu": lambda z, spec: F.selu(z),
    "silu": lambda z, spec: F.silu(z),
    "softplus": lambda z, spec: F.softplus(z, beta=spec.softplus_beta, threshold=spec.softplus_threshold),
}


class TorchMLP(nn.Module):
    """An nn.Linear per pair of consecutive widths in spec.sizes, the hidden activation after
    each but the last, the output activation after the last. With spec.batchnorm an
    nn.BatchNorm1d follows every hidden nn.Linear, which then has no bias (β takes its place)."""

    def __init__(self, spec: MLPSpec, device: torch.device) -> None:
        super().__init__()
        dtype = getattr(torch, spec.dtype)
        self.spec = spec
        hidden = spec.sizes[1:-1]
        self.layers = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=not (spec.batchnorm and l < len(hidden)), dtype=dtype, device=device)
            for l, (n_in, n_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:], strict=True))
        )
        self.norms = nn.ModuleList(  # norms[l - 1] follows layers[l - 1], l = 1 .. L - 1
            nn.BatchNorm1d(width, eps=spec.bn_eps, momentum=spec.bn_momentum, dtype=dtype, device=device)
            for width in (hidden if spec.batchnorm else ())
        )
        self.activations = [spec.hidden_activation] * len(hidden) + [spec.output_activation]
        self.taps: list[torch.Tensor] = []  # Zˡ of the last forward, every layer (batch norm only)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self.taps = []
        for l, layer in enumerate(self.layers):
            Z = layer(X)
            if self.spec.batchnorm:
                self.taps.append(Z)
            if l < len(self.norms):
                Z = self.norms[l](Z)
            X = ACTIVATIONS[self.activations[l]](Z, self.spec)
        return X

    def functional(self, X: torch.Tensor) -> torch.Tensor:
        """forward through torch.nn.functional on the same parameters: F.linear for nn.Linear,
        F.batch_norm on the same buffers for nn.BatchNorm1d (its momentum, ε and mode)."""
        self.taps = []
        for l, layer in enumerate(self.layers):
            Z = F.linear(X, layer.weight, layer.bias)
            if self.spec.batchnorm:
                self.taps.append(Z)
            if l < len(self.norms):
                norm = self.norms[l]
                Z = F.batch_norm(
                    Z,
                    norm.running_mean,
                    norm.running_var,
                    norm.weight,
                    norm.bias,
                    training=self.training,
                    momentum=self.spec.bn_momentum,
                    eps=self.spec.bn_eps,
                )
            X = ACTIVATIONS[self.activations[l]](Z, self.spec)
        return X


# the paths of case.meta["path"] beside the default, nn.Module's forward (conformance.paths)
PATHS = ("functional", "compiled")


def paths(case: Case, device: torch.device) -> tuple[str, ...]:
    return PATHS


def layouts(case: Case, device: torch.device) -> tuple[str, ...]:
    """X handed over contiguous, as a strided view or transposed (conformance.layouts)."""
    return ("contiguous", "strided", "transposed")


def network(case: Case, device: torch.device) -> tuple[TorchMLP, Callable[[torch.Tensor], torch.Tensor]]:
    """The module for case.spec and how case.meta["path"] calls it: its forward, its
    functional twin, or torch.compile of it (one module per spec and device, reused)."""
    path = path_of(case, PATHS)
    if path == "compiled":
        model, fast = compiled((case.spec, str(device)), lambda: TorchMLP(case.spec, device))
        return model, lambda X: run_compiled(fast, X)
    model = TorchMLP(case.spec, device)
    return model, (model.functional if path == "functional" else model)


def loss_of(spec: MLPSpec, Y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if spec.loss == "mse":
        return F.mse_loss(Y, targets)
    return F.cross_entropy(Y, targets)


def check_conventions(spec: MLPSpec, *, batchnorm: bool = False) -> None:
    """The spec's conventions are torch's; batchnorm=False (the "mlp" component) refuses
    batch-norm specs, whose running statistics only "mlp_bn" carries."""
    used = {spec.hidden_activation, spec.output_activation}
    if "leaky_relu" in used and spec.leaky_kink != "slope":
        raise ValueError(f"leaky_kink: torch implements 'slope', received {spec.leaky_kink!r}")
    if used & {"elu", "selu"} and spec.elu_kink != "negative":
        raise ValueError(f"elu_kink: torch implements 'negative', received {spec.elu_kink!r}")
    if "softplus" in used and spec.softplus_threshold is None:
        raise ValueError("softplus_threshold: F.softplus always has one (20 by default), received None")
    if spec.batchnorm and not batchnorm:
        raise ValueError(
            "batchnorm: the 'mlp' component runs specs without batch norm,"
            " received batchnorm=True (use the 'mlp_bn' component)"
        )


def param_names(spec: MLPSpec) -> dict[str, str]:
    """Reference name -> torch parameter name (TorchMLP's layers and norms)."""
    names = {}
    depth = len(spec.sizes) - 1
    for l in range(1, depth + 1):
        names[f"W{l}"] = f"layers.{l - 1}.weight"
        if spec.batchnorm and l < depth:
            names[f"gamma{l}"] = f"norms.{l - 1}.weight"
            names[f"beta{l}"] = f"norms.{l - 1}.bias"
        else:
            names[f"b{l}"] = f"layers.{l - 1}.bias"
    return names


def load(model: TorchMLP, case: Case) -> None:
    """The case's parameters into the model's own, in case.spec.dtype."""
    own = dict(model.named_parameters())
    params = cast_floats(case.params, case.spec.dtype)
    with torch.no_grad():
        for ref_name, torch_name in param_names(case.spec).items():
            own[torch_name].copy_(from_numpy(params[ref_name]))


def inputs_of(case: Case, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """X, in case.meta["layout"] and requiring its gradient, and the targets."""
    inputs = cast_floats(case.inputs, case.spec.dtype)
    X = from_numpy(inputs["X"]).to(device)
    X = laid_out(X, case.meta.get("layout", "contiguous")).requires_grad_(True)
    return X, from_numpy(inputs["targets"]).to(device)


def _tensors(case: Case, device: torch.device) -> tuple[TorchMLP, torch.Tensor, torch.Tensor]:
    check_conventions(case.spec)
    model = TorchMLP(case.spec, device)
    load(model, case)
    return (model, *inputs_of(case, device))


def _numpy(t: torch.Tensor) -> np.ndarray:
    return to_numpy(t)


def objective(Y: torch.Tensor, loss: torch.Tensor, cotangents: Arrays) -> torch.Tensor:
    """Σ_k <c_k, output_k> for cotangents on "Y" and "loss": what the gradients are of."""
    total = loss * float(cotangents.get("loss", 0.0))
    if "Y" in cotangents:
        total = total + (Y * from_numpy(cotangents["Y"]).to(Y)).sum()
    return total


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    check_conventions(case.spec)
    model, forward = network(case, device)
    load(model, case)
    X, targets = inputs_of(case, device)
    Y = forward(X)
    loss = loss_of(case.spec, Y, targets)
    outputs = {"Y": _numpy(Y), "loss": _numpy(loss)}
    if not cotangents:
        return Outcome(outputs, {}, {})
    total = objective(Y, loss, cotangents)
    names = param_names(case.spec)
    own = dict(model.named_parameters())
    wrt = [own[names[k]] for k in names] + [X]
    grads = torch.autograd.grad(total, wrt)
    return Outcome(outputs, {k: _numpy(g) for k, g in zip([*names, "X"], grads, strict=True)}, {})


def jvp(case: Case, tangents: Arrays, device: torch.device) -> Arrays:
    """torch.func.jvp of (Y, loss) along tangents for every parameter and X."""
    model, X, targets = _tensors(case, device)
    names = param_names(case.spec)
    keys = [*names, "X"]
    primals = tuple(dict(model.named_parameters())[names[k]].detach() for k in names) + (X.detach(),)
    t = cast_floats(tangents, case.spec.dtype)
    directions = tuple(from_numpy(t[k]).to(device) for k in keys)

    def outputs(*values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = {names[k]: v for k, v in zip(names, values[:-1], strict=True)}
        Y = torch.func.functional_call(model, weights, (values[-1],))
        return Y, loss_of(case.spec, Y, targets)

    _, (dY, dloss) = torch.func.jvp(outputs, primals, directions)
    return {"Y": _numpy(dY), "loss": _numpy(dloss)}


def per_example_grads(case: Case, device: torch.device) -> Arrays:
    """∂L_n/∂θ and ∂L_n/∂x_n of every row's own loss L_n, by torch.func.vmap(grad) over the rows:
    {name: (N, *shape)}, "X" as (N, 1, D) (conformance.paths, per-example-gradients)."""
    model, X, targets = _tensors(case, device)
    names = param_names(case.spec)
    own = dict(model.named_parameters())
    params = {names[k]: own[names[k]].detach() for k in names}

    def loss_of_row(weights: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        Y = torch.func.functional_call(model, weights, (x.unsqueeze(0),))
        return loss_of(case.spec, Y, t.unsqueeze(0))

    d_params, dX = torch.func.vmap(torch.func.grad(loss_of_row, argnums=(0, 1)), in_dims=(None, 0, 0))(
        params, X.detach(), targets
    )
    grads = {k: _numpy(d_params[names[k]]) for k in names}
    grads["X"] = _numpy(dX).reshape(X.shape[0], 1, -1)
    return grads


def constructed(
    build: Callable[[], nn.Module], names: dict[str, str], case: Case, device: torch.device
) -> Arrays:
    """case.meta["init_draws"] modules from build(), each initialized as torch constructs it,
    from torch.manual_seed(case.seed) (the global generators are restored afterwards):
    {reference name: (draws, *shape)}."""
    forked: list[Any] = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(case.seed)

        def draw() -> Arrays:
            own = dict(build().named_parameters())
            return {ref_name: _numpy(own[torch_name]) for ref_name, torch_name in names.items()}

        return stacked(draw, case.meta["init_draws"])


def default_init(case: Case, device: torch.device) -> Arrays:
    """TorchMLPs as constructed: nn.Linear's kaiming_uniform_(a=√5) weight, U(±1/√fan_in) bias,
    nn.BatchNorm1d's ones and zeros (the property init-distribution)."""
    return constructed(lambda: TorchMLP(case.spec, device), param_names(case.spec), case, device)
