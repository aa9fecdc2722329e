"""Findings: what a hunt hands over, one folder and one entry of findings.md each.

A finding is a confirmed, minimized failure with a signature (of the minimized case; the
signatures of the cases it was minimized from are kept as aliases): component, property,
framework and version, code path (the spec's categorical fields: activations, loss,
readout, mode, ...), dtype, parameter (the worst tensor, layer numbers dropped) and kind
of wrong (`confirm.KINDS`). Findings with one signature are one finding, counted. They
are ranked by severity: kind (a silently wrong finite value first), then how far off.

The hunt's folder keeps `findings.json`, the ledger of every signature written by any
hunt into it: a later hunt counts a finding it meets again there and reports only new
ones. Each new finding gets `findings/NNN-<component>-<property>-<framework>-<dtype>-<kind>/`
with `case.npz` (`python -m conformance replay` reads it), `reproduce.py` (standalone,
conformance.hunt.scripts) and, for a crash, the worker's `log.txt`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.case import Case
from conformance.hunt.confirm import KINDS, Verdict

LEDGER = "findings.json"
REPORT = "findings.md"


def path_of(case: Case) -> str:
    """The code path a case takes: its spec's categorical fields, the mode and the meta."""
    spec = json.loads(case.spec.to_json())
    parts = [
        f"{k}={v}"
        for k, v in sorted(spec.items())
        if isinstance(v, str | bool) and k not in ("dtype", "leaky_kink") and not k.startswith("bn_")
    ]
    parts += [f"{k}={v}" for k, v in sorted(case.meta.items()) if isinstance(v, str | bool | int)]
    if getattr(case.spec, "truncation", None) is not None:
        parts.append("truncated")
    if not case.train:
        parts.append("eval")
    return ",".join(parts)


def stem(parameter: str) -> str:
    """A tensor's name without layer numbers or indices: "W12" -> "W", "output Y" -> "output Y"."""
    return re.sub(r"\b([A-Za-z_]+)\d+\b", r"\1", parameter.split("[")[0]).strip()


@dataclass
class Finding:
    component: str
    property: str
    framework: str
    version: str
    dtype: str
    path: str
    parameter: str
    kind: str
    ratio: float = math.inf
    actual: float = math.nan
    expected: float = math.nan
    message: str = ""
    lane: str = ""  # "fast" (screened population) or "property" (a check's own strategy)
    origin: str = ""  # the case as first found (shapes, seed)
    shrink: list[str] = field(default_factory=list)
    minimized: bool = True
    log: str = ""  # a crash: the worker's log
    known_issue: str = ""
    count: int = 1
    folder: str = ""
    aliases: list[str] = field(default_factory=list)  # signatures of the cases before minimization
    case: Case | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls, case: Case, verdict: Verdict, framework: str, version: str, dtype: str, **extra: Any
    ) -> Finding:
        return cls(
            case.component,
            verdict.property,
            framework,
            version,
            dtype,
            path_of(case),
            stem(verdict.parameter),
            verdict.kind,
            verdict.ratio,
            verdict.actual,
            verdict.expected,
            verdict.message,
            case=case,
            **extra,
        )

    def signature(self) -> str:
        return " | ".join(
            (
                self.component,
                self.property,
                f"{self.framework} {self.version}",
                self.path,
                self.dtype,
                self.parameter,
                self.kind,
            )
        )

    def rank(self) -> tuple[int, float]:
        return KINDS.index(self.kind), -self.ratio if not math.isnan(self.ratio) else 0.0

    def title(self) -> str:
        what = {
            "wrong-value": "wrong value",
            "non-finite": "NaN or inf",
            "crash": "crash",
            "exception": "exception",
        }[self.kind]
        return (
            f"{self.framework} {self.dtype}: {what} in {self.parameter or 'the result'} "
            f"({self.component}, {self.property})"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (no NaN or Infinity): a value that is not finite is written as its repr."""
        data = asdict(self)
        data.pop("case")
        return {k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        floats = ("ratio", "actual", "expected")
        fields: dict[str, Any] = {
            k: (float(v) if k in floats and isinstance(v, str) else v) for k, v in data.items()
        }
        return cls(**fields)


class Ledger:
    """findings.json: every finding written into this folder, by signature."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LEDGER
        self.findings: dict[str, Finding] = {}
        if self.path.is_file():
            entries = json.loads(self.path.read_text())
            if not isinstance(entries, list):
                raise ValueError(
                    f"{self.path}: expected a JSON list of findings, received {type(entries).__name__}"
                )
            for entry in entries:
                finding = Finding.from_json(entry)
                self.findings[finding.signature()] = finding

    def __contains__(self, signature: str) -> bool:
        return self.find(signature) is not None

    def find(self, signature: str) -> Finding | None:
        """The finding with this signature, or whose unminimized cases had it."""
        if signature in self.findings:
            return self.findings[signature]
        return next((f for f in self.findings.values() if signature in f.aliases), None)

    def signatures(self) -> frozenset[str]:
        return frozenset(self.findings) | {a for f in self.findings.values() for a in f.aliases}

    def ranked(self) -> list[Finding]:
        return sorted(self.findings.values(), key=Finding.rank)

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps([f.to_json() for f in self.ranked()], indent=1, allow_nan=False))
