"""Faults only the low-precision dtypes and the extreme values reach: each fails the suite,
and the same fault passes the properties that draw moderate values.

* softmax cross-entropy without the max shift, planted in the reference: exp(1e4) is inf,
  and only extreme-agreement draws logits that large;
* an overflow in a low-precision reduction: torch's global norm squared and summed in the
  gradients' dtype (as optax does), planted in the torch adapter: in float16 a gradient of
  300 squares beyond 65504;
* a wrong derivative at an exact kink: relu'(0) = 1 in torch, seen by kink-convention in
  float16 and bfloat16 as in float64, never by gradient-agreement.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from runs import META_RUN  # noqa: E402

import refimpl.losses  # noqa: E402
from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.clip import test_clip  # noqa: E402
from conformance.components.clip import torch_adapter as torch_clip  # noqa: E402
from conformance.components.mlp import test_mlp  # noqa: E402
from conformance.components.mlp import torch_adapter as torch_mlp  # noqa: E402


def log_softmax_without_shift(Z: np.ndarray) -> np.ndarray:
    """Z - log Σ exp(Z), the row maximum not subtracted: exp overflows for logits beyond 709."""
    with np.errstate(over="ignore", invalid="ignore"):
        return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))


def test_softmax_without_max_shift_fails_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refimpl.losses, "_log_softmax", log_softmax_without_shift)
    with pytest.raises(ConformanceFailure, match=r"extreme-agreement.*torch.*float64") as info:
        test_mlp.test_extreme(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "loss" in str(info.value)


def test_softmax_without_max_shift_passes_moderate_logits(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the suite drew before extreme values: logits of order 1, where the shift changes nothing."""
    monkeypatch.setattr(refimpl.losses, "_log_softmax", log_softmax_without_shift)
    test_mlp.test_forward(framework="torch", dtype="float64", conformance_run=META_RUN)


CLIP_GRAD_NORM = torch_clip.CLIP_FUNCTIONS["global_norm"]


def norm_squared_in_dtype(params: list, spec) -> torch.Tensor:  # type: ignore[no-untyped-def,type-arg]
    """clip_grad_norm_ with its L2 norm formed as √Σ g² in the gradients' own dtype."""
    if spec.norm_type != 2.0:
        return CLIP_GRAD_NORM(params, spec)
    norm = torch.sqrt(sum((p.grad * p.grad).sum(dtype=p.grad.dtype) for p in params))
    coef = torch.clamp(spec.max_norm / (norm + 1e-6), max=1.0)
    for p in params:
        p.grad.mul_(coef.to(p.grad.dtype))
    return norm


def test_low_precision_norm_overflow_fails_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_clip.CLIP_FUNCTIONS, "global_norm", norm_squared_in_dtype)
    with pytest.raises(ConformanceFailure, match=r"clip-range-ends-overflow.*torch.*float16"):
        test_clip.test_range_ends_overflow(framework="torch", dtype="float16", conformance_run=META_RUN)


def test_low_precision_norm_overflow_passes_moderate_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_clip.CLIP_FUNCTIONS, "global_norm", norm_squared_in_dtype)
    test_clip.test_agreement(framework="torch", dtype="float16", conformance_run=META_RUN)


class ReluOneAtZero(torch.autograd.Function):
    """relu with relu'(0) = 1 (every other derivative right)."""

    @staticmethod
    def forward(ctx, z, slope):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(z)
        return torch.relu(z)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (z,) = ctx.saved_tensors
        return g * (z >= 0).to(g.dtype), None


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_wrong_derivative_at_the_kink_fails_low_precision_rows(
    monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "relu", ReluOneAtZero.apply)
    with pytest.raises(ConformanceFailure, match=rf"kink-convention.*torch.*{dtype}"):
        test_mlp.test_kink_convention(framework="torch", dtype=dtype, conformance_run=META_RUN)


def test_wrong_derivative_at_the_kink_passes_away_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "relu", ReluOneAtZero.apply)
    test_mlp.test_gradient(framework="torch", dtype="float16", conformance_run=META_RUN)
