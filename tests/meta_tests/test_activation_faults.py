"""The activation components must fail when an activation's derivative is wrong: faults injected
into the real torch adapter (and one into the reference), each run through a real property test.

Each fault lives where only these components reach: a GELU backward 1% off on part of its range,
ELU's derivative at exactly 0 taken from the other side, softplus without torch's threshold.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from runs import META_RUN  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.activations import test_activations  # noqa: E402
from conformance.components.mlp import torch_adapter as torch_mlp  # noqa: E402
from refimpl import smooth  # noqa: E402


class GeluOffNearOne(torch.autograd.Function):
    """F.gelu's forward; its backward 1% too large where 0.5 < z < 1.5, exact elsewhere."""

    @staticmethod
    def forward(ctx, z):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(z)
        return F.gelu(z)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (z,) = ctx.saved_tensors
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            (exact,) = torch.autograd.grad(F.gelu(zz), zz, g)
        return torch.where((z > 0.5) & (z < 1.5), 1.01 * exact, exact)


class EluKinkFromTheRight(torch.autograd.Function):
    """F.elu's forward; its derivative 1 at exactly 0 (the x > 0 side) where torch takes α."""

    @staticmethod
    def forward(ctx, z, alpha):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return F.elu(z, alpha)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (z,) = ctx.saved_tensors
        return torch.where(z >= 0, g, g * ctx.alpha * torch.exp(z)), None


def test_gelu_backward_off_by_one_percent_fails_gradient_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "gelu", lambda z, spec: GeluOffNearOne.apply(z))
    with pytest.raises(ConformanceFailure, match=r"gradient-agreement, component mlp_gelu.*torch") as info:
        test_activations.test_gelu_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)
    assert "parameter " in str(info.value) and "replay: python -m conformance replay" in str(info.value)


def test_gelu_backward_off_leaves_the_forward_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "gelu", lambda z, spec: GeluOffNearOne.apply(z))
    test_activations.test_gelu_forward(framework="torch", dtype="float32", conformance_run=META_RUN)


def test_elu_kink_from_the_other_side_fails_the_kink_property(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        torch_mlp.ACTIVATIONS, "elu", lambda z, spec: EluKinkFromTheRight.apply(z, spec.elu_alpha)
    )
    with pytest.raises(ConformanceFailure, match=r"kink-convention, component mlp_elu.*torch"):
        test_activations.test_elu_kink(framework="torch", dtype="float64", conformance_run=META_RUN)
    # random pre-activations never hit 0 exactly: only the kink property sees it
    test_activations.test_elu_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)


def test_softplus_without_the_threshold_fails_the_threshold_property(monkeypatch: pytest.MonkeyPatch) -> None:
    """The log form everywhere (jax's convention) where torch's spec says identity past βz = 20."""
    monkeypatch.setitem(
        torch_mlp.ACTIVATIONS,
        "softplus",
        lambda z, spec: F.softplus(z, beta=spec.softplus_beta, threshold=float("inf")),
    )
    with pytest.raises(ConformanceFailure, match=r"softplus-threshold, component mlp_softplus.*float64"):
        test_activations.test_softplus_threshold(framework="torch", dtype="float64", conformance_run=META_RUN)
    # 1e-9 of a value of 20 is below float32's resolution, and random inputs never reach βz = 20
    test_activations.test_softplus_threshold(framework="torch", dtype="float32", conformance_run=META_RUN)
    test_activations.test_softplus_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)


def test_a_wrong_reference_derivative_fails_finite_differences(monkeypatch: pytest.MonkeyPatch) -> None:
    """silu'(x) = σ(x) + x σ(x) σ(-x) with the second term's sign flipped: the reference's
    finite-differences row (framework numpy) fails, and so does every framework's agreement."""
    right = smooth.silu_prime
    monkeypatch.setattr(smooth, "silu_prime", lambda x: 2 * smooth._sigmoid_pair(x)[0] - right(x))
    with pytest.raises(ConformanceFailure, match=r"finite-differences, component mlp_silu, framework numpy"):
        test_activations.test_silu_finite_differences(
            framework="numpy", dtype="float64", conformance_run=META_RUN
        )
    with pytest.raises(ConformanceFailure, match=r"gradient-agreement, component mlp_silu.*torch"):
        test_activations.test_silu_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)


@pytest.mark.parametrize("activation", ["gelu", "silu", "softplus"])
def test_an_activation_computed_in_float32_fails_its_float64_rows(
    monkeypatch: pytest.MonkeyPatch, activation: str
) -> None:
    """The activation of a float64 network evaluated in float32 (and cast back): 1e-8 relative,
    a million float64 ulps, and within the float32 rows' bound. The per-entry rounding bound
    (components/mlp/smooth_rounding.py) must keep the float64 rows tight enough to see it."""
    right = torch_mlp.ACTIVATIONS[activation]
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, activation, lambda z, spec: right(z.float(), spec).to(z.dtype))
    forward = getattr(test_activations, f"test_{activation}_forward")
    with pytest.raises(ConformanceFailure, match=rf"forward-agreement, component mlp_{activation}.*float64"):
        forward(framework="torch", dtype="float64", conformance_run=META_RUN)
    forward(framework="torch", dtype="float32", conformance_run=META_RUN)
