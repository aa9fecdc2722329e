"""`python -m conformance diff OLD.json NEW.json`: what changed between two conformance reports.

Rows are matched on (component, property, framework, dtype, device), the
report's ROW_KEY: the framework version may differ, which is the point (an
upgrade of torch or jax), and with `--ignore-device` (automatic when each
report ran on one device and the devices differ) a CPU report is matched with
a GPU one. Each matched pair gets a verdict:

  REGRESSED  now failed (or an error) and not before (passed, known or skipped -> failed),
             or the worst error rose past 1 tolerance outside a known issue
  FIXED?     a known issue (xfailed) now passes or xpasses: remove its entry
  improved   failed (or an error) before, passes (or is known) now
  known      passed before, a recorded known issue (xfailed) now
  not run    ran before, skipped now (a framework missing, a device absent)
  runs now   skipped before, runs now
  worse      status unchanged, worst error grew by the factor (default 10) or more
  better     status unchanged, worst error shrank by the factor or more

plus "new" and "removed" rows (a "new" row that failed counts as REGRESSED).
Worst errors below `floor` tolerances (default 1e-3) count as `floor`, so
moves among tiny errors do not show. Rows that did not change are counted,
not listed.

A NEW report none of whose rows ran (every one skipped: a GPU run on a machine
without one, say) is not a pass: the diff says NOTHING RAN and fails.
`--html PATH` also draws the diff as a page: the report's matrix, each cell
coloured by its verdict (conformance.report.html_diff).

Exit status: 0 when nothing regressed, 1 when something did or NEW ran nothing
(with --strict also when rows were removed, stopped running, or moved worse), 2
on a usage error (a missing or malformed report, named with the field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.report.html_diff import diff_page
from conformance.report.rows import BAD, ROW_KEY, fmt_ratio, ran_nothing, read_report, skip_reasons

Key = tuple[str, ...]

ORDER = (
    "REGRESSED",
    "FIXED?",
    "improved",
    "known",
    "not run",
    "runs now",
    "worse",
    "better",
    "new",
    "removed",
)
STRICT = ("removed", "not run", "worse")
_RAN = ("passed", "failed", "error", "xfailed", "xpassed")
_FAILING = ("failed", "error")


@dataclass(frozen=True)
class Change:
    verdict: str
    key: Key
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    factor: float | None  # new worst / old worst, both floored


def _ratio(row: dict[str, Any] | None) -> float | None:
    if row is None or row.get("worst_ratio") is None:
        return None
    value = float(row["worst_ratio"])
    return math.inf if math.isnan(value) else value


def _keyed(document: dict[str, Any], ignore_device: bool) -> dict[Key, dict[str, Any]]:
    fields = tuple(k for k in ROW_KEY if not (ignore_device and k == "device"))
    return {tuple(str(row[k]) for k in fields): row for row in document["rows"]}


def single_devices(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Each report ran on one device, and not the same one (CPU vs GPU)."""
    devices = [{str(r.get("device")) for r in d["rows"]} for d in (old, new)]
    return all(len(d) == 1 for d in devices) and devices[0] != devices[1]


def verdict(
    old: dict[str, Any], new: dict[str, Any], factor: float, floor: float
) -> tuple[str, float | None]:
    """The verdict for one matched row ("" when nothing worth listing changed)."""
    before, after = old["status"], new["status"]
    r_old, r_new = _ratio(old), _ratio(new)
    moved = None
    if r_old is not None and r_new is not None:
        moved = max(r_new, floor) / max(r_old, floor) if math.isfinite(max(r_old, floor)) else 1.0
    if after in _FAILING and before not in _FAILING:
        return "REGRESSED", moved
    if after != "xfailed" and r_new is not None and r_new > 1 and not (r_old is not None and r_old > 1):
        return "REGRESSED", moved
    if before == "xfailed" and after in ("passed", "xpassed"):
        return "FIXED?", moved
    if before in _FAILING and after in ("passed", "xfailed"):
        return "improved", moved
    if before == "passed" and after == "xfailed":
        return "known", moved
    if before in _RAN and after == "skipped":
        return "not run", moved
    if before == "skipped" and after in _RAN:
        return "runs now", moved
    if moved is not None and moved >= factor:
        return "worse", moved
    if moved is not None and moved <= 1 / factor:
        return "better", moved
    return "", moved


