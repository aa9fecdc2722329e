"""One failing row, one case: the row a failure leaves in the report points to the case its
message prints (the example hypothesis settled on, not the worst one it tried on the way)."""

from __future__ import annotations

import json

import pytest

from conformance.replay import load_case

pytest.importorskip("torch")

FAULT = '''
from conformance.backend import Outcome
from conformance.components.mlp import torch_adapter

_run = torch_adapter.run


def run(case, cotangents, device=None):
    """torch's gradients 0.1% off when the batch has one row."""
    got = _run(case, cotangents, device)
    if case.inputs["X"].shape[0] != 1 or not got.grads:
        return got
    return Outcome(got.outputs, {k: g * 1.001 for k, g in got.grads.items()}, got.state)


torch_adapter.run = run
'''


def test_the_row_points_to_the_case_the_message_prints(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAULT)
    report = pytester.path / "r.json"
    result = pytester.runpytest_subprocess(
        "--pyargs",
        "conformance.components.mlp.test_mlp",
        "-p",
        "no:cacheprovider",
        "-k",
        "test_gradient",
        "--frameworks",
        "torch",
        "--dtypes",
        "float32",
        "--conformance-report",
        str(report),
    )
    result.assert_outcomes(failed=1)
    (row,) = json.loads(report.read_text())["rows"]
    assert row["status"] == "failed"
    assert row["message"].count("disagreement: torch float32") == 1
    assert row["reproducer"]  # relative to the report
    assert f"replay: python -m conformance replay {report.parent / row['reproducer']}" in row["message"]
    worst = row["worst"]
    assert f"parameter {worst['parameter']}: worst element {worst['index']} of" in row["message"]
    assert f"{worst['ratio']:.3g} tolerances" in row["message"]
    assert "inputs: X(1, " in row["message"]
    case, meta = load_case(report.parent / row["reproducer"])  # the file holds the message's case
    assert f"case: {case.describe()}" in row["message"] and meta["framework"] == "torch"
