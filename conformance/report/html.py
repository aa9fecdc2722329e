"""report.html: the report as one self-contained page (no script, no network, no file beside it).

The matrix is a heat map: a passing cell is coloured by its worst error in tolerances, on
five steps from deep green (below 0.001) to yellow (below 1, the margin nearly spent);
failures are red, errors dark red, known issues lavender, fixed known issues blue, skips
grey. A cell of a failure or known issue links to its entry below, which opens to the
message and the replay command. `python -m conformance diff OLD NEW --html PATH` draws
the diff of two reports on the same grid (conformance.report.html_diff).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from conformance.report.matrix import Column, Line, Matrix, column_name, document_matrix, label
from conformance.report.rows import (
    counted,
    environment,
    skip_reasons,
    title,
    totals,
    totals_line,
    verdict,
)

# (upper bound of the worst error in tolerances, colour, legend) for passing rows
STEPS = (
    (1e-3, "#1a9850", "< 0.001"),
    (1e-2, "#66bd63", "< 0.01"),
    (1e-1, "#a6d96a", "< 0.1"),
    (0.5, "#d9ef8b", "< 0.5"),
    (1.0, "#fee08b", "< 1"),
)
STATUS_COLOURS = {
    "failed": "#d73027",
    "error": "#67001f",
    "xfailed": "#b2abd2",
    "xpassed": "#4575b4",
    "skipped": "#e0e0e0",
}
STATUS_LEGEND = {
    "failed": "FAIL: 1 tolerance or more",
    "error": "ERROR: the check raised",
    "xfailed": "known issue",
    "xpassed": "FIXED?: a known issue passes",
    "skipped": "skipped",
}
DARK = {"#1a9850", "#d73027", "#67001f", "#4575b4"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px}
.env{color:#555;margin:0 0 10px}.badge{display:inline-block;padding:2px 10px;border-radius:4px;
color:#fff;font-weight:600;margin-left:8px;font-size:15px;vertical-align:2px}
.chips span{display:inline-block;margin:0 6px 4px 0;padding:2px 8px;border-radius:10px;font-size:13px}
.legend{margin:6px 0 10px;font-size:12px;color:#333}.legend span{display:inline-block;margin:0 10px 4px 0}
.legend i{display:inline-block;width:14px;height:14px;vertical-align:-3px;margin-right:4px;
border:1px solid #0002}
table.matrix{border-collapse:collapse;font-size:12px}
.matrix th,.matrix td{border:1px solid #fff;padding:4px 8px;white-space:nowrap}
.matrix thead th{background:#f2f2f2;position:sticky;top:0;font-weight:600}
.matrix tbody th{text-align:left;font-weight:normal;background:#fafafa}
.matrix tbody th.component{font-weight:600;vertical-align:top;background:#f2f2f2}
.matrix td{text-align:center;font-variant-numeric:tabular-nums;min-width:64px}
.matrix td a{color:inherit}.matrix small{font-weight:normal;color:#666}
details{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:4px 10px}
summary{cursor:pointer;font-weight:600}details i{display:inline-block;width:12px;height:12px;margin-right:6px}
pre{white-space:pre-wrap;background:#f7f7f7;padding:8px;border-radius:4px;font-size:12px}
code{background:#f2f2f2;padding:1px 4px;border-radius:3px}
"""


def colour(row: dict[str, Any] | None) -> str:
    """The heat map's colour of one row's cell."""
    if row is None:
        return "#ffffff"
    if row["status"] != "passed":
        return STATUS_COLOURS.get(row["status"], "#ffffff")
    ratio = row.get("worst_ratio")
    ratio = 0.0 if ratio is None else float(ratio)
    return next((c for bound, c, _ in STEPS if ratio < bound), STEPS[-1][1])


def anchor(row: dict[str, Any]) -> str:
    return "row-" + "-".join(str(row[k]) for k in ("component", "property", "framework", "dtype", "device"))


def cell(background: str, text: str, tip: str = "", href: str = "") -> str:
    fg = "#fff" if background in DARK else "#1b1b1b"
    body = f'<a href="#{escape(href)}">{escape(text)}</a>' if href else escape(text)
    return f'<td style="background:{background};color:{fg}" title="{escape(tip)}">{body}</td>'


def grid(m: Matrix, draw: Callable[[Line, Column], str], versions: dict[str, str]) -> str:
    """The matrix as a table: a framework over its dtypes, a component over its properties."""
    frameworks = list(dict.fromkeys(c[0] for c in m.columns))
    top = "".join(
        f'<th colspan="{sum(c[0] == f for c in m.columns)}">{escape(f)}'
        f"<br><small>{escape(versions.get(f, ''))}</small></th>"
        for f in frameworks
    )
    sub = "".join(f"<th>{escape(column_name(c).split(' ', 1)[1])}</th>" for c in m.columns)
    body = []
    for n, line in enumerate(m.lines):
        span = sum(x[0] == line[0] for x in m.lines)
        head = (
            f'<th class="component" rowspan="{span}">{escape(line[0])}</th>'
            if n == 0 or m.lines[n - 1][0] != line[0]
            else ""
        )
        body.append(f"<tr>{head}<th>{escape(line[1])}</th>{''.join(draw(line, c) for c in m.columns)}</tr>")
    return (
        f'<table class="matrix"><thead><tr><th rowspan="2">component</th><th rowspan="2">property</th>'
        f"{top}</tr><tr>{sub}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def legend(entries: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{escape(text)}</span>' for c, text in entries)
        + "</div>"
    )


