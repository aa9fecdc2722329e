"""The clipping suite must fail when clipping is wrong: faults injected into torch's adapter or the reference.

Each test swaps the real clipping function for a faulty one, runs a real
property test (hypothesis and all) and expects a ConformanceFailure that names
the property, the framework and the output or parameter that went wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runs import META_RUN  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.clip import reference as clip_component  # noqa: E402
from conformance.components.clip import test_clip  # noqa: E402
from conformance.components.clip import torch_adapter as torch_clip  # noqa: E402
from conformance.components.trajectory import test_trajectory  # noqa: E402
from conformance.components.trajectory import torch_adapter as torch_trajectory  # noqa: E402
from refimpl import clip as refclip  # noqa: E402


def _grads(params: list[Any]) -> list[Any]:
    return [p.grad for p in params if p.grad is not None]


def clip_without_eps(params: list[Any], spec: Any) -> Any:
    """clamp(M / n, max=1): torch's formula with the 1e-6 dropped."""
    grads = _grads(params)
    norm = torch.nn.utils.get_total_norm(grads, spec.norm_type, foreach=spec.foreach)
    torch._foreach_mul_(grads, torch.clamp(spec.max_norm / norm, max=1.0))
    return norm


def clip_norm_without_last(params: list[Any], spec: Any) -> Any:
    """The norm of every gradient but the last one, applied to all of them."""
    grads = _grads(params)
    norm = torch.nn.utils.get_total_norm(grads[:-1], spec.norm_type, foreach=spec.foreach)
    torch.nn.utils.clip_grads_with_norm_(params, spec.max_norm, norm, foreach=spec.foreach)
    return norm


def clip_skipping_nan(params: list[Any], spec: Any) -> Any:
    """Leaves the gradients as they are when the norm is NaN."""
    norm = torch.nn.utils.get_total_norm(_grads(params), spec.norm_type, foreach=spec.foreach)
    if not torch.isnan(norm):
        torch.nn.utils.clip_grads_with_norm_(params, spec.max_norm, norm, foreach=spec.foreach)
    return norm


def clip_also_scaling_parameters(params: list[Any], spec: Any) -> Any:
    """Correct gradients, but the coefficient also lands on the parameters' storage."""
    norm = torch.nn.utils.clip_grad_norm_(params, spec.max_norm, norm_type=spec.norm_type)
    coef = torch.clamp(spec.max_norm / (norm + 1e-6), max=1.0)
    for p in params:
        p.data.mul_(coef)
    return norm


