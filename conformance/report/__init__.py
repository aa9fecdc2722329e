"""The conformance report: report.json (the rows, for tools) and, beside it, report.md and
report.html (for people), written together at the end of a pytest run asked for one.

The rows and their fields: `conformance.report.rows`; the matrix the three share:
`conformance.report.matrix`; the Markdown summary: `markdown`; the HTML page: `html`.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from conformance.report.html import report_page
from conformance.report.markdown import markdown
from conformance.report.rows import ROW_KEY, fmt_ratio, paths, read_report, remove, sort_rows

__all__ = ["ROW_KEY", "fmt_ratio", "paths", "read_report", "remove", "sort_rows", "write_report"]


def write_report(path: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """PATH (JSON), PATH with suffix .md (Markdown) and .html (one self-contained page)."""
    json_path, md_path, html_path = paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), **meta}
    document = {"meta": meta, "rows": sort_rows(rows)}
    json_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    md_path.write_text(markdown(document) + "\n")
    html_path.write_text(report_page(document))
    return json_path
