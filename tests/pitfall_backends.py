"""The pitfalls' networks run through the suite's backends: the one place tests/ reach into
`conformance` for them (test_pitfalls_frameworks.py uses only this module).

Each function builds a `conformance` case from the reference's spec, parameters and batch,
puts it under the framework's conventions and runs it; `assert_agree` holds a framework's
numbers to the float64 reference under the suite's tolerance table: the component's
rounding bound on the case, or, for a reference run given in both dtypes, the table's
sampled bound (conformance/tolerances.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.components.clip.reference import ClipCaseSpec
from conformance.components.clip.strategies import clip_case
from conformance.components.trajectory.reference import TrajectorySpec
from conformance.config import Run, RunConfig
from conformance.frameworks import backend as get_backend
from conformance.frameworks import skip_reason
from conformance.registry import component
from conformance.runner import run_property, under_conventions
from conformance.tolerances import allowed_error, sampled_bound

FRAMEWORKS = ("torch", "jax")


def require(framework: str) -> None:
    """Skip, with the suite's reason, when the framework is not installed."""
    reason = skip_reason(framework)
    if reason:
        pytest.skip(reason)


def _run(framework: str, case: Case, cotangents: Arrays | None, dtype: str) -> tuple[Any, Any, Any]:
    """(framework's outcome, reference float64, rounding bound in dtype) under the framework's
    conventions."""
    backend = get_backend(framework)
    case = under_conventions(case, backend).with_dtype(dtype)
    r64, bound = reference_and_bound(component(case.component), case, cotangents)
    return backend.run(case, cotangents), r64, bound


def assert_agree(what: str, actual: Arrays, r64: Arrays, bound: Arrays, dtype: str) -> None:
    """Every entry of r64 matched by `actual` within the suite's tolerance for dtype."""
    for name, expected in r64.items():
        got = np.asarray(actual[name], np.float64)
        allowed = allowed_error(dtype, bound[name]).total
        worst = float(np.max(np.abs(got - expected) / allowed)) if expected.size else 0.0
        assert worst <= 1.0, f"{what}: {name} is {worst:.3g} tolerances from the reference ({dtype})"


def mlp_gradients(
    framework: str, spec: Any, params: Arrays, X: np.ndarray, targets: np.ndarray, dtype: str = "float64"
) -> Arrays:
    """The loss gradients from the framework, checked against the reference; returned as float64."""
    case = Case("mlp", spec, params, {"X": X, "targets": targets})
    got, r64, bound = _run(framework, case, {"loss": np.ones(())}, dtype)
    assert_agree(
        f"{framework} mlp {spec.sizes[:2]}... {spec.hidden_activation}",
        got.grads,
        r64.grads,
        bound.grads,
        dtype,
    )
    return dict(got.grads)


def hidden_norms(
    framework: str, spec: Any, params: Arrays, X: np.ndarray, h0: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """‖∂L/∂h_t‖ from the framework's own autodiff (the property hidden-gradient-profile's)."""
    from conformance.components.rnn.properties import reference_hidden_norms
    from conformance.components.rnn.rounding import hidden_norms_rounding

    case = Case("rnn", spec, params, {"X": X, "h0": h0, "targets": targets})
    norms = np.asarray(get_backend(framework).call(case, "hidden_grad_norms"), np.float64)
    assert_agree(
        f"{framework} ‖∂L/∂h_t‖",
        {"profile": norms},
        {"profile": reference_hidden_norms(case, "float64")},
        {"profile": hidden_norms_rounding(case.with_dtype("float64"))},
        "float64",
    )
    return norms


def trajectory(
    framework: str, network: Any, params: Arrays, batches: Arrays, *, lr: float, max_norm: float | None
) -> Arrays:
    """S SGD steps (clipping by global norm at max_norm, or none) in the framework, against the
    reference under its conventions: {"loss", "norm" (if clipping), "final/<k>"}, float64."""
    spec = TrajectorySpec(
        network, lr=lr, clip_kind="none" if max_norm is None else "global_norm", max_norm=max_norm
    )
    got, r64, bound = _run(framework, Case("trajectory", spec, params, batches), None, "float64")
    assert_agree(f"{framework} trajectory", got.outputs, r64.outputs, bound.outputs, "float64")
    return dict(got.outputs)


def compare_run(framework: str, outputs: Arrays, r64: Arrays, r32: Arrays) -> None:
    """A framework's trajectory outputs against a reference run given in both dtypes (no case
    to bound its rounding on: the table's sampled bound)."""
    bound = {k: sampled_bound("float64", r64[k], [r32[k]]) for k in r64}
    assert_agree(f"{framework} trajectory", outputs, r64, bound, "float64")


# ---------------------------------------------------------------- the aliasing clip, in torch


def torch_flat_clip_aliasing(params: list[Any], spec: Any) -> Any:
    """clip_grad_norm_'s arithmetic on one flat vector of every .grad, written back with
    `vector_to_parameters`, which sets param.data: the parameters become the clipped gradient."""
    import torch

    flat = torch.nn.utils.parameters_to_vector([p.grad for p in params])
    norm = torch.linalg.vector_norm(flat)
    flat.mul_(torch.clamp(spec.max_norm / (norm + 1e-6), max=1.0))
    torch.nn.utils.vector_to_parameters(flat, params)
    return norm


@contextmanager
def aliasing_clip_in_torch() -> Iterator[None]:
    """The torch adapters' clip by global norm (clip and trajectory components) replaced by the bug."""
    from conformance.components.clip import torch_adapter as torch_clip
    from conformance.components.trajectory import torch_adapter as torch_trajectory

    saved = torch_clip.CLIP_FUNCTIONS["global_norm"], torch_trajectory.CLIP["global_norm"]
    torch_clip.CLIP_FUNCTIONS["global_norm"] = torch_flat_clip_aliasing
    torch_trajectory.CLIP["global_norm"] = torch_flat_clip_aliasing
    try:
        yield
    finally:
        torch_clip.CLIP_FUNCTIONS["global_norm"], torch_trajectory.CLIP["global_norm"] = saved


def trajectory_torch_raw(
    network: Any, params: Arrays, batches: Arrays, *, lr: float, max_norm: float
) -> Arrays:
    """torch's trajectory outputs with no reference check (the aliasing run has none in the suite)."""
    spec = TrajectorySpec(network, lr=lr, clip_kind="global_norm", max_norm=max_norm)
    return dict(get_backend("torch").run(Case("trajectory", spec, params, batches)).outputs)


def clip_property_failures(properties: tuple[str, ...], reproducers: Path, seed: int = 0) -> dict[str, str]:
    """Which of the suite's clipping properties fail on torch for one clipping case (M = ‖g‖ / 2):
    property id -> the failure message, for those that fail; reproducers go to `reproducers`."""
    from conformance.compare import ConformanceFailure

    layout = (("W1", (5, 3)), ("b1", (5,)), ("W2", (2, 5)), ("b2", (2,)))
    case = clip_case(ClipCaseSpec(), layout, seed, ratio=0.5)
    run = Run(RunConfig(reproducer_dir=reproducers))
    failures = {}
    for property_id in properties:
        try:
            run_property(component("clip").property(property_id), case, "torch", "float64", run)
        except ConformanceFailure as failure:
            failures[property_id] = str(failure)
    return failures
