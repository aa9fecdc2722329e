"""A known issue scoped to the cases that reach it (known_issues.toml `reached`,
conformance.scopes): a reaching case that fails is the issue, one that passes says the
issue looks fixed, and a case that does not reach it is judged as in any row.

The case is torch's float16 cross-entropy overflow (docs/findings/low-precision-reductions.md):
an RNN reading out 32 steps of logits near 3e3, whose per-step losses (about 2,200 each)
sum past float16's 65504 though their mean does not.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from runs import META_RUN

from conformance.case import Case
from conformance.compare import ConformanceFailure
from conformance.components.rnn.strategies import EXTREME_NAMES, Shape, rnn_case
from conformance.config import Run
from conformance.dtypes import rounded_case
from conformance.known_issues import KnownIssue, load
from conformance.properties import EXTREME_AGREEMENT
from conformance.record import Record
from conformance.runner import run_property
from conformance.scopes import low_precision_mean_overflows
from conformance.strategies import scaled
from conformance.testing import judge_scoped
from refimpl.rnn import RNNSpec

pytest.importorskip("torch")

SCOPE = "conformance.scopes:low_precision_mean_overflows"


def overflowing_case(steps: int = 32, logits: float = 3e3) -> Case:
    spec = RNNSpec(1, 1, 3, "tanh", readout="every", loss="cross_entropy")
    case = rnn_case(Shape(spec, steps, 1), seed=0)
    names = EXTREME_NAMES["logits"]
    return replace(case, params=scaled(case.params, names, logits), inputs=scaled(case.inputs, names, logits))


def issue(framework: str) -> KnownIssue:
    return KnownIssue(
        "float16-mean-loss-overflow", "bug", "extreme-agreement", "rnn", framework, "numpy", ">=1",
        "https://github.com/pytorch/pytorch/issues/85791", "inf where the sum overflows", ("float16",), SCOPE,
    )  # fmt: skip


def run_with(*scoped: KnownIssue, framework: str) -> Run:
    return replace(
        META_RUN, record=Record("extreme-agreement", "rnn", framework, "float16", "cpu", scoped=scoped)
    )


def test_the_scope_reaches_a_sum_past_the_range_and_not_a_mean_within_it() -> None:
    reaching = rounded_case(overflowing_case().with_dtype("float16"))
    assert low_precision_mean_overflows(reaching) is True
    short = rounded_case(overflowing_case(steps=4).with_dtype("float16"))  # 4 losses of ~2,200
    assert low_precision_mean_overflows(short) is False
    assert low_precision_mean_overflows(reaching.with_dtype("float32")) is False


def test_without_the_entry_the_overflow_fails_the_row() -> None:
    with pytest.raises(ConformanceFailure, match=r"output loss.*torch = inf"):
        run_property(EXTREME_AGREEMENT, overflowing_case(), "torch", "float16", run_with(framework="torch"))


def test_a_reaching_case_that_fails_is_the_known_issue() -> None:
    run = run_with(issue("torch"), framework="torch")
    run_property(EXTREME_AGREEMENT, overflowing_case(), "torch", "float16", run)
    assert run.record is not None and run.record.reproduced == {"float16-mean-loss-overflow": 1}
    with pytest.raises(pytest.xfail.Exception, match="on 1 of 1 cases"):
        judge_scoped(run.record)
    assert run.record.known_issue == "float16-mean-loss-overflow"


def test_a_reaching_case_that_passes_says_the_issue_looks_fixed() -> None:
    pytest.importorskip("optax")  # optax's float16 mean does not overflow: as if the bug were fixed
    run = run_with(issue("jax"), framework="jax")
    run_property(EXTREME_AGREEMENT, overflowing_case(), "jax", "float16", run)
    assert run.record is not None and len(run.record.not_reproduced) == 1
    with pytest.raises(pytest.fail.Exception, match=r"no longer reproduces.*reached by rnn"):
        judge_scoped(run.record)


def test_a_case_that_does_not_reach_the_issue_is_judged_as_any_other(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.components.rnn import torch_adapter

    run_model = torch_adapter.run

    def wrong_loss(case, cotangents, device=None):  # type: ignore[no-untyped-def]
        got = run_model(case, cotangents, device)
        return got._replace(outputs={**got.outputs, "loss": got.outputs["loss"] * 1.5})

    monkeypatch.setattr(torch_adapter, "run", wrong_loss)
    run = run_with(issue("torch"), framework="torch")
    with pytest.raises(ConformanceFailure, match="output loss"):  # 4 steps: no overflow to excuse it
        run_property(EXTREME_AGREEMENT, overflowing_case(steps=4), "torch", "float16", run)


@pytest.mark.parametrize(
    ("reached", "message"),
    [("conformance.scopes:no_such_scope", "naming a function"), ("no.such.module:f", "cannot import")],
)
def test_an_entry_whose_scope_cannot_be_found_is_refused(tmp_path, reached: str, message: str) -> None:  # type: ignore[no-untyped-def]
    entry = issue("torch")
    path = tmp_path / "known.toml"
    fields = {k: getattr(entry, k) for k in ("id", "kind", "property", "component", "framework", "link")}
    fields |= {"package": "numpy", "versions": ">=1", "expected": "x", "reached": reached}
    path.write_text("[[issue]]\n" + "".join(f'{k} = "{v}"\n' for k, v in fields.items()))
    with pytest.raises(ValueError, match=f"known.toml .*reached: .*{message}"):
        load(path)


def test_the_hunt_names_a_scoped_issue_only_for_the_findings_that_reach_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conformance.hunt.engine import Hunt, HuntConfig
    from conformance.hunt.findings import Finding

    hunt = Hunt(HuntConfig(out=tmp_path, seed=0, known_issues=(issue("torch"),)), display=None)  # type: ignore[arg-type]

    def finding(case: Case) -> Finding:
        row = ("rnn", "extreme-agreement", "torch", "2", "float16")
        return Finding(*row, path="default", parameter="loss", kind="forward", case=case)

    assert hunt.known_issue(finding(overflowing_case())).startswith("float16-mean-loss-overflow")
    assert hunt.known_issue(finding(overflowing_case(steps=4))) == ""  # another failure on the same row
