"""The diff of two reports as one self-contained page: the matrix of report.html, each cell
coloured by its verdict (REGRESSED red, FIXED? blue, improved green, ...) and reading
old -> new; the changed rows below, each opening to the new message."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Protocol

from conformance.report.html import entry, grid, legend, page, replay
from conformance.report.matrix import Column, Line, build, label
from conformance.report.rows import title

VERDICT_COLOURS = {
    "REGRESSED": "#d73027",
    "NOTHING RAN": "#67001f",
    "FIXED?": "#4575b4",
    "improved": "#1a9850",
    "known": "#b2abd2",
    "not run": "#969696",
    "runs now": "#a6d96a",
    "worse": "#fdae61",
    "better": "#d9ef8b",
    "new": "#abd9e9",
    "removed": "#bdbdbd",
    "": "#f7f7f7",
}
DARK = {"#d73027", "#67001f", "#4575b4", "#1a9850"}


class Change(Protocol):
    @property
    def verdict(self) -> str: ...
    @property
    def old(self) -> dict[str, Any] | None: ...
    @property
    def new(self) -> dict[str, Any] | None: ...
    @property
    def factor(self) -> float | None: ...


def _text(c: Change) -> str:
    before, after = label(c.old) or "-", label(c.new) or "-"
    return after if before == after else f"{before} → {after}"


def diff_page(
    old: str,
    new: str,
    every: Sequence[Change],
    moved: list[str],
    verdict: str,
    notes: list[str],
    frameworks: list[str] | tuple[str, ...] = (),
) -> str:
    """The page for every matched, new and removed row (verdict "" when unchanged)."""
    shown: list[dict[str, Any]] = []
    for n, c in enumerate(every):
        row = c.new or c.old or {}
        shown.append({**row, "device": "", "_change": n})
    m = build(shown, frameworks)
    by_cell = {(line, column): every[int(r["_change"])] for (line, column), r in m.cells.items()}
    versions = {str(r["framework"]): "" for r in shown}

    def draw(line: Line, column: Column) -> str:
        c = by_cell.get((line, column))
        if c is None:
            return '<td style="background:#ffffff"></td>'
        background = VERDICT_COLOURS.get(c.verdict, "#f7f7f7")
        fg = "#fff" if background in DARK else ("#777" if not c.verdict else "#1b1b1b")
        tip = f"{c.verdict or 'unchanged'}: {_text(c)}"
        if c.old and c.new and c.old.get("framework_version") != c.new.get("framework_version"):
            tip += f" ({c.old.get('framework_version')} -> {c.new.get('framework_version')})"
        return f'<td style="background:{background};color:{fg}" title="{escape(tip)}">{escape(_text(c))}</td>'

    changed = [c for c in every if c.verdict]
    counts: dict[str, int] = {}
    for c in changed:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    parts = [
        f'<p class="env">old: {escape(old)}<br>new: {escape(new)}<br>versions: '
        f"{escape('; '.join(moved) if moved else 'the same')}</p>",
        *(f"<p><b>{escape(note)}</b></p>" for note in notes),
        f"<p><b>{escape(summary + ', ' if summary else '')}{len(every) - len(changed)} unchanged</b></p>",
        "<h2>Matrix</h2>",
        legend([(col, v or "unchanged") for v, col in VERDICT_COLOURS.items() if v != "NOTHING RAN"]),
        grid(m, draw, versions),
    ]
    if changed:
        parts.append(f"<h2>Changes ({len(changed)})</h2>")
        for c in changed:
            row = c.new or c.old or {}
            body = f"<pre>{escape(str((c.new or {}).get('message') or ''))}</pre>" if c.new else ""
            parts.append(
                entry(
                    row,
                    f"{c.verdict}: {title(row)}: {_text(c)}",
                    body + (replay(c.new) if c.new else ""),
                    VERDICT_COLOURS[c.verdict],
                )
            )
    badge = VERDICT_COLOURS["REGRESSED"] if verdict != "no regression" else VERDICT_COLOURS["improved"]
    return page("Conformance diff", (verdict, badge), parts)
