"""The pitfalls of docs/pitfalls.md measured in torch and JAX on the reference's networks:
the same numbers within the suite's tolerances (float64), and the aliasing clip's stall in torch.

Every framework number goes through tests/pitfall_backends.py, which holds it to the
reference first; the assertions here are then about the pitfall itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pitfall_backends as backends
import pytest

from refimpl.pitfalls import clipping, depth, dying, recurrent

FRAMEWORKS = backends.FRAMEWORKS


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_depth_profiles_agree(framework: str) -> None:
    """‖∂L/∂bˡ‖ for every layer of the depth-12 stacks: each framework's gradients agree with the
    reference's, so its first-to-last ratio is the reference's to within rounding."""
    backends.require(framework)
    # vanishing (sigmoid, relu at torch's init), preserved (leaky relu at He's), exploding (tanh at 2√2);
    # the gain is data, so each activation compiles once in JAX
    for activation, gain in [
        ("sigmoid", depth.TORCH_GAIN),
        ("relu", depth.TORCH_GAIN),
        ("leaky_relu", depth.HE_GAIN),
        ("tanh", 2 * depth.HE_GAIN),
    ]:
        case = depth.depth_case(activation, depth.DEPTH, gain=gain)
        grads = backends.mlp_gradients(framework, case.spec, case.params, case.X, case.targets)
        norms = depth.bias_grad_norms(grads, depth.DEPTH)
        reference = depth.gradient_profile(case)
        np.testing.assert_allclose(norms[0] / norms[-1], reference[0] / reference[-1], rtol=1e-9)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_dead_relus_agree(framework: str) -> None:
    """The three large steps in the framework: its parameters agree with the reference's, and they
    leave the same units off and dead (the nearest unit is far from the tolerance)."""
    backends.require(framework)
    for activation in ("relu", "leaky_relu"):
        case = dying.dying_case(activation)
        S = dying.LARGE_STEPS
        batches = {"X": np.stack([case.X] * S), "targets": np.stack([case.targets] * S)}
        out = backends.trajectory(
            framework, case.spec, case.params, batches, lr=dying.LARGE_LR, max_norm=None
        )
        params = {k[len("final/") :]: v for k, v in out.items() if k.startswith("final/")}
        got, ref = dying.count_units(case, params), dying.count_units(case, dying.large_steps(case))
        assert ref.margin > 1e-6
        np.testing.assert_array_equal(got.off, ref.off)
        np.testing.assert_array_equal(got.dead, ref.dead)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_rnn_profiles_agree(framework: str) -> None:
    """‖∂L/∂h_t‖ from the framework's autodiff for ρ = 0.9 and 1.1 equals the reference's."""
    backends.require(framework)
    for rho in (0.9, 1.1):
        case = recurrent.recurrent_case(rho, 0.01)
        norms = backends.hidden_norms(framework, case.spec, case.params, case.X, case.h0, case.targets)
        reference = recurrent.profile(case)
        np.testing.assert_allclose(norms[0] / norms[-1], reference[0] / reference[-1], rtol=1e-9)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_exploding_rnn_trained_with_and_without_clipping_agrees(framework: str) -> None:
    backends.require(framework)
    case = recurrent.clipping_case()
    batches = recurrent.stacked(case)
    runs = {}
    for name, max_norm in (("clipped", recurrent.CLIP_MAX_NORM), ("unclipped", None)):
        runs[name] = backends.trajectory(
            framework, case.spec, case.params, batches, lr=recurrent.CLIP_LR, max_norm=max_norm
        )
    assert runs["unclipped"]["loss"][-1] > 1e3 * runs["clipped"]["loss"][-1]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_correct_clip_trains_alike(framework: str) -> None:
    backends.require(framework)
    case = clipping.clip_case()
    batches = clipping.stacked(case)
    out = backends.trajectory(framework, case.spec, case.params, batches, lr=case.lr, max_norm=case.max_norm)
    reference = clipping.clip_runs(case)["correct"]  # clip_flat: torch's formula, with its ε
    # optax scales by M / n, torch by M / (n + 1e-6): a relative 1e-6 / M per step between them
    rtol = 1e-9 if framework == "torch" else 10 * 1e-6 / case.max_norm
    np.testing.assert_allclose(out["loss"], reference.losses, rtol=rtol)
    assert out["loss"][-1] < 0.6 * out["loss"][0]


def test_the_aliasing_clip_stalls_torch_as_it_stalls_the_reference(tmp_path: Path) -> None:
    """torch with the flat clip written back by vector_to_parameters: the same stalled run as the
    reference's clip_flat_aliasing, and the suite's properties that catch it."""
    backends.require("torch")
    case = clipping.clip_case()
    with backends.aliasing_clip_in_torch():
        out = backends.trajectory_torch_raw(
            case.spec, case.params, clipping.stacked(case), lr=case.lr, max_norm=case.max_norm
        )
        failures = backends.clip_property_failures(
            ("clip-agreement", "clip-norm-bound", "clip-isolation", "clip-direction"), tmp_path
        )
    r64 = clipping.clip_runs(case)["aliasing"]
    r32 = clipping.clip_runs(clipping.in_float32(case))["aliasing"]
    backends.compare_run(
        "torch (aliasing clip)",
        {"loss": out["loss"], "norm": out["norm"]},
        {"loss": r64.losses, "norm": r64.norms},
        {"loss": r32.losses, "norm": r32.norms},
    )
    assert set(failures) >= {"clip-agreement", "clip-norm-bound", "clip-isolation"}, failures
    assert "param/" in failures["clip-isolation"]
