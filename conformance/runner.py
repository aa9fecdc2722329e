"""Running one property on one case: the single entry point of the pytest tests and of replay.

`run_property` finds the framework's backend, sets the spec fields the framework
fixes (its conventions) and the dtype, builds the Context that carries the test's
record and the row's reproducer file, and calls the property. It raises ConformanceFailure
(a disagreement), Unsupported or NotApplicable (skips), or whatever the check raised (an
error row), after writing that case to the row's reproducer file as a failure does.

`arbitrate` turns a failure into one a person can act on without computing anything,
as PyTorch's reference tests do: it reruns the failing framework in float64 on the same
case (a float32 row) and every other framework in the failing dtype, and puts its verdict
in front of the message:

* "rounding": the framework agrees with the reference in float64, and its float32 error
  is within ROUNDING_LIMIT tolerances: the bound missed a rounding (a constant of
  conformance/tolerances.py to revisit), not a wrong result;
* "disagreement": it disagrees in float64 too, or there is no wider dtype to ask (a
  float64 row), or the float32 error is beyond anything rounding explains.
"""

from __future__ import annotations

from dataclasses import replace

from conformance import frameworks, registry
from conformance.backend import Backend, Unsupported
from conformance.case import Case
from conformance.compare import ConformanceFailure, Context, failure_message, keep_case
from conformance.component import NotApplicable, Property
from conformance.config import Run, RunConfig
from conformance.dtypes import rounded_case
from conformance.record import Record
from conformance.tolerances import PRECISIONS, ROUNDING_LIMIT


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
    case = rounded_case(under_conventions(case, backend).with_dtype(dtype))  # low precision: rounded once
    ctx = Context(
        prop.id,
        registry.component(case.component),
        framework,
        backend.version(),
        dtype,
        run.config.device,
        case,
        run.record,
        run.config.reproducer_path(case.component, prop.id, framework, dtype),
    )
    if run.record is not None:
        run.record.examples += 1
        run.record.framework_version = ctx.version
    scoped = run.record.scoped if run.record is not None else ()
    reaching = [(i, r) for i in scoped if (r := i.reaches(ctx.case)) is not False]
    try:
        prop.check(ctx, backend)
    except (NotApplicable, Unsupported):
        raise
    except Exception as failure:
        issue = next((i for i, _ in reaching if i.reproduced_by(failure)), None)
        if issue is None or run.record is None:
            if not isinstance(failure, AssertionError):  # the check raised: an error row, this case
                keep_case(ctx)  # replays it
            raise
        # the case reaches a known issue and fails as it says: the issue, not a new failure
        run.record.reproduced[issue.id] = run.record.reproduced.get(issue.id, 0) + 1
    else:
        if run.record is not None:
            run.record.not_reproduced += [(issue, ctx.case) for issue, surely in reaching if surely]


def rerun(
    prop: Property, case: Case, framework: str, dtype: str, config: RunConfig
) -> tuple[float | None, str]:
    """The worst error of `prop` on `case` in another framework or dtype (None if it did not
    run), and the same in words."""
    record = Record(prop.id, case.component, framework, dtype, config.device)
    quiet = Run(replace(config, reproducer_dir=None), record)
    try:
        run_property(prop, case, framework, dtype, quiet)
    except (NotApplicable, Unsupported) as err:
        return None, f"not run ({str(err).splitlines()[0][:80]})"
    except ConformanceFailure:
        pass
    except Exception as err:  # the rerun of a broken case must not hide the failure itself
        return None, f"raised {type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''}"
    if record.worst is None:
        return None, "nothing compared"
    ratio = record.worst.ratio
    return ratio, f"{ratio:.3g} tolerances" + ("" if ratio <= 1 else " (fails)")


def verdict(prop: Property, ctx: Context, ratio: float, config: RunConfig) -> tuple[str, str]:
    """("rounding" or "disagreement", why), from the failing framework's rerun in float64."""
    off = f"{ctx.framework} {ctx.dtype} is {ratio:.3g} tolerances off the reference"
    wider = PRECISIONS[ctx.dtype].wider
    if wider is None:
        return "disagreement", f"{off} (no wider dtype to rerun in)"
    wide_ratio, again = rerun(prop, ctx.case, ctx.framework, wider, config)
    if wide_ratio is None or not wide_ratio <= 1.0:
        return "disagreement", f"{off}, and in {wider} on the same case: {again}"
    if ratio <= ROUNDING_LIMIT:
        return "rounding", (
            f"{off} but agrees in {wider} on the same case ({again}): a rounding error"
            " beyond the bound of conformance/tolerances.py, not a wrong result"
        )
    return "disagreement", (
        f"{off}, beyond the {ROUNDING_LIMIT:g} rounding could explain, though it"
        f" agrees in {wider} ({again}): the {ctx.dtype} computation itself is wrong"
    )


def arbitrate(prop: Property, failure: ConformanceFailure, run: Run) -> ConformanceFailure:
    """The failure with its verdict ("rounding" or "disagreement") and the reruns in front."""
    ctx = failure.context
    if ctx is None:
        return failure
    config = run.config
    ratio = failure.worst.ratio if failure.worst is not None else float("inf")
    said, why = verdict(prop, ctx, ratio, config)
    first = f"{said}: {why}"
    others = [
        f
        for f in (config.frameworks or frameworks.names())
        if f != ctx.framework
        and not prop.not_applicable(f, ctx.dtype)
        and frameworks.skip_reason(f, config.device) is None
    ]
    if others:
        first += "\n  same case, other frameworks: " + "; ".join(
            f"{f} {ctx.dtype} {rerun(prop, ctx.case, f, ctx.dtype, config)[1]}" for f in others
        )
    arbitrated = ConformanceFailure(
        failure_message(ctx, failure.detail, failure.reproducer, first),
        ctx,
        failure.detail,
        failure.worst,
        failure.reproducer,
        said,
    )
    if hasattr(failure, "__notes__"):
        arbitrated.__notes__ = list(failure.__notes__)
    return arbitrated


def conclude(prop: Property, failure: BaseException, run: Run) -> BaseException:
    """What a test that failed raises: the (first) conformance failure arbitrated, its case
    pinned to the test's record (the row's worst case and reproducer are the message's)."""
    found = failure
    if isinstance(failure, BaseExceptionGroup):  # hypothesis found several distinct failures
        found = next((e for e in failure.exceptions if isinstance(e, ConformanceFailure)), failure)
    if not isinstance(found, ConformanceFailure) or found.context is None:
        return failure
    arbitrated = arbitrate(prop, found, run)
    keep_case(found.context)  # the row's file holds this case, whichever example was written last
    if run.record is not None and found.worst is not None:
        run.record.pin(found.worst, found.context.case, str(found.reproducer or ""))
    return arbitrated
