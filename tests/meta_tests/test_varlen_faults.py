"""The padded-sequence properties must fail when padding leaks in: faults injected into the real
torch and JAX adapters of "rnn_varlen", each run through a real property test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
pytest.importorskip("flax")
from runs import META_RUN  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.rnn_varlen import jax_adapter as jax_varlen  # noqa: E402
from conformance.components.rnn_varlen import test_rnn_varlen  # noqa: E402
from conformance.components.rnn_varlen import torch_adapter as torch_varlen  # noqa: E402


def unpacked(x: Any, lengths: Any) -> Any:
    """nn.RNN run over the whole padded batch: every sequence "packed" at full length T."""
    return pack_padded_sequence(x, torch.full_like(lengths, x.shape[0]))


@pytest.fixture
def private_jax_programs() -> Iterator[None]:
    """A fault traced into a program must not outlive the test (jax caches traces)."""
    jax.clear_caches()
    yield
    jax.clear_caches()


def test_torch_without_packing_leaks_padding_into_the_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_varlen, "pack", unpacked)
    with pytest.raises(ConformanceFailure, match=r"varlen-padding-invariance.*torch") as info:
        test_rnn_varlen.test_padding_invariance(framework="torch", dtype="float64", conformance_run=META_RUN)
    assert "replay: python -m conformance replay" in str(info.value)
    with pytest.raises(ConformanceFailure, match=r"gradient-agreement.*torch.*\n.*parameter \w+"):
        test_rnn_varlen.test_varlen_gradient(framework="torch", dtype="float64", conformance_run=META_RUN)


def test_torch_without_packing_has_the_wrong_final_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the reference: h_n is the state after T steps, not H at each sequence's last step."""
    monkeypatch.setattr(torch_varlen, "pack", unpacked)
    with pytest.raises(ConformanceFailure, match=r"varlen-final-state.*torch") as info:
        test_rnn_varlen.test_final_state(framework="torch", dtype="float32", conformance_run=META_RUN)
    assert "h_n vs H at step" in str(info.value)


def test_flax_without_seq_lengths_leaks_padding(
    monkeypatch: pytest.MonkeyPatch, private_jax_programs: None
) -> None:
    """nn.RNN called without seq_lengths (the outputs still masked): the carry runs on through the
    padding, and the reversed sequences start from it."""
    original = jax_varlen.modules

    def no_lengths(spec: Any) -> Any:
        rnn, dense = original(spec)

        class Unmasked:
            def apply(self, variables: Any, X: Any, *, initial_carry: Any, seq_lengths: Any) -> Any:
                return rnn.apply(variables, X, initial_carry=initial_carry)

        return Unmasked(), dense

    monkeypatch.setattr(jax_varlen, "modules", no_lengths)
    with pytest.raises(ConformanceFailure, match=r"varlen-padding-invariance.*jax"):
        test_rnn_varlen.test_padding_invariance(framework="jax", dtype="float64", conformance_run=META_RUN)


def test_the_unpatched_adapters_pass() -> None:
    test_rnn_varlen.test_padding_invariance(framework="torch", dtype="float64", conformance_run=META_RUN)
    test_rnn_varlen.test_padding_invariance(framework="jax", dtype="float32", conformance_run=META_RUN)


def clamped(x: Any, lengths: Any) -> Any:
    """Lengths past T taken as T: what flax does (a clamped gather), silently."""
    return torch_pack(x, lengths.clamp(max=x.shape[0]))


torch_pack = torch_varlen.pack


def test_torch_clamping_lengths_past_t_fails_length_beyond_t(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch_varlen, "pack", clamped)
    with pytest.raises(ConformanceFailure, match=r"varlen-length-beyond-t.*torch"):
        test_rnn_varlen.test_length_beyond_t(framework="torch", dtype="float64", conformance_run=META_RUN)
