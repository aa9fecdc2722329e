"""Running one property on one case: the single entry point of the pytest tests and of replay.

`run_property` finds the framework's backend, sets the spec fields the framework
fixes (its conventions) and the dtype, builds the Context that carries the test's
record and the row's reproducer file, and calls the property. It raises ConformanceFailure
(a disagreement), Unsupported or NotApplicable (skips), or whatever the check raised (an
error row), after writing that case to the row's reproducer file as a failure does.
"""

from __future__ import annotations

from dataclasses import replace

from conformance import frameworks, registry
from conformance.backend import Backend, Unsupported
from conformance.case import Case
from conformance.compare import Context, keep_case
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
                  run.config.device, case, run.record,
                  run.config.reproducer_path(case.component, prop.id, framework, dtype))
    if run.record is not None:
        run.record.examples += 1
        run.record.framework_version = ctx.version
    try:
        prop.check(ctx, backend)
    except (AssertionError, NotApplicable, Unsupported):
        raise
    except Exception:  # the check raised: the row is an error, and this case replays it
        keep_case(ctx)
        raise