def every_row(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    factor: float = 10.0,
    floor: float = 1e-3,
    ignore_device: bool = False,
) -> list[Change]:
    """A Change for every matched, new and removed row, most serious first (verdict "": unchanged)."""
    if not factor > 1:
        raise ValueError(f"--factor: expected a number > 1, received {factor!r}")
    if not floor > 0:
        raise ValueError(f"--floor: expected a number > 0, received {floor!r}")
    a, b = _keyed(old, ignore_device), _keyed(new, ignore_device)
    changes = []
    for key in a.keys() & b.keys():
        v, moved = verdict(a[key], b[key], factor, floor)
        changes.append(Change(v, key, a[key], b[key], moved))
    changes += [
        Change("REGRESSED" if b[key]["status"] in _FAILING else "new", key, None, b[key], None)
        for key in b.keys() - a.keys()
    ]
    changes += [Change("removed", key, a[key], None, None) for key in a.keys() - b.keys()]
    changes.sort(key=lambda c: (ORDER.index(c.verdict) if c.verdict else len(ORDER), c.key))
    return changes


def compare(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    factor: float = 10.0,
    floor: float = 1e-3,
    ignore_device: bool = False,
) -> tuple[list[Change], int]:
    """The changes, most serious first, and how many matched rows did not change."""
    every = every_row(old, new, factor=factor, floor=floor, ignore_device=ignore_device)
    changes = [c for c in every if c.verdict]
    return changes, len(every) - len(changes)


def regressed(changes: list[Change], strict: bool = False) -> bool:
    return any(c.verdict == "REGRESSED" or (strict and c.verdict in STRICT) for c in changes)


def _cell(row: dict[str, Any] | None, field: str) -> str:
    if row is None:
        return "-"
    if field == "worst":
        return fmt_ratio(_ratio(row))
    return str(row.get(field) or "-")


def _arrow(a: str, b: str) -> str:
    return a if a == b else f"{a} -> {b}"


def table(changes: list[Change], ignore_device: bool = False) -> str:
    """The changes as an aligned text table, one line per row."""
    key_names = [k for k in ROW_KEY if not (ignore_device and k == "device")]
    header = ["verdict", *key_names, "status", "worst (tolerances)", "x", "version"]
    lines = [header]
    for c in changes:
        lines.append(
            [
                c.verdict,
                *c.key,
                _arrow(_cell(c.old, "status"), _cell(c.new, "status")),
                _arrow(_cell(c.old, "worst"), _cell(c.new, "worst")),
                "" if c.factor is None else f"{c.factor:.3g}",
                _arrow(_cell(c.old, "framework_version"), _cell(c.new, "framework_version")),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def versions(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Package versions that differ between the reports' metadata."""
    a = old.get("meta", {}).get("versions", {})
    b = new.get("meta", {}).get("versions", {})
    return [
        f"{p} {a.get(p, '-')} -> {b.get(p, '-')}" for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)
    ]


def nothing_ran(document: dict[str, Any], path: str) -> str:
    """'' when some row of the report ran, else a line saying none did and why."""
    rows = document["rows"]
    if not ran_nothing(rows):
        return ""
    reasons = skip_reasons(rows)
    why = f" (skipped: {reasons[0][1]}{'; ...' if len(reasons) > 1 else ''})" if reasons else ""
    return f"{path}: none of its {len(rows)} rows ran{why}: nothing was tested"


def run(
    old_path: str,
    new_path: str,
    *,
    factor: float = 10.0,
    floor: float = 1e-3,
    ignore_device: bool = False,
    strict: bool = False,
    html: str | None = None,
) -> int:
    """Print the diff of two reports (and draw it to `html`); the exit status of the module docstring."""
    old, new = read_report(old_path), read_report(new_path)
    if not ignore_device and single_devices(old, new):
        ignore_device = True
        print("each report ran on one device, and not the same: rows are matched across devices")
    every = every_row(old, new, factor=factor, floor=floor, ignore_device=ignore_device)
    changes = [c for c in every if c.verdict]
    print(f"old: {old_path}\nnew: {new_path}")
    moved = versions(old, new)
    print("versions: " + ("; ".join(moved) if moved else "the same"))
    if changes:
        print()
        print(table(changes, ignore_device))
    counts = {v: sum(c.verdict == v for c in changes) for v in ORDER}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    print(
        f"\n{summary + ', ' if summary else ''}{len(every) - len(changes)} unchanged"
        f" (moves below x{factor:g} and errors below {floor:g} tolerances not listed)"
    )
    empty = nothing_ran(new, new_path)
    if empty:
        print(empty)
    still = sum(1 for c in every if not c.verdict and c.new is not None and c.new["status"] in BAD)
    if still:
        print(f"{still} rows fail in NEW as they did in OLD (unchanged, so not listed)")
    verdict_text = "NOTHING RAN" if empty else "REGRESSED" if regressed(changes, strict) else "no regression"
    print("verdict: " + verdict_text)
    if html:
        Path(html).parent.mkdir(parents=True, exist_ok=True)
        notes = [empty] if empty else []
        order = new.get("meta", {}).get("frameworks", ())
        Path(html).write_text(diff_page(old_path, new_path, every, moved, verdict_text, notes, order))
        print(f"html: {html}")
    return 0 if verdict_text == "no regression" else 1
