"""report.md: the report for people, in Markdown.

It opens with the versions and the totals, then the matrix (components and properties
down, framework and dtype across, each cell a status and the worst error in
tolerances), then every failure and every known issue with its message and replay
command, then why rows were skipped.
"""

from __future__ import annotations

from typing import Any

from conformance.report.matrix import LEGEND, column_name, document_matrix, label
from conformance.report.rows import environment, skip_reasons, title, totals_line, verdict

FENCE = "```"


def _table(document: dict[str, Any]) -> list[str]:
    m = document_matrix(document)
    header = ["component", "property", *(column_name(c) for c in m.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for line in m.lines:
        cells = []
        for c in m.columns:
            row = m.row(line, c)
            text = label(row)
            cells.append(f"**{text}**" if row is not None and row["status"] in ("failed", "error") else text)
        lines.append("| " + " | ".join([*line, *cells]) + " |")
    return lines


def replay(row: dict[str, Any]) -> str:
    if not row.get("reproducer"):
        return "no reproducer"
    return f"replay: `python -m conformance replay {row['reproducer']}`"


def _failure(row: dict[str, Any]) -> list[str]:
    return [
        f"### {title(row)}: {label(row)}",
        "",
        FENCE + "text",
        str(row.get("message") or "").strip(),
        FENCE,
        "",
        replay(row),
        "",
    ]


def _known(issue_id: str, rows: list[dict[str, Any]], details: dict[str, Any]) -> list[str]:
    where = ", ".join(
        f"{r['component']} · {r['property']} · {r['framework']} {r['dtype']}: {label(r)}" for r in rows
    )
    lines = [f"### {issue_id} ({details.get('kind', 'known issue')})", "", f"rows: {where}", ""]
    if details:
        lines += [
            f"{details['link']} ({details['package']} {details['versions']}): {details['expected']}",
            "",
        ]
    return lines + [replay(r) for r in rows if r.get("reproducer")] + [""]


def markdown(document: dict[str, Any]) -> str:
    meta, rows = document.get("meta", {}), document["rows"]
    out = [
        "# Conformance report",
        "",
        " · ".join(environment(meta)),
        "",
        f"**{verdict(rows)}: {totals_line(rows)}**",
        "",
        "## Matrix",
        "",
        LEGEND + ".",
        "",
        *_table(document),
        "",
    ]
    failures = [r for r in rows if r["status"] in ("failed", "error", "xpassed")]
    if failures:
        out += [
            f"## Failures ({len(failures)})",
            "",
            "Reproducer paths are relative to this report's folder.",
            "",
        ]
        for r in failures:
            out += _failure(r)
    known: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "xfailed" and r.get("known_issue"):
            known.setdefault(str(r["known_issue"]), []).append(r)
    if known:
        out += [f"## Known issues ({len(known)})", ""]
        for issue_id, issue_rows in sorted(known.items()):
            out += _known(issue_id, issue_rows, meta.get("known_issues", {}).get(issue_id, {}))
    reasons = skip_reasons(rows)
    if reasons:
        out += [f"## Skipped ({sum(n for n, _ in reasons)} rows)", ""]
        out += [f"- {reason} ({n})" for n, reason in reasons] + [""]
    return "\n".join(out).rstrip()
