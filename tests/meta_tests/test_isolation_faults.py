"""A kernel that mixes the examples of a batch (a batch-wide sum added as 0 · Σ_n X[n]):
exact on finite input, so every agreement property passes, but a NaN or ±inf in one example
leaks into all of them (0 · NaN = NaN, 0 · inf = NaN), and nonfinite-isolation fails."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")
from runs import META_RUN

from conformance.compare import ConformanceFailure
from conformance.components.mlp import test_mlp
from conformance.components.mlp import torch_adapter as torch_mlp
from conformance.components.rnn import test_rnn
from conformance.components.rnn import torch_adapter as torch_rnn

UNSHRUNK = replace(META_RUN.config.profile, shrink=False)
RUN = replace(META_RUN, config=replace(META_RUN.config, profile=UNSHRUNK))


def mixing(adapter, axis: int):  # type: ignore[no-untyped-def]
    """The adapter's run on X + 0 · (the sum of X over the batch axis)."""
    run = adapter.run

    def mixed(case, cotangents=None, device=None):  # type: ignore[no-untyped-def]
        X = case.inputs["X"]
        with np.errstate(invalid="ignore"):
            X = X + 0.0 * X.sum(axis=axis, keepdims=True)
        return run(replace(case, inputs={**case.inputs, "X": X}), cotangents, device)

    return mixed


KERNELS = [(test_mlp, torch_mlp, 0), (test_rnn, torch_rnn, 1)]  # the test module, the adapter, X's batch axis


@pytest.mark.parametrize(("module", "adapter", "axis"), KERNELS)
def test_a_kernel_mixing_the_examples_fails_nonfinite_isolation(monkeypatch, module, adapter, axis) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(adapter, "run", mixing(adapter, axis))
    with pytest.raises(ConformanceFailure, match=r"nonfinite-isolation.*torch.*float32") as info:
        module.test_isolation(framework="torch", dtype="float32", conformance_run=RUN)
    assert "in example" in str(info.value) and "= nan" in str(info.value)


@pytest.mark.parametrize(("module", "adapter", "axis"), KERNELS)
def test_the_same_kernel_passes_on_finite_input(monkeypatch, module, adapter, axis) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(adapter, "run", mixing(adapter, axis))
    module.test_gradient(framework="torch", dtype="float32", conformance_run=RUN)
