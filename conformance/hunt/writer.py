"""Writing findings: each new one's folder, the ledger and findings.md."""

from __future__ import annotations

import math
from pathlib import Path

from conformance.hunt.findings import REPORT, Finding, Ledger
from conformance.hunt.scripts import write_script

MARGINAL = 10.0  # a wrong value within this many tolerances is flagged as near the bound


def folder_name(number: int, finding: Finding) -> str:
    return "-".join(
        (f"{number:03d}", finding.component, finding.property, finding.framework, finding.dtype, finding.kind)
    )


def write_new(ledger: Ledger, finding: Finding) -> Path:
    """A finding not in the ledger: its folder (case.npz, reproduce.py, log.txt), then the ledger."""
    folder = ledger.folder / "findings" / folder_name(len(ledger.findings) + 1, finding)
    folder.mkdir(parents=True, exist_ok=True)
    finding.folder = str(folder.relative_to(ledger.folder))
    if finding.case is not None:
        finding.case.save(
            folder / "case.npz",
            property=finding.property,
            framework=finding.framework,
            dtype=finding.dtype,
            device="cpu",
        )
        write_script(folder / "reproduce.py", finding)
    if finding.log:
        (folder / "log.txt").write_text(finding.log)
    ledger.findings[finding.signature()] = finding
    ledger.save()
    write_report(ledger)
    return folder


def _number(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value!r}"


def entry(finding: Finding, base: Path) -> str:
    lines = [f"## {finding.title()}", ""]
    lines.append(f"- signature: `{finding.signature()}`")
    if finding.known_issue:
        lines.append(f"- known issue: {finding.known_issue}")
    lines.append(
        f"- seen {finding.count} time{'s' if finding.count != 1 else ''}; found by the "
        f"{finding.lane or '-'} lane on {finding.origin or '-'}"
    )
    if finding.kind in ("wrong-value", "non-finite"):
        ratio = "inf" if not math.isfinite(finding.ratio) else f"{finding.ratio:.3g}"
        lines.append(
            f"- worst element: {finding.framework} = {_number(finding.actual)}, reference = "
            f"{_number(finding.expected)} ({ratio} tolerances)"
        )
    if finding.kind == "wrong-value" and finding.ratio < MARGINAL:
        lines.append(
            f"- near the bound: {finding.ratio:.3g} tolerances; an error of the size of"
            f" {finding.dtype}'s rounding in another summation order looks like this: check it"
            " against the tolerance table before filing it"
        )
    if finding.shrink:
        done = "" if finding.minimized else " (stopped at its time limit)"
        lines.append(f"- minimized{done}: {'; '.join(finding.shrink)}")
    if finding.folder:
        folder = base / finding.folder
        files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        lines.append(f"- files: `{finding.folder}/` ({', '.join(files)})")
        run = []
        if "reproduce.py" in files:
            run.append(f"`python {finding.folder}/reproduce.py` (exit 1 while the bug is there)")
        else:
            run.append("no standalone script for this component (or crash): replay the case")
        if "case.npz" in files:
            run.append(f"`python -m conformance replay {finding.folder}/case.npz`")
        lines.append(f"- run: {'; '.join(run)}")
    message = finding.message.strip().splitlines()
    if message:
        lines += ["", "```text", *message[:12], "```"]
    return "\n".join(lines) + "\n"


def write_report(ledger: Ledger) -> Path:
    findings = ledger.ranked()
    head = [
        "# Findings",
        "",
        f"{len(findings)} finding{'s' if len(findings) != 1 else ''}, most severe first: a silently wrong"
        " finite value, then NaN or inf, a crash, an exception. Each was confirmed by the suite's own"
        " property on that single case and minimized; `reproduce.py` needs only NumPy and the framework.",
        "",
    ]
    path = ledger.folder / REPORT
    path.write_text("\n".join(head) + "\n".join(entry(f, ledger.folder) for f in findings))
    return path
