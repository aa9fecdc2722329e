"""The batch-normalized MLP in JAX: `flax.linen.Dense` -> `flax.linen.BatchNorm` -> activation.

Variables: "params" (Dense kernels Wᵀ and biases, BatchNorm "scale" γ and "bias"
β), "batch_stats" (BatchNorm "mean" and "var", the running statistics) and
"perturbations" (zeros added to every Zˡ by `Module.perturb`, whose gradient is
δˡ = ∂L/∂Zˡ, reported as "Z1", ...). Training mode applies the model with
`use_running_average=False` and `mutable=["batch_stats"]` and reads the new
running statistics from the returned collection; eval mode uses them and
returns them unchanged. Compiled functions are cached per spec, mode and
variance formula (static) and shape.

`use_fast_variance`: flax's default (True) computes σ² = E[x²] - E[x]², which
cancels when a feature's mean is far larger than its spread; the reference
computes E[(x - μ)²]. case.meta["bn_variance"] chooses: "two-pass"
(use_fast_variance=False, the computation the reference models, and what a
case without the key runs: even a batch of two rows with |x₁ + x₂| >> |x₁ - x₂|
shows the cancellation in float32), "fast" (True) or "default" (flax's own
default, True in the flax versions the suite supports). The property
bn-ill-conditioned runs "default" on inputs of mean 1e4 and names the
difference (known_issues.toml: flax-batchnorm-fast-variance).
"""

from __future__ import annotations

from dataclasses import fields, replace
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from conformance.backend import Outcome, cast_floats, require_conventions
from conformance.case import Arrays, Case
from conformance.components.mlp import jax_adapter as mlp
from conformance.frameworks.jax import enable_float64
from conformance.frameworks.jax_paths import from_stored, layout_of, on_path, stored, unstored
from refimpl.mlp import MLPSpec

enable_float64()  # float64 cases need jax_enable_x64; float32 ones stay float32 (explicit dtypes)

# flax.linen.BatchNorm (flax/linen/normalization.py): ra = momentum ra + (1 - momentum) batch,
# momentum 0.99, the biased batch variance in both the normalization and the running
# average, and no error for a batch of one (σ² = 0).
CONVENTIONS: dict[str, object] = {
    **mlp.CONVENTIONS,
    "bn_momentum": 0.99,
    "bn_momentum_convention": "flax",
    "bn_running_var": "biased",
    "bn_eps": 1e-5,
    "bn_single_example": "allow",
}
_FIXED = ("bn_momentum_convention", "bn_running_var", "bn_single_example")
FLAX_FAST_VARIANCE = bool(
    next(f.default for f in fields(nn.BatchNorm) if f.name == "use_fast_variance")
)  # True in flax 0.10 to 0.12


default_init = mlp.default_init  # FlaxMLP builds the batch norms too


def check_conventions(spec: MLPSpec) -> None:
    mlp.check_conventions(spec, batchnorm=True)
    require_conventions("flax", spec, CONVENTIONS, _FIXED)


VARIANCE = {"two-pass": False, "fast": True, "default": FLAX_FAST_VARIANCE}


def fast_variance(case: Case) -> bool:
    """The use_fast_variance a case runs with (meta["bn_variance"], default "two-pass")."""
    choice = case.meta.get("bn_variance", "two-pass")
    if choice not in VARIANCE:
        raise ValueError(f"meta['bn_variance']: expected one of {sorted(VARIANCE)}, received {choice!r}")
    return VARIANCE[choice]


def to_variables(spec: MLPSpec, params: Arrays, N: int) -> dict[str, Any]:
    """ "params" (Dense and BatchNorm layers) and zero "perturbations" for a batch of N rows."""
    variables = mlp.to_variables(spec, params)
    layers = dict(variables["params"])
    for l in mlp.normalized_layers(spec):
        layers[f"BatchNorm_{l}"] = {"scale": params[f"gamma{l}"], "bias": params[f"beta{l}"]}
    zeros = {f"Z{l}": np.zeros((N, width), spec.dtype) for l, width in enumerate(spec.sizes[1:], 1)}
    return jax.device_put({"params": layers, "perturbations": zeros})  # compiles nothing


def to_batch_stats(spec: MLPSpec, state: Arrays) -> dict[str, Any]:
    stats = {
        f"BatchNorm_{l}": {"mean": state[f"running_mean{l}"], "var": state[f"running_var{l}"]}
        for l in mlp.normalized_layers(spec)
    }
    return jax.device_put(stats)


def from_batch_stats(spec: MLPSpec, stats: dict[str, Any]) -> Arrays:
    state = {}
    for l in mlp.normalized_layers(spec):
        state[f"running_mean{l}"] = np.asarray(stats[f"BatchNorm_{l}"]["mean"], np.float64)
        state[f"running_var{l}"] = np.asarray(stats[f"BatchNorm_{l}"]["var"], np.float64)
    return state


