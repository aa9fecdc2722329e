"""The suite must fail when a framework is wrong: faults injected into the real torch adapter.

Each test swaps one piece of torch for a faulty one, runs a real property test
of the suite (hypothesis and all), and expects a failure naming the parameter.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from runs import META_RUN  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.mlp import test_mlp  # noqa: E402
from conformance.components.mlp import torch_adapter as torch_mlp  # noqa: E402


class LeakyReluWrongNearZero(torch.autograd.Function):
    """leaky_relu whose backward is 10% off for |z| < 0.1, and exact elsewhere."""

    @staticmethod
    def forward(ctx, z, slope):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(z)
        ctx.slope = slope
        return F.leaky_relu(z, slope)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (z,) = ctx.saved_tensors
        grad = torch.where(z > 0, g, g * ctx.slope)
        return torch.where(z.abs() < 0.1, 1.1 * grad, grad), None


def float32_linear(self, x):  # type: ignore[no-untyped-def]
    """nn.Linear computed in float32 and cast back: a silent precision loss."""
    out = F.linear(x.float(), self.weight.float(), self.bias.float())
    return out.to(x.dtype)


def test_activation_wrong_near_zero_fails_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        torch_mlp.ACTIVATIONS, "leaky_relu", lambda z, spec: LeakyReluWrongNearZero.apply(z, spec.slope)
    )
    with pytest.raises(ConformanceFailure, match=r"gradient-agreement.*torch.*float64") as info:
        test_mlp.test_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "parameter " in str(info.value)
    assert "replay: python -m conformance replay" in str(info.value)


def test_float32_layer_in_float64_run_fails_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.nn.Linear, "forward", float32_linear)
    with pytest.raises(ConformanceFailure, match=r"parameter (W|b)\d") as info:
        test_mlp.test_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "dtype float64" in str(info.value)


def test_float32_layer_passes_a_float32_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same fault is invisible at float32: the float64 tolerance is what catches it."""
    monkeypatch.setattr(torch.nn.Linear, "forward", float32_linear)
    test_mlp.test_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)


def leaky_relu_with_jax_kink(z, spec):  # type: ignore[no-untyped-def]
    """The same function, with the other convention at 0: derivative 1 there instead of slope."""
    return torch.where(z >= 0, z, spec.slope * z)


def test_wrong_kink_convention_fails_the_kink_property(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "leaky_relu", leaky_relu_with_jax_kink)
    with pytest.raises(ConformanceFailure, match=r"kink-convention.*torch") as info:
        test_mlp.test_kink_convention(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "parameter " in str(info.value)


def test_wrong_kink_convention_is_invisible_away_from_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random inputs never hit 0 exactly: only the kink property can see the convention."""
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "leaky_relu", leaky_relu_with_jax_kink)
    test_mlp.test_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)
