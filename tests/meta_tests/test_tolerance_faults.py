"""The per-entry rounding bound is tight where the old per-tensor estimate was blind, and every
failure says "rounding" or "disagreement": faults injected into the real torch adapters.

* a 1% error on the entries of a gradient below 1e-3 of its largest entry (a per-tensor
  bound, scaled by the largest entry, lets it through);
* a float64 layer computed in float32 (nn.Linear in the MLP and in the RNN's readout,
  batch norm in the batch-normalized MLP);
* a fault that only shows at N = 1;
* arbitration: an injected fault reads "disagreement", a float32-only error of a few dozen
  ulps (a sloppier kernel, correct in float64) reads "rounding";
* a component without a rounding module is held to the sampled bound, and still fails;
* padded sequences (rnn_varlen) computed in float32 fail its float64 rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from runs import META_RUN  # noqa: E402

from conformance import properties as p  # noqa: E402
from conformance import registry  # noqa: E402
from conformance.backend import Outcome  # noqa: E402
from conformance.bounds import reference_and_bound  # noqa: E402
from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.mlp import test_mlp  # noqa: E402
from conformance.components.mlp import torch_adapter as torch_mlp  # noqa: E402
from conformance.components.mlp.strategies import mlp_case  # noqa: E402
from conformance.components.mlp_bn import test_mlp_bn  # noqa: E402
from conformance.components.rnn import test_rnn  # noqa: E402
from conformance.registry import component  # noqa: E402
from conformance.runner import run_property  # noqa: E402
from conformance.tolerances import allowed_error, sampled_bound  # noqa: E402
from refimpl.mlp import MLPSpec  # noqa: E402

_run = torch_mlp.run
_batch_norm = F.batch_norm


def small_rows_case() -> Any:
    """An MLP case whose upstream gradient has rows 1e-6 the size of the others: ∂L/∂X's
    rows for them are 1e-6 of its largest entry, small by their own terms."""
    case = mlp_case(MLPSpec((3, 5, 2), "tanh", "identity", "mse"), 6, seed=12)
    dY = case.inputs["dY"].copy()
    dY[1::2] *= 1e-6
    return replace(case, inputs={**case.inputs, "dY": dY})


def small_entries_off_by_one_percent(case: Any, cotangents: Any, device: Any = None) -> Outcome:
    """torch's result with every ∂L/∂X entry below 1e-3 of the largest one 1% too large."""
    got = _run(case, cotangents, device)
    if not got.grads:
        return got
    dX = got.grads["X"].copy()
    dX[np.abs(dX) < 1e-3 * np.max(np.abs(dX))] *= 1.01
    return Outcome(got.outputs, {**got.grads, "X": dX}, got.state)


def test_a_one_percent_error_in_small_entries_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    case = small_rows_case()
    monkeypatch.setattr(torch_mlp, "run", small_entries_off_by_one_percent)
    with pytest.raises(ConformanceFailure, match=r"parameter X: worst element \[[135], "):
        run_property(p.GRADIENT_AGREEMENT, case, "torch", "float32", META_RUN)


def test_the_small_entries_fault_hides_under_a_per_tensor_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why per entry: a bound scaled by the tensor's largest entry (the sampled bound of
    the table, the suite's bound before the rounding modules) allows the 1% error."""
    case = small_rows_case().with_dtype("float32")
    cot = {"Y": case.inputs["dY"]}
    r64, _ = reference_and_bound(component("mlp"), case, cot)
    r32 = component("mlp").reference(case, cot)
    wrong = small_entries_off_by_one_percent(case, cot).grads["X"]
    per_tensor = allowed_error("float32", sampled_bound("float32", r64.grads["X"], [r32.grads["X"]]))
    assert np.all(np.abs(wrong - r64.grads["X"]) <= per_tensor.total)


def float32_linear(self: Any, x: Any) -> Any:
    """nn.Linear computed in float32 and cast back: a silent precision loss."""
    return F.linear(x.float(), self.weight.float(), self.bias.float() if self.bias is not None else None).to(
        x.dtype
    )


