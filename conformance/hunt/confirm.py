"""Confirmation: a case is a finding only if the suite's own property fails on it, alone.

`check` runs `conformance.runner.run_property` (the function behind every pytest test and
`replay`) with the component's property, in the framework and dtype, under the tolerance
table (the per-entry rounding bound), arbitrates a wrong value as the suite's tests do
(`conformance.runner.verdict`: the same case in float64; "rounding" when it agrees there
and the float32 error stays within ROUNDING_LIMIT tolerances), and classifies what went
wrong:

  wrong-value   a finite value beyond tolerance: the silent kind, the most severe
  non-finite    NaN or inf where the reference is finite (or the other way round)
  crash         the process died (a signal): recorded by the worker pool, not here
  exception     the framework (or, if the traceback ends there, the reference) raised

A wrong value arbitrated as rounding is a miss of the bound, not the framework's: the hunt
notes it beside its unconfirmed suspects and writes no finding for it.
"""

from __future__ import annotations

import builtins
import math
import traceback
from dataclasses import dataclass, field

from hypothesis.errors import HypothesisException

from conformance import registry
from conformance.backend import Unsupported
from conformance.case import Case
from conformance.compare import ConformanceFailure
from conformance.component import NotApplicable
from conformance.config import Run, RunConfig
from conformance.record import Record
from conformance.runner import run_property, verdict

KINDS = ("wrong-value", "non-finite", "crash", "exception")  # most severe first


@dataclass(frozen=True)
class Verdict:
    kind: str
    property: str
    parameter: str  # the worst tensor ("W2", "output Y", ...), or the exception's type
    ratio: float  # in tolerances (inf for non-finite, crash, exception)
    actual: float = math.nan
    expected: float = math.nan
    index: tuple[int, ...] = field(default=())
    message: str = ""
    arbitration: str = ""  # a wrong value's "rounding" or "disagreement" (conformance.runner.verdict)

    def same_failure(self, other: Verdict) -> bool:
        return (self.kind, self.property, self.arbitration) == (other.kind, other.property, other.arbitration)

    @builtins.property  # the field `property` hides the builtin in this class's body
    def rounding(self) -> bool:
        """A wrong value that the same case in float64 shows to be rounding: no finding."""
        return self.arbitration == "rounding"


def check(case: Case, property_id: str, framework: str, dtype: str, device: str = "cpu") -> Verdict | None:
    """None when the property holds (or does not apply); else what failed."""
    prop = registry.component(case.component).property(property_id)
    record = Record(prop.id, case.component, framework, dtype, device)
    run = Run(RunConfig(device=device, reproducer_dir=None), record)
    try:
        run_property(prop, case, framework, dtype, run)
    except ConformanceFailure as failure:
        worst = record.worst
        if worst is None:
            return Verdict("wrong-value", prop.id, "", math.inf, message=str(failure))
        finite = math.isfinite(worst.actual) and math.isfinite(worst.expected)
        said, why = ("", "")
        if finite and failure.context is not None:
            said, why = verdict(prop, failure.context, worst.ratio, run.config)
        return Verdict(
            "wrong-value" if finite else "non-finite",
            prop.id,
            worst.parameter,
            worst.ratio,
            worst.actual,
            worst.expected,
            tuple(worst.index),
            f"{said}: {why}\n  {failure}" if said else str(failure),
            said,
        )
    except (NotApplicable, Unsupported, HypothesisException):
        return None  # a skip, or a case the property rejects (a finite difference across a kink)
    except Exception as err:  # what the framework raised is the finding
        origin = traceback.extract_tb(err.__traceback__)[-1]
        return Verdict(
            "exception",
            prop.id,
            type(err).__name__,
            math.inf,
            message=f"{type(err).__name__}: {err} (raised at {origin.filename}:{origin.lineno})",
        )
    return None
