"""The conformance report: JSON rows, a Markdown table, and the matrix printed by the CLI.

One row per (property, component, framework, framework version, dtype, device):
status, examples run, worst error as a multiple of its tolerance, the worst
element, and the reproducer of the worst case.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

ROW_KEY = ("component", "property", "framework", "dtype", "device")


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in ROW_KEY))


def write_report(path: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """PATH (JSON) and PATH with suffix .md (Markdown); returns the JSON path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), **meta}
    document = {"meta": meta, "rows": sort_rows(rows)}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    path.with_suffix(".md").write_text(markdown(document) + "\n")
    return path


def read_report(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"report: expected an existing JSON report, received {str(path)!r}")
    document: dict[str, Any] = json.loads(path.read_text())
    if not isinstance(document, dict) or "rows" not in document:
        raise ValueError(f"report: expected a JSON object with 'rows', received {str(path)!r}")
    return document


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2g}"


def markdown(document: dict[str, Any]) -> str:
    lines = [
        "| component | property | framework | version | dtype | device | status | examples"
        " | worst (tolerances) | worst at | known issue | reproducer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in document["rows"]:
        worst = r.get("worst") or {}
        where = f"{worst.get('parameter', '')}{worst.get('index', '')}" if worst else ""
        lines.append(
            f"| {r['component']} | {r['property']} | {r['framework']} | {r['framework_version']}"
            f" | {r['dtype']} | {r['device']} | {r['status']} | {r['examples']}"
            f" | {fmt_ratio(r['worst_ratio'])} | {where} | {r['known_issue']} | {r['reproducer']} |"
        )
    return "\n".join(lines)


_CELL = {"passed": "ok", "failed": "FAIL", "skipped": "skip", "xfailed": "known", "xpassed": "FIXED?"}


def matrix(document: dict[str, Any]) -> str:
    """Rows (component, property) by columns (framework dtype): status and worst ratio."""
    rows = document["rows"]
    columns = sorted({(r["framework"], r["dtype"]) for r in rows})
    lines_keys = sorted({(r["component"], r["property"]) for r in rows})
    cells = {(r["component"], r["property"], r["framework"], r["dtype"]): r for r in rows}
    header = ["component", "property"] + [f"{fw} {dt[-2:]}" for fw, dt in columns]
    table = [header]
    for comp, prop in lines_keys:
        line = [comp, prop]
        for fw, dt in columns:
            r = cells.get((comp, prop, fw, dt))
            if r is None:
                line.append("")
                continue
            cell = _CELL.get(r["status"], r["status"])
            if r["status"] in ("passed", "failed") and r["worst_ratio"] is not None:
                cell += f" {fmt_ratio(r['worst_ratio'])}"
            line.append(cell)
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    out.insert(1, "  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    legend = (
        "cells: status and worst error in tolerances (ok < 1 <= FAIL); known = a recorded known"
        " issue still reproduces; FIXED? = a known issue no longer reproduces"
    )
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return "\n".join([*out, "", legend, f"rows: {summary}"])
