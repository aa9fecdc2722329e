"""The rows of a conformance report, read back from JSON, and what is said about them.

One row per (component, property, framework, dtype, device): status, examples run,
the worst error as a multiple of its tolerance and where it was, the message of a
failure, the known issue that applies, and the row's reproducer, a path relative to
the report. Statuses: passed, failed (a disagreement), error (the check raised),
skipped, xfailed (a known issue reproduces), xpassed (a known issue no longer does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance import files

ROW_KEY = ("component", "property", "framework", "dtype", "device")
STATUSES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
BAD = ("failed", "error", "xpassed")  # statuses that fail the run
RAN = ("passed", "failed", "error", "xfailed", "xpassed")


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in ROW_KEY))


def paths(path: str | Path) -> tuple[Path, Path, Path]:
    """The JSON report at PATH and its Markdown and HTML companions."""
    path = Path(path)
    return path, path.with_suffix(".md"), path.with_suffix(".html")


def remove(path: str | Path) -> None:
    """Delete a previous report at PATH (and its companions): a run that writes none leaves none."""
    for p in paths(path):
        p.unlink(missing_ok=True)


def read_report(path: str | Path) -> dict[str, Any]:
    """A report written by write_report; ValueError naming the file and the field otherwise."""
    path = Path(path)
    document = files.read(path, "a JSON report", "JSON", json.loads, (json.JSONDecodeError,))
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ValueError(
            f"{path}: expected a JSON object with a list 'rows', received"
            f" {type(document).__name__}{' without rows' if isinstance(document, dict) else ''}"
        )
    for n, row in enumerate(document["rows"]):
        missing = [k for k in (*ROW_KEY, "status") if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"{path} rows[{n}]: expected fields {[*ROW_KEY, 'status']}, missing {missing}")
        if row["status"] not in STATUSES:
            raise ValueError(
                f"{path} rows[{n}] status: expected one of {list(STATUSES)}, received {row['status']!r}"
            )
    if not isinstance(document.get("meta", {}), dict):
        raise ValueError(f"{path} meta: expected a JSON object, received {document['meta']!r}")
    return document


def fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2g}"


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per status, in the order of STATUSES."""
    return {s: n for s in STATUSES if (n := sum(r["status"] == s for r in rows))}


_NAMES = {
    "error": ("error", "errors"),
    "xfailed": ("known issue", "known issues"),
    "xpassed": ("fixed known issue", "fixed known issues"),
}


def counted(status: str, n: int) -> str:
    """'230 passed', '1 error', '4 known issues'."""
    return f"{n} {_NAMES.get(status, (status, status))[n != 1]}"


def totals_line(rows: list[dict[str, Any]]) -> str:
    """'240 rows: 230 passed, 6 skipped, 4 known issues'; says when nothing ran."""
    counts = ", ".join(counted(s, n) for s, n in totals(rows).items())
    line = f"{len(rows)} row{'' if len(rows) == 1 else 's'}: {counts or 'none'}"
    return line + (" (nothing ran)" if ran_nothing(rows) else "")


def ran_nothing(rows: list[dict[str, Any]]) -> bool:
    return not any(r["status"] in RAN for r in rows)


def verdict(rows: list[dict[str, Any]]) -> str:
    if any(r["status"] in BAD for r in rows):
        return "FAIL"
    return "NOTHING RAN" if ran_nothing(rows) else "PASS"


def environment(meta: dict[str, Any]) -> list[str]:
    """The versions and the run's settings, each a short phrase."""
    versions = meta.get("versions", {})
    first = {p: n for n, p in enumerate(("numpy", "torch", "jax", "jaxlib", "flax", "optax"))}
    versions = dict(sorted(versions.items(), key=lambda pv: (first.get(pv[0], len(first)), pv[0])))
    found = [f"{p} {v}" for p, v in versions.items() if v != "not installed"]
    absent = [p for p, v in versions.items() if v == "not installed"]
    run = [
        f"Python {meta['python']} ({meta.get('machine', '?')})" if "python" in meta else "",
        f"profile {meta['profile']}" if "profile" in meta else "",
        f"{meta['max_examples']} examples per test" if meta.get("max_examples") else "",
        f"device {meta['device']}" if "device" in meta else "",
        meta.get("created", ""),
    ]
    return [*found, *([f"not installed: {', '.join(absent)}"] if absent else []), *filter(None, run)]


def skip_reasons(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(rows, reason) for every distinct reason rows were skipped, most rows first."""
    counts: dict[str, int] = {}
    for r in rows:
        if r["status"] == "skipped":
            reason = str(r.get("message") or "no reason given")
            counts[reason] = counts.get(reason, 0) + 1
    return sorted(((n, reason) for reason, n in counts.items()), key=lambda x: (-x[0], x[1]))


def title(row: dict[str, Any]) -> str:
    return f"{row['component']} · {row['property']} · {row['framework']} {row['dtype']} {row['device']}"
