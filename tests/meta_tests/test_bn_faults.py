"""The batch-norm suite must fail when batch norm is wrong: faults injected into torch's
batch norm (through the real adapter) or into the reference.

Each test swaps one piece for a faulty one, runs a real property test of
conformance/components/mlp_bn/test_mlp_bn.py (hypothesis and all) and expects a
ConformanceFailure naming the property, the framework and the parameter or state
entry that went wrong. The faults: a backward that treats the batch mean and
variance as constants (terms [2] and [3] of refimpl/batchnorm.py dropped), a
running variance updated with the other estimator, and the momentum read the
other way round (m for 1 - m).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from runs import META_RUN  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.mlp_bn import test_mlp_bn  # noqa: E402
from refimpl import batchnorm as bn  # noqa: E402

_batch_norm = F.batch_norm
_update = bn.update_running_stats


def torch_constant_statistics(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """torch's batch norm with the batch statistics detached in training mode: the
    forward and the running statistics are right, the input gradient is δ γ s only."""
    y = _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    if not training:
        return y
    mean, var = x.mean(dim=0).detach(), x.var(dim=0, unbiased=False).detach()
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def torch_biased_running_var(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """torch's batch norm whose running variance takes the biased batch variance."""
    before = running_var.clone() if running_var is not None else None
    y = _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    if training and before is not None:
        with torch.no_grad():
            running_var.copy_((1 - momentum) * before + momentum * x.var(dim=0, unbiased=False))
    return y


def torch_swapped_momentum(
    x: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """torch's batch norm with momentum 1 - m: the running statistics keep m of the batch."""
    return _batch_norm(x, running_mean, running_var, weight, bias, training, 1 - momentum, eps)


def reference_constant_statistics(dY: np.ndarray, cache: bn.BatchNormCache) -> bn.BatchNormGrads:
    """The reference's training backward with terms [2] and [3] dropped."""
    right = bn.batchnorm_eval_backward(dY, bn.BatchNormEvalCache(*cache))
    return bn.BatchNormGrads(right.dX, right.dgamma, right.dbeta)


def reference_other_estimator(
    *args: Any, running_var_estimator: str = "unbiased", **kwargs: Any
) -> dict[str, np.ndarray]:
    other = "biased" if running_var_estimator == "unbiased" else "unbiased"
    n = args[3] if len(args) > 3 else kwargs["n"]
    if other == "unbiased" and n < 2:
        other = "biased"
    return _update(*args, running_var_estimator=other, **kwargs)


def reference_swapped_momentum(*args: Any, momentum: float = 0.1, **kwargs: Any) -> dict[str, np.ndarray]:
    return _update(*args, momentum=1.0 - momentum, **kwargs)


# The property tests' hypothesis runs with the shrink phase off: a fault shows at the first
# example, and shrinking it to the smallest seed (some 100 runs) is the report's business, not
# this test's.
NO_SHRINK = replace(
    META_RUN, config=replace(META_RUN.config, profile=replace(META_RUN.config.profile, shrink=False))
)


def _fails(test: Any, framework: str, dtype: str, match: str) -> str:
    with pytest.raises(ConformanceFailure, match=match) as info:
        test(framework=framework, dtype=dtype, conformance_run=NO_SHRINK)
    message = str(info.value)
    assert f"framework {framework}" in message and f"dtype {dtype}" in message
    assert "replay: python -m conformance replay" in message
    return message


# --- the backward with the batch statistics as constants --------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_constant_statistics_backward_fails_gradient_agreement(
    monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    monkeypatch.setattr(F, "batch_norm", torch_constant_statistics)
    _fails(test_mlp_bn.test_gradient, "torch", dtype, r"gradient-agreement.*\n  parameter (Z1|Z2|W1|W2|X)\b")


def test_torch_constant_statistics_backward_fails_the_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reference involved: Σ_n ∂L/∂Z = 0 breaks."""
    monkeypatch.setattr(F, "batch_norm", torch_constant_statistics)
    _fails(test_mlp_bn.test_gradient_sums, "torch", "float64", r"bn-gradient-sums.*\n  parameter Σ_n ∂L/∂Z\d")


def test_torch_constant_statistics_forward_still_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault lives in the backward only: the forward rows stay green."""
    monkeypatch.setattr(F, "batch_norm", torch_constant_statistics)
    test_mlp_bn.test_forward(framework="torch", dtype="float64", conformance_run=META_RUN)


def test_reference_constant_statistics_backward_fails_against_each_framework(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bn, "batchnorm_train_backward", reference_constant_statistics)
    for framework in ("torch", "jax"):
        _fails(
            test_mlp_bn.test_gradient,
            framework,
            "float64",
            r"gradient-agreement.*\n  parameter (Z1|Z2|W1|W2|X)\b",
        )
    _fails(
        test_mlp_bn.test_finite_differences,
        "numpy",
        "float64",
        r"finite-differences.*\n  parameter (W1|W2|X) \(directional\)",
    )


# --- the running statistics: the estimator, the momentum ---------------------------------


def test_torch_biased_running_variance_fails_state_agreement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(F, "batch_norm", torch_biased_running_var)
    message = _fails(test_mlp_bn.test_state, "torch", "float64", r"state-agreement")
    assert "parameter state after 1 step: running_var1" in message


def test_torch_swapped_momentum_fails_state_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(F, "batch_norm", torch_swapped_momentum)
    _fails(
        test_mlp_bn.test_state,
        "torch",
        "float32",
        r"state-agreement.*\n  parameter state after 1 step: running_(mean|var)\d",
    )


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_reference_with_the_other_estimator_fails_state_agreement(
    monkeypatch: pytest.MonkeyPatch, framework: str
) -> None:
    monkeypatch.setattr(bn, "update_running_stats", reference_other_estimator)
    message = _fails(test_mlp_bn.test_state, framework, "float64", r"state-agreement")
    assert "running_var" in message and "running_mean" not in message


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_reference_with_swapped_momentum_fails_state_agreement(
    monkeypatch: pytest.MonkeyPatch, framework: str
) -> None:
    monkeypatch.setattr(bn, "update_running_stats", reference_swapped_momentum)
    _fails(
        test_mlp_bn.test_state,
        framework,
        "float64",
        r"state-agreement.*\n  parameter state after 1 step: running_(mean|var)\d",
    )


def test_the_faults_are_faults() -> None:
    """Each faulty update differs from the right one on a plain batch (so a pass above would
    mean the suite missed it, not that the fault did nothing)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    state = {"running_mean": rng.normal(size=3), "running_var": rng.uniform(0.5, 2, 3)}
    mu, var = bn.batch_statistics(X)
    right = _update(state, mu, var, 6, momentum=0.1)
    for fault in (reference_other_estimator, reference_swapped_momentum):
        wrong = fault(
            state, mu, var, 6, momentum=0.1, momentum_convention="torch", running_var_estimator="unbiased"
        )
        assert not np.allclose(wrong["running_var"], right["running_var"])