def params_from_variables(spec: MLPSpec, variables: dict[str, Any]) -> Arrays:
    """W, b (kernels transposed back) and γ, β (flax's BatchNorm scale and bias), by reference name."""
    params = mlp.from_variables(spec, variables)
    for l in mlp.normalized_layers(spec):
        layer = variables["params"][f"BatchNorm_{l}"]
        params[f"gamma{l}"] = np.asarray(layer["scale"], np.float64)
        params[f"beta{l}"] = np.asarray(layer["bias"], np.float64)
    return params


def from_variables(spec: MLPSpec, variables: dict[str, Any]) -> Arrays:
    """Gradients: W, b, γ, β and δˡ from the perturbations."""
    grads = params_from_variables(spec, variables)
    for l in range(1, len(spec.sizes)):
        grads[f"Z{l}"] = np.asarray(variables["perturbations"][f"Z{l}"], np.float64)
    return grads


# the static part: spec, train, fast variance, layout, jax.nn.standardize for BatchNorm
Mode = tuple[MLPSpec, bool, bool, str, bool]


def paths(case: Case, device: Any = None) -> tuple[str, ...]:
    """ "eager" (op by op) and "functional": jax.nn.standardize between BatchNorm's scale and
    bias (mlp.Standardized), which returns no running statistics in training."""
    return ("eager", "functional")


def _outputs(mode: Mode, targets: Any, stats: Any, variables: Any, X: Any) -> Any:
    """((Y, loss), new batch_stats), from X stored in the mode's layout (jax_paths)."""
    spec, train, fast, layout, functional = mode
    model = mlp.FlaxMLP(spec, train, fast, functional)
    full = {**variables, "batch_stats": stats}
    if train:
        Y, updates = model.apply(full, unstored(X, layout), mutable=["batch_stats"])
        stats = updates["batch_stats"]
    else:
        Y = model.apply(full, unstored(X, layout))
    return (Y, mlp.loss_of(spec, Y, targets)), stats


@partial(jax.jit, static_argnums=0)
def _vjp(mode: Mode, variables: Any, stats: Any, X: Any, targets: Any, cot_Y: Any, cot_loss: Any) -> Any:
    (Y, loss), pullback, new_stats = jax.vjp(
        partial(_outputs, mode, targets, stats), variables, X, has_aux=True
    )
    d_variables, dX = pullback((cot_Y, cot_loss))
    return Y, loss, new_stats, d_variables, dX


@partial(jax.jit, static_argnums=0)
def _jvp(mode: Mode, variables: Any, stats: Any, X: Any, targets: Any, t_vars: Any, t_X: Any) -> Any:
    _, tangents_out, _ = jax.jvp(
        partial(_outputs, mode, targets, stats), (variables, X), (t_vars, t_X), has_aux=True
    )
    return tangents_out


layouts = mlp.layouts


def _prepare(case: Case) -> tuple[Mode, Any, Any, np.ndarray, jax.Array]:
    """The static mode, variables, batch_stats, X stored in the case's layout, targets."""
    spec: MLPSpec = case.spec
    check_conventions(spec)
    params = cast_floats(case.params, spec.dtype)
    inputs = cast_floats(case.inputs, spec.dtype)
    stats = to_batch_stats(spec, cast_floats(case.state, spec.dtype))
    path = case.meta.get("path")
    if path not in (None, *paths(case)):
        raise ValueError(f"meta['path']: expected one of {list(paths(case))} or none, received {path!r}")
    mode = (spec, case.train, fast_variance(case), layout_of(case), path == "functional")
    N = inputs["X"].shape[0]
    return (
        mode,
        to_variables(spec, params, N),
        stats,
        stored(inputs["X"], mode[3]),
        jax.device_put(inputs["targets"]),
    )


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    mode, variables, stats, X, targets = _prepare(case)
    spec = mode[0]
    cot = cast_floats(cotangents or {}, spec.dtype)
    N = case.inputs["X"].shape[0]
    cot_Y = cot["Y"] if "Y" in cot else np.zeros((N, spec.sizes[-1]), spec.dtype)
    cot_loss = np.asarray(cot.get("loss", 0.0), dtype=spec.dtype)
    with on_path(replace(case, meta={**case.meta, "path": None}) if mode[4] else case):
        Y, loss, new_stats, d_variables, dX = _vjp(mode, variables, stats, X, targets, cot_Y, cot_loss)
    outputs = {"Y": np.asarray(Y, np.float64), "loss": np.asarray(loss, np.float64)}
    state = {} if mode[4] and case.train else from_batch_stats(spec, new_stats)
    if not cotangents:
        return Outcome(outputs, {}, state)
    grads = from_variables(spec, d_variables)
    grads["X"] = from_stored(np.asarray(dX, np.float64), mode[3])
    return Outcome(outputs, grads, state)


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    mode, variables, stats, X, targets = _prepare(case)
    t = cast_floats(tangents, mode[0].dtype)
    t_vars = to_variables(mode[0], t, case.inputs["X"].shape[0])
    with on_path(replace(case, meta={**case.meta, "path": None}) if mode[4] else case):
        dY, dloss = _jvp(mode, variables, stats, X, targets, t_vars, stored(t["X"], mode[3]))
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}
