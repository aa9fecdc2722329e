"""What one conformance test observed over all its examples: one row of the report.

The plugin makes a record for each conformance test and hands it down with the
run (conformance.config.Run); every comparison of the test updates it through its
Context (examples run, the worst error in tolerances and where it happened, the
case that produced it), and the plugin turns it into the report row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from conformance.case import Case

if TYPE_CHECKING:
    from conformance.known_issues import KnownIssue


@dataclass
class Worst:
    ratio: float  # |a - r| / allowed at the worst element
    parameter: str  # the output, gradient or state entry
    index: tuple[int, ...]
    actual: float
    expected: float


@dataclass
class Record:
    property: str
    component: str
    framework: str
    dtype: str
    device: str
    framework_version: str = ""
    examples: int = 0
    worst: Worst | None = None
    worst_case: Case | None = field(default=None, repr=False)
    reproducer: str = ""
    known_issue: str = ""
    pinned: bool = False  # set by pin: later observations (reruns) leave the row as it is
    # known issues that hold only for the cases reaching them (conformance.scopes), and what
    # the examples showed: those that reproduced one (by id) and those that reached one and passed
    scoped: tuple[KnownIssue, ...] = ()
    reproduced: dict[str, int] = field(default_factory=dict)
    not_reproduced: list[tuple[KnownIssue, Case]] = field(default_factory=list)

    def observe(self, worst: Worst, case: Case) -> None:
        if self.pinned:
            return
        if self.worst is None or not worst.ratio <= self.worst.ratio:  # NaN counts as worst
            self.worst = worst
            self.worst_case = case

    def pin(self, worst: Worst, case: Case, reproducer: str) -> None:
        """The row's worst is the failure the test reports: its case, its reproducer (not an
        example hypothesis tried while shrinking toward it)."""
        self.worst, self.worst_case, self.reproducer, self.pinned = worst, case, reproducer, True

    def row(self, status: str, message: str = "") -> dict[str, Any]:
        """The report row, in plain Python types: it travels between xdist processes."""
        return plain(
            {
                "property": self.property,
                "component": self.component,
                "framework": self.framework,
                "framework_version": self.framework_version,
                "dtype": self.dtype,
                "device": self.device,
                "status": status,
                "examples": self.examples,
                "worst_ratio": None if self.worst is None else self.worst.ratio,
                "worst": None if self.worst is None else asdict(self.worst),
                "reproducer": self.reproducer,
                "known_issue": self.known_issue,
                "message": message,
            }
        )


def plain(value: Any) -> Any:
    """NumPy scalars and tuples inside a row, as the int, float, str and list JSON knows."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
