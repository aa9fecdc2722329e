"""Running one property on one case: the single entry point of the pytest tests and of replay.

`run_property` finds the framework's backend, sets the spec fields the framework
fixes (its conventions) and the dtype, builds the Context that carries the test's
record and reproducer folder, and calls the property. It raises ConformanceFailure
(a disagreement), Unsupported or NotApplicable (skips).
"""

from __future__ import annotations

from dataclasses import replace

from conformance import frameworks, registry
from conformance.backend import Backend
from conformance.case import Case
from conformance.compare import Context
from conformance.component import NotApplicable, Property
from conformance.config import Run


def under_conventions(case: Case, backend: Backend) -> Case:
    """The case with the spec fields this backend fixes set to its values."""
    fixed = {k: v for k, v in backend.conventions(case.component).items() if hasattr(case.spec, k)}
    return replace(case, spec=replace(case.spec, **fixed)) if fixed else case


def run_property(prop: Property, case: Case, framework: str, dtype: str, run: Run | None = None) -> None:
    """Check `prop` on `case` in `framework` and `dtype`, under the run's device and record."""
    run = run or Run()
    reason = prop.not_applicable(framework, dtype)
    if reason:
        raise NotApplicable(reason)
    backend = frameworks.backend(framework, run.config.device)
    case = under_conventions(case, backend).with_dtype(dtype)
    ctx = Context(prop.id, registry.component(case.component), framework, backend.version(), dtype,
                  run.config.device, case, run.record, run.config.reproducer_dir)
    if run.record is not None:
        run.record.examples += 1
        run.record.framework_version = ctx.version
    prop.check(ctx, backend)