def float32_batch_norm(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """torch's batch norm computed in float32 (the running statistics updated as before)."""
    if training:
        with torch.no_grad():
            _batch_norm(x.detach(), running_mean, running_var, None, None, True, momentum, eps)
    stats = (None, None) if training else (running_mean.float(), running_var.float())
    return _batch_norm(x.float(), *stats, weight.float(), bias.float(), training, momentum, eps).to(x.dtype)


@pytest.mark.parametrize(
    ("patch", "test"),
    [
        ("linear", test_mlp.test_gradient),
        ("linear", test_rnn.test_gradient),
        ("batch_norm", test_mlp_bn.test_gradient),
    ],
    ids=["mlp-linear", "rnn-readout-linear", "mlp_bn-batch-norm"],
)
def test_a_float32_layer_fails_the_float64_row(
    monkeypatch: pytest.MonkeyPatch, patch: str, test: Any
) -> None:
    if patch == "linear":
        monkeypatch.setattr(torch.nn.Linear, "forward", float32_linear)
    else:
        monkeypatch.setattr(F, "batch_norm", float32_batch_norm)
    with pytest.raises(ConformanceFailure, match=r"^disagreement: torch float64") as info:
        test(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "dtype float64" in str(info.value)
    test(framework="torch", dtype="float32", conformance_run=META_RUN)  # invisible in float32


def off_at_one_row(case: Any, cotangents: Any, device: Any = None) -> Outcome:
    """torch's result, with every gradient 0.1% off when the batch has one row."""
    got = _run(case, cotangents, device)
    if case.inputs["X"].shape[0] != 1:
        return got
    return Outcome(got.outputs, {k: g * 1.001 for k, g in got.grads.items()}, got.state)


def test_a_fault_only_at_one_row_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_mlp, "run", off_at_one_row)
    with pytest.raises(ConformanceFailure, match=r"^disagreement: torch float32") as info:
        test_mlp.test_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)
    assert "inputs: X(1, " in str(info.value)


def float32_noise(case: Any, cotangents: Any, device: Any = None) -> Outcome:
    """torch's float32 results moved by 2e-6 of themselves (about 34 ulps), a sloppier kernel;
    float64 results untouched."""
    got = _run(case, cotangents, device)
    if case.spec.dtype != "float32":
        return got
    rng = np.random.default_rng(case.seed)
    return Outcome(
        got.outputs,
        {k: g * (1 + 2e-6 * rng.choice([-1.0, 1.0], g.shape)) for k, g in got.grads.items()},
        got.state,
    )


def test_a_rounding_level_near_miss_reads_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_mlp, "run", float32_noise)
    with pytest.raises(ConformanceFailure, match=r"^rounding: torch float32 is [\d.]+ tolerances") as info:
        test_mlp.test_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)
    message = str(info.value)
    assert "agrees in float64 on the same case" in message
    assert "same case, other frameworks: jax float32" in message
    assert "allowed" in message and "floor" in message


def test_an_injected_fault_reads_disagreement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_mlp, "run", off_at_one_row)
    with pytest.raises(ConformanceFailure) as info:
        test_mlp.test_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)
    first = str(info.value).splitlines()[0]
    assert first.startswith("disagreement: torch float32") and "in float64 on the same case" in first


def test_a_component_without_a_rounding_module_is_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new component that has not written its rounding.py yet is still compared: the
    table's sampled bound passes the real torch and fails the same 0.1% fault."""
    bare = replace(component("mlp"), rounding=None)
    known = registry.component
    monkeypatch.setattr(registry, "component", lambda name: bare if name == "mlp" else known(name))
    test_mlp.test_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)
    monkeypatch.setattr(torch_mlp, "run", off_at_one_row)
    with pytest.raises(ConformanceFailure, match=r"^disagreement: torch float32"):
        test_mlp.test_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)


def test_padded_sequences_computed_in_float32_fail_the_float64_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """rnn_varlen's own rounding module (per entry, through the masks) keeps its float64 rows
    tight: torch's packed RNN run in float32 on a float64 case fails them, and passes float32's."""
    from conformance.components.rnn_varlen import test_rnn_varlen
    from conformance.components.rnn_varlen import torch_adapter as torch_varlen

    right = torch_varlen.run

    def in_float32(case: Any, cotangents: Any, device: Any = None) -> Outcome:
        return right(case.with_dtype("float32"), cotangents, device)

    assert component("rnn_varlen").rounding is not None
    monkeypatch.setattr(torch_varlen, "run", in_float32)
    test_rnn_varlen.test_varlen_gradient(framework="torch", dtype="float32", conformance_run=META_RUN)
    with pytest.raises(ConformanceFailure, match=r"^disagreement: torch float64"):
        test_rnn_varlen.test_varlen_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)