def page(heading: str, badge: tuple[str, str], parts: list[str]) -> str:
    text, background = badge
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(heading)}: {escape(text)}</title><style>{CSS}</style></head><body>"
        f'<h1>{escape(heading)}<span class="badge" style="background:{background}">{escape(text)}'
        f"</span></h1>{''.join(parts)}</body></html>\n"
    )


def entry(row: dict[str, Any], heading: str, body: str, swatch: str = "") -> str:
    return (
        f'<details id="{escape(anchor(row))}"><summary><i style="background:{swatch or colour(row)}">'
        f"</i>{escape(heading)}</summary>{body}</details>"
    )


def replay(row: dict[str, Any]) -> str:
    if not row.get("reproducer"):
        return "<p>no reproducer</p>"
    return f"<p>replay: <code>python -m conformance replay {escape(str(row['reproducer']))}</code></p>"


def chips(rows: list[dict[str, Any]]) -> str:
    """The totals, each in its status's colour."""
    spans = []
    for status, n in totals(rows).items():
        background = colour({"status": status, "worst_ratio": 0.0})
        fg = "#fff" if background in DARK else "#1b1b1b"
        spans.append(f'<span style="background:{background};color:{fg}">{escape(counted(status, n))}</span>')
    return '<p class="chips">' + "".join(spans) + "</p>"


def report_page(document: dict[str, Any]) -> str:
    meta, rows = document.get("meta", {}), document["rows"]
    m = document_matrix(document)
    versions: dict[str, str] = {}
    for r in rows:  # a row that stopped before running has no version: another row has it
        if r.get("framework_version"):
            versions.setdefault(str(r["framework"]), str(r["framework_version"]))

    def draw(line: Line, column: Column) -> str:
        row = m.row(line, column)
        if row is None:
            return cell("#ffffff", "")
        tip = f"{title(row)}: {row.get('examples', 0)} examples"
        if row.get("worst"):
            tip += f", worst at {row['worst'].get('parameter', '')}{row['worst'].get('index', '')}"
        linked = row["status"] in ("failed", "error", "xfailed", "xpassed")
        return cell(colour(row), label(row), tip, anchor(row) if linked else "")

    verdict_text = verdict(rows)
    parts = [
        f'<p class="env">{escape(" · ".join(environment(meta)))}</p>',
        f"<p><b>{escape(totals_line(rows))}</b></p>",
        chips(rows),
        "<h2>Matrix</h2>",
        legend(
            [(c, f"ok {text}") for _, c, text in STEPS]
            + [(STATUS_COLOURS[s], t) for s, t in STATUS_LEGEND.items()]
        ),
        grid(m, draw, versions),
    ]
    failures = [r for r in rows if r["status"] in ("failed", "error", "xpassed")]
    if failures:
        parts.append(
            f"<h2>Failures ({len(failures)})</h2><p>Reproducer paths are relative to this"
            " report's folder.</p>"
        )
        parts += [
            entry(
                r, f"{title(r)}: {label(r)}", f"<pre>{escape(str(r.get('message') or ''))}</pre>{replay(r)}"
            )
            for r in failures
        ]
    known = [r for r in rows if r["status"] == "xfailed"]
    if known:
        details = meta.get("known_issues", {})
        parts.append(f"<h2>Known issues ({len(known)})</h2>")
        for r in known:
            issue = details.get(r.get("known_issue"), {})
            about = (
                f'<p><a href="{escape(issue["link"])}">{escape(issue["link"])}</a>'
                f" ({escape(issue['package'])} {escape(issue['versions'])}):"
                f" {escape(issue['expected'])}</p>"
                if issue
                else ""
            )
            parts.append(
                entry(
                    r,
                    f"{r.get('known_issue', '')} ({issue.get('kind', 'known issue')}):"
                    f" {title(r)}: {label(r)}",
                    about + f"<pre>{escape(str(r.get('message') or ''))}</pre>{replay(r)}",
                )
            )
    reasons = skip_reasons(rows)
    if reasons:
        parts.append(
            "<h2>Skipped</h2><ul>"
            + "".join(f"<li>{escape(reason)} ({n})</li>" for n, reason in reasons)
            + "</ul>"
        )
    badge_colour = {"PASS": STEPS[0][1], "FAIL": STATUS_COLOURS["failed"]}.get(verdict_text, "#636363")
    return page("Conformance report", (verdict_text, badge_colour), parts)
