"""The RNN properties must fail when an adapter is wrong: faults injected into the real adapters.

Each test swaps one piece of the torch or JAX RNN adapter for a faulty one, runs a
real property test of the suite (hypothesis and all), and expects a failure naming
the parameter. The JAX adapter takes the window and the parameters as data, so
those faults reach its compiled program as they are; the one fault traced into
the program (the initial carry) runs on programs of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("flax")

from runs import META_RUN  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.rnn import jax_adapter as jax_rnn  # noqa: E402
from conformance.components.rnn import test_rnn  # noqa: E402
from conformance.components.rnn import torch_adapter as torch_rnn  # noqa: E402
from refimpl.rnn import RNNSpec  # noqa: E402


def window_one_too_long(original: Callable[[RNNSpec, int], int]) -> Callable[[RNNSpec, int], int]:
    """Off by one: chunks of k + 1 steps where the spec says k."""

    def window(spec: RNNSpec, T: int) -> int:
        return original(spec, T) + (spec.truncation is not None)

    return window


@pytest.fixture
def private_jax_programs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fault traced into a program must not outlive the test. jax caches traces per
    Python function across jit wrappers, so fresh wrappers are not enough: every jax
    cache is cleared before and after, and the next test traces the true adapter again."""
    jax.clear_caches()
    yield
    jax.clear_caches()


@pytest.mark.parametrize("adapter", [torch_rnn, jax_rnn], ids=["torch", "jax"])
def test_off_by_one_window_fails_gradient_agreement(
    adapter: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window is data in both adapters: the fault reaches them without recompiling."""
    monkeypatch.setattr(adapter, "window", window_one_too_long(adapter.window))
    framework = "torch" if adapter is torch_rnn else "jax"
    with pytest.raises(ConformanceFailure, match=rf"gradient-agreement.*{framework}") as info:
        test_rnn.test_truncated_gradient(framework=framework, dtype="float64", conformance_run=META_RUN)
    assert "component rnn_truncated" in str(info.value)
    assert "replay: python -m conformance replay" in str(info.value)
    assert re.search(r"parameter (W_ih|W_hh|b_ih|b_hh|X|h0)\b", str(info.value))


def test_off_by_one_window_fails_the_window_one_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the reference: k = 1 run as k = 2 is not the sum of one-step problems."""
    monkeypatch.setattr(torch_rnn, "window", window_one_too_long(torch_rnn.window))
    with pytest.raises(ConformanceFailure, match=r"truncation-window-one.*torch") as info:
        test_rnn.test_window_one(framework="torch", dtype="float32", conformance_run=META_RUN)
    assert "k = 1 vs T one-step problems" in str(info.value)


def test_the_unpatched_adapters_pass() -> None:
    test_rnn.test_truncated_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)
    test_rnn.test_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)


def test_h0_detached_in_torch_fails_naming_h0(monkeypatch: pytest.MonkeyPatch) -> None:
    """h0 enters the forward, but its gradient path is cut: ∂L/∂h0 comes back as zeros."""
    monkeypatch.setattr(torch_rnn, "initial_state", lambda h0: h0.detach().unsqueeze(0))
    with pytest.raises(ConformanceFailure, match=r"gradient-agreement.*torch") as info:
        test_rnn.test_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "parameter h0" in str(info.value)


def test_h0_left_out_of_the_torch_forward_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """nn.RNN called without hx starts from zeros, its default: the outputs change."""
    monkeypatch.setattr(torch_rnn, "initial_state", lambda h0: torch.zeros_like(h0).unsqueeze(0))
    with pytest.raises(ConformanceFailure, match=r"forward-agreement.*torch") as info:
        test_rnn.test_forward(framework="torch", dtype="float32", conformance_run=META_RUN)
    assert re.search(r"parameter output (Y|loss)", str(info.value))


def test_h0_stopped_in_jax_fails_naming_h0(
    monkeypatch: pytest.MonkeyPatch, private_jax_programs: None
) -> None:
    monkeypatch.setattr(jax_rnn, "initial_carry", jax.lax.stop_gradient)
    with pytest.raises(ConformanceFailure, match=r"gradient-agreement.*jax") as info:
        test_rnn.test_gradient(framework="jax", dtype="float32", conformance_run=META_RUN)
    assert "parameter h0" in str(info.value)


def test_one_bias_without_b_hh_fails_the_two_bias_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """flax's one bias set to b_ih alone, where it must be b_ih + b_hh."""
    original = jax_rnn.to_variables

    def b_ih_only(params: dict[str, np.ndarray], T: int, N: int) -> dict[str, object]:
        return original({**params, "b_hh": np.zeros_like(params["b_hh"])}, T, N)

    monkeypatch.setattr(jax_rnn, "to_variables", b_ih_only)
    with pytest.raises(ConformanceFailure, match=r"two-bias-mapping.*jax") as info:
        test_rnn.test_two_bias_mapping(framework="jax", dtype="float64", conformance_run=META_RUN)
    assert "b_ih + c, b_hh - c" in str(info.value)
