"""The conformance matrix: components and properties down, framework and dtype across, each
cell the row's status and its worst error in tolerances. One model for the matrix that
`python -m conformance` prints, the Markdown summary's table and the HTML heat map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.report.rows import environment, fmt_ratio, skip_reasons, totals_line

LABELS = {
    "passed": "ok",
    "failed": "FAIL",
    "error": "ERROR",
    "skipped": "skip",
    "xfailed": "known",
    "xpassed": "FIXED?",
}
LEGEND = (
    "each cell: the row's status and its worst error in tolerances (ok below 1, FAIL at 1 or"
    " more); known: a recorded known issue still reproduces; FIXED?: a known issue no longer"
    " reproduces; ERROR: the check raised an exception; skip: not run"
)

Line = tuple[str, str]  # (component, property)
Column = tuple[str, ...]  # (framework, dtype), with the device when a report holds several


@dataclass(frozen=True)
class Matrix:
    lines: list[Line]
    columns: list[Column]
    cells: dict[tuple[Line, Column], dict[str, Any]]

    def row(self, line: Line, column: Column) -> dict[str, Any] | None:
        return self.cells.get((line, column))


def column_of(row: dict[str, Any], with_device: bool) -> Column:
    key = (str(row["framework"]), str(row["dtype"]))
    return (*key, str(row["device"])) if with_device else key


def build(rows: list[dict[str, Any]], framework_order: list[str] | tuple[str, ...] = ()) -> Matrix:
    """The matrix of `rows`; frameworks in `framework_order` (the run's), the rest after them."""
    with_device = len({r["device"] for r in rows}) > 1
    rank = {name: n for n, name in enumerate(framework_order)}
    columns = sorted(
        {column_of(r, with_device) for r in rows},
        key=lambda c: (rank.get(c[0], len(rank)), c[0] != "numpy", *c),
    )
    lines = sorted({(str(r["component"]), str(r["property"])) for r in rows})
    cells = {((str(r["component"]), str(r["property"])), column_of(r, with_device)): r for r in rows}
    return Matrix(lines, columns, cells)


def label(row: dict[str, Any] | None) -> str:
    """'ok 0.014', 'FAIL 40', 'known 5.2', 'ERROR', 'skip'; '' for no row."""
    if row is None:
        return ""
    text = LABELS.get(row["status"], row["status"])
    if row["status"] in ("passed", "failed", "xfailed", "xpassed") and row.get("worst_ratio") is not None:
        text += f" {fmt_ratio(row['worst_ratio'])}"
    return text


def column_name(column: Column, short: bool = False) -> str:
    framework, dtype, *device = column
    return " ".join([framework, dtype[-2:] if short else dtype, *device])


def document_matrix(document: dict[str, Any]) -> Matrix:
    return build(document["rows"], document.get("meta", {}).get("frameworks", ()))


def text(document: dict[str, Any], report_dir: str | Path = ".") -> str:
    """What `python -m conformance` prints: versions, the matrix, totals, failures, skips."""
    rows = document["rows"]
    m = document_matrix(document)
    table = [["component", "property", *(column_name(c, short=True) for c in m.columns)]]
    table += [[*line, *(label(m.row(line, c)) for c in m.columns)] for line in m.lines]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    out.insert(1, "  ".join("-" * w for w in widths))
    env = environment(document.get("meta", {}))
    lines = [" · ".join(env), "", *out, "", LEGEND, totals_line(rows)]
    for r in rows:
        if r["status"] in ("failed", "error", "xpassed"):
            replay = (
                f": python -m conformance replay {Path(report_dir) / r['reproducer']}"
                if r.get("reproducer")
                else ""
            )
            lines.append(
                f"  {label(r).split()[0]} {r['component']} {r['property']} {r['framework']}"
                f" {r['dtype']} {r['device']}{replay}"
            )
    lines += [f"  skipped ({n}): {reason}" for n, reason in skip_reasons(rows)]
    return "\n".join(lines)
