"""A fault planted in a refimpl helper changes the reference and not the frameworks, so the suite fails.

The adapters read the spec's fields and build their networks themselves, and the strategies
draw parameters with the suite's own sampler: had they called the reference's helpers
(MLPSpec.activation, init_params), a wrong helper would change every implementation alike
and every agreement would pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from runs import META_RUN

from conformance.compare import ConformanceFailure
from conformance.components.mlp import test_mlp
from conformance.components.mlp.strategies import MLP_CATALOG, mlp_case
from conformance.components.mlp_bn.strategies import BN_CATALOG, bn_case
from conformance.components.rnn.strategies import RNN_CATALOG, rnn_case
from conformance.components.trajectory.strategies import TRAJECTORY_CATALOG, trajectory_case
from refimpl import init
from refimpl.mlp import MLPSpec


def hidden_activation_everywhere(self: MLPSpec, layer: int) -> str:
    """MLPSpec.activation with the output layer's activation replaced by the hidden one."""
    return self.hidden_activation


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_wrong_activation_helper_fails_forward_agreement(
    monkeypatch: pytest.MonkeyPatch, framework: str
) -> None:
    pytest.importorskip({"torch": "torch", "jax": "flax"}[framework])
    monkeypatch.setattr(MLPSpec, "activation", hidden_activation_everywhere)
    failure = rf"forward-agreement.*{framework}.*\n  parameter output (Y|loss)"
    with pytest.raises(ConformanceFailure, match=failure):
        test_mlp.test_forward(framework=framework, dtype="float64", conformance_run=META_RUN)


def test_the_cases_do_not_come_from_refimpl_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every component's strategies draw their parameters without refimpl.init (a broken one
    raises here); the golden set, drawn the same way, pins their values."""

    def broken(*args: object, **kwargs: object) -> dict[str, np.ndarray]:
        raise AssertionError("refimpl.init.draw called by a strategy")

    monkeypatch.setattr(init, "draw", broken)
    cases = [
        mlp_case(MLP_CATALOG[0], 3, 1),
        bn_case(BN_CATALOG[0], 6, 1, train=True),
        rnn_case(RNN_CATALOG[1], 1),
        trajectory_case(TRAJECTORY_CATALOG[0], 1),
    ]
    assert all(case.params for case in cases)