@pytest.mark.parametrize(
    ("fault", "test", "where"),
    [
        (clip_without_eps, test_clip.test_agreement, r"parameter output clipped/"),
        (clip_without_eps, test_clip.test_threshold, r"parameter (output clipped/|clip\(g\) at n == M)"),
        (clip_norm_without_last, test_clip.test_agreement, r"parameter output (norm|clipped/)"),
        (clip_skipping_nan, test_clip.test_nonfinite, r"parameter .*clipped/"),
        (clip_also_scaling_parameters, test_clip.test_isolation, r"parameter param/"),
    ],
    ids=[
        "no-eps-agreement",
        "no-eps-threshold",
        "norm-without-last",
        "nan-left-unclipped",
        "scales-parameters",
    ],
)
def test_a_faulty_torch_clip_fails_the_suite(
    monkeypatch: pytest.MonkeyPatch, fault: Any, test: Any, where: str
) -> None:
    monkeypatch.setitem(torch_clip.CLIP_FUNCTIONS, "global_norm", fault)
    with pytest.raises(ConformanceFailure, match=r"component clip, framework torch .* dtype float64") as info:
        test(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert info.match(where)
    assert "replay: python -m conformance replay" in str(info.value)


def reference_without_eps(spec: refclip.ClipSpec, grads: dict[str, np.ndarray]) -> Any:
    return refclip.apply_clip(replace_spec(spec, eps=0.0), grads)


def reference_skipping_nan(spec: refclip.ClipSpec, grads: dict[str, np.ndarray]) -> Any:
    clipped, norm = refclip.apply_clip(spec, grads)
    return (dict(grads), norm) if np.isnan(norm) else (clipped, norm)


def replace_spec(spec: refclip.ClipSpec, **changes: Any) -> refclip.ClipSpec:
    from dataclasses import replace

    return replace(spec, **changes)


@pytest.mark.parametrize(
    ("fault", "test", "where"),
    [
        (reference_without_eps, test_clip.test_threshold, r"parameter clip\(g\) at n == M"),
        (reference_skipping_nan, test_clip.test_nonfinite, r"parameter clip\(g\) with non-finite g"),
    ],
    ids=["no-eps", "nan-left-unclipped"],
)
def test_a_faulty_reference_fails_its_own_rows(
    monkeypatch: pytest.MonkeyPatch, fault: Any, test: Any, where: str
) -> None:
    """The invariant properties hold the reference to the conventions too (the numpy rows)."""
    monkeypatch.setattr(clip_component, "apply_clip", fault)
    with pytest.raises(ConformanceFailure, match=r"framework numpy .* dtype float64") as info:
        test(framework="numpy", dtype="float64", conformance_run=META_RUN)
    assert info.match(where)


def test_the_real_clipping_passes_the_same_tests() -> None:
    """Without a fault the same property tests pass: the failures above are the faults'."""
    for test in (
        test_clip.test_agreement,
        test_clip.test_threshold,
        test_clip.test_nonfinite,
        test_clip.test_isolation,
    ):
        test(framework="torch", dtype="float64", conformance_run=META_RUN)


def clip_a_copy(params: list[Any], spec: Any) -> Any:
    """clip_grad_norm_ on clones of the gradients: the norm is right, the optimizer never sees the clip."""
    copies = []
    for p in params:
        copy = torch.nn.Parameter(p.detach().clone())
        copy.grad = p.grad.clone()
        copies.append(copy)
    return torch.nn.utils.clip_grad_norm_(copies, spec.max_norm, norm_type=spec.norm_type)


def test_gradients_accumulated_across_steps_fail_the_trajectory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opt.zero_grad(), step t updates with g_0 + ... + g_t: a run restarted after k steps
    (fresh .grad) no longer equals the uninterrupted one. (trajectory-agreement fails too, but its
    shrinking reruns the reference about a hundred times.)"""
    monkeypatch.setattr(torch.optim.SGD, "zero_grad", lambda self, set_to_none=True: None)
    with pytest.raises(ConformanceFailure, match=r"trajectory-restart.*framework torch") as info:
        test_trajectory.test_restart(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert info.match(r"parameter (loss|norm|final/)")


def test_a_clip_that_misses_the_optimizer_fails_the_trajectory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_trajectory.CLIP, "global_norm", clip_a_copy)
    with pytest.raises(ConformanceFailure, match=r"trajectory-agreement.*framework torch") as info:
        test_trajectory.test_agreement(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert info.match(r"parameter output (norm|final/)")


def test_the_real_training_loop_passes_the_same_test() -> None:
    test_trajectory.test_agreement(framework="torch", dtype="float64", conformance_run=META_RUN)


def test_the_ci_profile_exercises_every_torch_clipping_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """clip-agreement on torch reaches foreach True and False, both norm orders and both kinds."""
    seen: set[tuple[str, float, bool]] = set()
    real = torch_clip.run

    def spy(case: Any, cotangents: Any, device: Any) -> Any:
        seen.add((case.spec.kind, case.spec.norm_type, case.spec.foreach))
        return real(case, cotangents, device)

    monkeypatch.setattr(torch_clip, "run", spy)
    test_clip.test_agreement(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert {foreach for _, _, foreach in seen} == {True, False}
    assert {kind for kind, _, _ in seen} == {"global_norm", "value"}
    assert {norm for kind, norm, _ in seen if kind == "global_norm"} == {2.0, float("inf")}


def test_running_statistics_left_behind_fail_the_trajectory(monkeypatch: pytest.MonkeyPatch) -> None:
    """nn.BatchNorm1d normalizing with the batch but never updating its buffers: the state differs."""
    real = torch.nn.BatchNorm1d.forward

    def frozen_stats(self: Any, x: Any) -> Any:
        momentum, self.momentum = self.momentum, 0.0
        try:
            return real(self, x)
        finally:
            self.momentum = momentum

    monkeypatch.setattr(torch.nn.BatchNorm1d, "forward", frozen_stats)
    with pytest.raises(ConformanceFailure, match=r"trajectory-agreement.*framework torch") as info:
        test_trajectory.test_agreement(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert info.match(r"parameter state running_(mean|var)\d")


def test_flax_compared_under_torch_bias_convention_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The convention matters: with rnn_biases="two" the reference moves b_ih + b_hh twice as far as
    flax's one bias, and the RNN trajectory disagrees (so "one" is not a free choice)."""
    pytest.importorskip("optax")
    from conformance.components.trajectory import jax_adapter as jax_trajectory

    monkeypatch.setitem(jax_trajectory.CONVENTIONS, "rnn_biases", "two")
    monkeypatch.setattr(jax_trajectory, "check_biases", lambda spec: None)
    with pytest.raises(ConformanceFailure, match=r"trajectory-agreement.*framework jax") as info:
        test_trajectory.test_agreement(framework="jax", dtype="float64", conformance_run=META_RUN)
    assert info.match(r"parameter output (loss|final/)")


def test_specs_round_trip_through_json_and_name_bad_fields() -> None:
    """Reproducers store the specs as JSON: an inf norm order and a nested network survive."""
    from conformance.components.clip.reference import ClipCaseSpec
    from conformance.components.trajectory.reference import TrajectorySpec
    from refimpl.mlp import MLPSpec
    from refimpl.rnn import RNNSpec

    specs = [
        ClipCaseSpec("global_norm", 0.5, None, float("inf"), foreach=False, dtype="float32"),
        ClipCaseSpec("value", None, 0.25, convention="optax"),
        TrajectorySpec(MLPSpec((3, 4, 2), batchnorm=True), lr=0.2, norm_type=float("inf"), bn_momentum=0.99),
        TrajectorySpec(RNNSpec(2, 3, 2), clip_kind="none", max_norm=None, rnn_biases="one"),
    ]
    for spec in specs:
        assert type(spec).from_json(spec.to_json()) == spec
    for call, field in [
        (lambda: ClipCaseSpec(foreach="yes"), "foreach"),  # type: ignore[arg-type]
        (lambda: ClipCaseSpec(max_norm=-1.0), "max_norm"),
        (lambda: ClipCaseSpec(dtype="float8"), "dtype"),
        (lambda: TrajectorySpec(MLPSpec((2, 2)), lr=0.0), "lr"),
        (lambda: TrajectorySpec(MLPSpec((2, 2)), clip_kind="norm"), "clip_kind"),
        (lambda: TrajectorySpec(MLPSpec((2, 2)), bn_running_var="exact"), "bn_running_var"),
        (lambda: TrajectorySpec(RNNSpec(2, 3, 2), rnn_biases="three"), "rnn_biases"),
    ]:
        with pytest.raises(ValueError if field != "foreach" else TypeError, match=field):
            call()
