"""A component's checks as pytest tests: the one line of every component's test module.

    globals().update(component_tests("mlp"))

gives one test per Check of the record, `test_<name>`, parametrized by the plugin
over the selected frameworks and dtypes (`framework`, `dtype` arguments) and marked
with the property and component, so the report has one row per (property,
component, framework, dtype, device). The test receives the run (`conformance_run`,
a fixture of the plugin: the session's config and the row's record) and draws its
cases from the check's strategy under the run's hypothesis profile, shrinking a
failure within the profile's budget. The failure hypothesis settles on is arbitrated
once (conformance.runner.conclude: "rounding" or "disagreement") and pinned to the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given

from conformance import frameworks, registry
from conformance.backend import Unsupported
from conformance.case import Case
from conformance.component import Check, Component, NotApplicable
from conformance.config import Run
from conformance.record import Record
from conformance.runner import conclude, run_property

ConformanceTest = Callable[[str, str, Run], None]


def check_test(component: Component, check: Check) -> ConformanceTest:
    """The pytest test of one check: every example of its strategy through run_property."""
    prop = check.property

    @pytest.mark.conformance(property=prop.id, component=component.name)
    def test(framework: str, dtype: str, conformance_run: Run) -> None:
        run = conformance_run
        reason = frameworks.skip_reason(framework, run.config.device)
        reason = reason or prop.not_applicable(framework, dtype)
        if reason:
            pytest.skip(reason)

        run = replace(run, config=replace(run.config, profile=run.config.profile.for_dtype(dtype)))
        if run.record is not None and run.record.known_issue:  # expected to fail: shrinking it would
            run = replace(run, config=replace(run.config, profile=replace(run.config.profile, shrink=False)))
        # only spend time (hypothesis derives the ci examples from the source below: keep it as is)

        @run.config.profile.hypothesis_settings()
        @given(case=check.cases(run.config.profile))
        def examples(case: Case) -> None:
            run_property(prop, case, framework, dtype, run)

        try:
            with run.config.profile.shrink_budget():
                examples()
        except (NotApplicable, Unsupported) as err:
            pytest.skip(str(err))
        except (AssertionError, BaseExceptionGroup) as failure:
            concluded = conclude(prop, failure, run)
            if concluded is failure:
                raise
            raise concluded from None
        if run.record is not None:
            judge_scoped(run.record)

    test.__name__ = check.test_name
    test.__qualname__ = check.test_name
    test.__doc__ = f"{prop.id} on {component.name}"
    return test


def component_tests(*names: str) -> dict[str, Any]:
    """test_<name> -> test for every check of the named components (a module's globals)."""
    tests: dict[str, Any] = {}
    for name in names:
        component = registry.component(name)
        for check in component.checks:
            if check.test_name in tests:
                raise ValueError(
                    f"test name: {check.test_name} is bound twice (component {name!r}); give the check a name"
                )
            tests[check.test_name] = check_test(component, check)
    return tests


def judge_scoped(record: Record) -> None:
    """The row's verdict on its case-scoped known issues (conformance.scopes), once every
    example passed or reproduced one: an issue that a case reached without reproducing looks
    fixed (a failure, as a strict XPASS); one that reproduced makes the row "known"."""
    if record.not_reproduced:
        issue, case = record.not_reproduced[0]
        record.known_issue = issue.id
        pytest.fail(f"[XPASS(strict)] {issue.fixed()} (it was reached by {case.describe()})", pytrace=False)
    if record.reproduced:
        found = {i.id: i for i in record.scoped}
        record.known_issue = next(iter(record.reproduced))
        counts = record.reproduced.items()
        pytest.xfail("; ".join(f"{found[k].reason()} on {n} of {record.examples} cases" for k, n in counts))
