"""A case-scoped known issue that raises (known_issues.toml `raises`, beside `reached`): a
reaching case on which the framework raises that exception is the issue; any other exception,
a disagreement on a reaching case, and an exception on a case that does not reach it fail.

The planted bug: torch's RNN raising TypeError for a float64 tanh network, as Keras's SimpleRNN
does (keras-simplernn-float64-scan-carry), while relu networks run.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from runs import META_RUN

from conformance.case import Case
from conformance.compare import ConformanceFailure
from conformance.components.rnn.strategies import Shape, rnn_case
from conformance.config import Run
from conformance.known_issues import KnownIssue, load
from conformance.properties import FORWARD_AGREEMENT
from conformance.record import Record
from conformance.runner import run_property
from conformance.testing import judge_scoped
from refimpl.rnn import RNNSpec

pytest.importorskip("torch")


def tanh_in_float64(case: Case) -> bool:
    """The planted bug's scope (a `reached` predicate: this module, imported by name)."""
    return case.spec.dtype == "float64" and case.spec.nonlinearity == "tanh"


ENTRY = KnownIssue(
    "planted-float64-tanh-raises", "bug", "forward-agreement", "rnn", "torch", "numpy", ">=1",
    "https://example.org/1", "raises TypeError for a float64 tanh network", ("float64",),
    f"{__name__}:tanh_in_float64", "TypeError",
)  # fmt: skip


def case(nonlinearity: str) -> Case:
    return rnn_case(Shape(RNNSpec(2, 3, 2, nonlinearity), 4, 2), seed=0)


@pytest.fixture
def raising(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """torch's RNN adapter, made to raise `planted["error"]` on float64 tanh networks (None: run)."""
    from conformance.components.rnn import torch_adapter

    planted: dict[str, object] = {"error": TypeError("carry input and carry output must have equal types")}
    run_model = torch_adapter.run

    def run(case, cotangents, device=None):  # type: ignore[no-untyped-def]
        if planted["error"] is not None and tanh_in_float64(case):
            raise planted["error"]  # type: ignore[misc]
        return run_model(case, cotangents, device)

    monkeypatch.setattr(torch_adapter, "run", run)
    return planted


def run_with(*scoped: KnownIssue) -> Run:
    record = Record("forward-agreement", "rnn", "torch", "float64", "cpu", scoped=scoped)
    return replace(META_RUN, record=record)


def test_a_reaching_case_that_raises_the_named_exception_is_the_known_issue(raising) -> None:  # type: ignore[no-untyped-def]
    run = run_with(ENTRY)
    run_property(FORWARD_AGREEMENT, case("tanh"), "torch", "float64", run)
    run_property(FORWARD_AGREEMENT, case("relu"), "torch", "float64", run)  # runs, and agrees
    assert run.record is not None and run.record.reproduced == {ENTRY.id: 1}
    with pytest.raises(pytest.xfail.Exception, match="on 1 of 2 cases"):
        judge_scoped(run.record)


def test_without_the_entry_the_exception_is_an_error(raising) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="carry"):
        run_property(FORWARD_AGREEMENT, case("tanh"), "torch", "float64", run_with())


def test_another_exception_on_a_reaching_case_is_an_error(raising) -> None:  # type: ignore[no-untyped-def]
    raising["error"] = ValueError("a different failure")
    with pytest.raises(ValueError, match="different failure"):
        run_property(FORWARD_AGREEMENT, case("tanh"), "torch", "float64", run_with(ENTRY))


def test_a_disagreement_on_a_reaching_case_fails(raising, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from conformance.components.rnn import torch_adapter

    raising["error"] = None  # the call runs ... and returns a wrong Y: not what the entry says
    run_model = torch_adapter.run
    monkeypatch.setattr(
        torch_adapter,
        "run",
        lambda c, cot, device=None: (got := run_model(c, cot, device))._replace(
            outputs={**got.outputs, "Y": got.outputs["Y"] * 1.01}
        ),
    )
    with pytest.raises(ConformanceFailure, match="output Y"):
        run_property(FORWARD_AGREEMENT, case("tanh"), "torch", "float64", run_with(ENTRY))


def test_a_reaching_case_that_runs_says_the_issue_looks_fixed(raising) -> None:  # type: ignore[no-untyped-def]
    raising["error"] = None
    run = run_with(ENTRY)
    run_property(FORWARD_AGREEMENT, case("tanh"), "torch", "float64", run)
    with pytest.raises(pytest.fail.Exception, match=r"planted-float64-tanh-raises.*no longer reproduces"):
        judge_scoped(run.record)  # type: ignore[arg-type]


SCOPED = 'reached = "conformance.scopes:low_precision_mean_overflows"\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('raises = "TypeError"\n', "raises: applies to an entry with `reached`"),
        (SCOPED + 'raises = "NoSuchError"\n', "built-in exception"),
        (SCOPED + 'raises = "len"\n', "built-in exception"),
    ],
)
def test_an_entry_whose_exception_cannot_be_used_is_refused(tmp_path, extra: str, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "known.toml"
    fields = {k: getattr(ENTRY, k) for k in ("id", "kind", "property", "component", "framework", "link")}
    fields |= {"package": "numpy", "versions": ">=1", "expected": "x"}
    path.write_text("[[issue]]\n" + "".join(f'{k} = "{v}"\n' for k, v in fields.items()) + extra)
    with pytest.raises(ValueError, match=f"known.toml .*{message}"):
        load(path)


def test_the_hunt_names_the_entry_for_its_exception_on_a_reaching_case_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conformance.hunt.engine import Hunt, HuntConfig
    from conformance.hunt.findings import Finding

    hunt = Hunt(HuntConfig(out=tmp_path, seed=0, known_issues=(ENTRY,)), display=None)  # type: ignore[arg-type]

    def finding(nonlinearity: str, kind: str, parameter: str) -> Finding:
        row = ("rnn", "forward-agreement", "torch", "2", "float64")
        return Finding(*row, path="default", parameter=parameter, kind=kind, case=case(nonlinearity))

    assert hunt.known_issue(finding("tanh", "exception", "TypeError")).startswith(ENTRY.id)
    assert hunt.known_issue(finding("tanh", "exception", "ValueError")) == ""
    assert hunt.known_issue(finding("tanh", "forward", "output Y")) == ""  # a wrong value: not this bug
    assert hunt.known_issue(finding("relu", "exception", "TypeError")) == ""
