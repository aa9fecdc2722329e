"""The HTML report and the HTML diff: one self-contained file each, and what a browser shows.

The page is opened in a real headless Chromium (Debian's `chromium`; `.ci/run` installs it),
screenshotted, and the screenshot must show the heat map: the colour of every status the
report holds, over enough pixels to be cells of the matrix, not a blank page. The colours
are the legend's, as README's "Reading the report" lists them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import png
import pytest

from conformance.cli import main
from conformance.report import write_report

# status -> the colour the README's legend gives it
GREEN, YELLOW, RED, DARK_RED, LAVENDER, BLUE, GREY = (
    "#1a9850",
    "#fee08b",
    "#d73027",
    "#67001f",
    "#b2abd2",
    "#4575b4",
    "#e0e0e0",
)
CELL = 40 * 12  # pixels: a cell is at least 40 px wide and 12 px high


def row(
    prop: str, framework: str, dtype: str, status: str, ratio: float | None, **extra: Any
) -> dict[str, Any]:
    return {
        "component": "mlp",
        "property": prop,
        "framework": framework,
        "framework_version": "1.0",
        "dtype": dtype,
        "device": "cpu",
        "status": status,
        "examples": 12,
        "worst_ratio": ratio,
        "worst": None,
        "reproducer": "",
        "known_issue": "",
        "message": "",
        **extra,
    }


ROWS = [
    row("forward-agreement", "torch", "float64", "passed", 1e-5),
    row("forward-agreement", "torch", "float32", "passed", 0.7),
    row(
        "gradient-agreement",
        "torch",
        "float64",
        "failed",
        40.0,
        message="conformance failure: property gradient-agreement ... <worst element>",
        reproducer="reproducers/mlp.gradient-agreement.torch.float64.cpu.npz",
    ),
    row("gradient-agreement", "torch", "float32", "error", None, message="TypeError: boom"),
    row("kink-convention", "jax", "float64", "xfailed", 5.0, known_issue="jax-kink"),
    row("kink-convention", "jax", "float32", "xpassed", 0.1, known_issue="jax-kink"),
    row("reverse-vs-forward", "jax", "float64", "skipped", None, message="jax: no cuda device"),
]
META = {
    "versions": {"numpy": "2.4.6", "torch": "2.13.0"},
    "profile": "ci",
    "device": "cpu",
    "frameworks": ["numpy", "torch", "jax"],
    "known_issues": {
        "jax-kink": {
            "kind": "bug",
            "link": "https://example.org/1",
            "expected": "slope 1",
            "package": "jax",
            "versions": ">=0.4",
            "file": "known.toml",
        }
    },
}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "chromium is not installed (apt-get install chromium): the HTML report is not"
            " checked in a browser here; .ci/run installs it"
        )
    return found


def screenshot(page: Path, tmp_path: Path, size: str = "1200,700") -> Path:
    shot = tmp_path / f"{page.stem}.png"
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            f"--window-size={size}",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return shot


def shows(shot: Path, wanted: list[str]) -> None:
    """Every colour in `wanted` covers at least a cell's worth of the screenshot."""
    seen = png.colours(shot)
    missing = {c: seen.get(c, 0) for c in wanted if seen.get(c, 0) < CELL}
    assert not missing, f"{shot}: colours on too few pixels: {missing}; most seen: {seen.most_common(6)}"


def test_the_page_is_one_self_contained_file(tmp_path: Path) -> None:
    write_report(tmp_path / "report.json", ROWS, META)
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page)
    assert [href for href in re.findall(r'href="([^"#][^"]*)"', page)] == ["https://example.org/1"]
    assert page.count("<details") == 4  # the failure, the error, the fixed known issue, the known issue
    assert "conformance failure: property gradient-agreement ... &lt;worst element&gt;" in page
    assert "python -m conformance replay reproducers/mlp.gradient-agreement.torch.float64.cpu.npz" in page
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Conformance report\n\nnumpy 2.4.6 · torch 2.13.0 · Python ")
    totals = "7 rows: 2 passed, 1 failed, 1 error, 1 skipped, 1 known issue, 1 fixed known issue"
    assert f"**FAIL: {totals}**" in md


def test_chromium_shows_the_heat_map(tmp_path: Path) -> None:
    write_report(tmp_path / "report.json", ROWS, META)
    shot = screenshot(tmp_path / "report.html", tmp_path)
    shows(shot, [GREEN, YELLOW, RED, DARK_RED, LAVENDER, BLUE, GREY])


def test_the_check_sees_a_blank_page(tmp_path: Path) -> None:
    """The screenshot check can fail: a page without the matrix does not pass it."""
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><title>report</title><p>no matrix here</p>")
    with pytest.raises(AssertionError, match="on too few pixels"):
        shows(screenshot(blank, tmp_path), [GREEN, RED])


def test_chromium_shows_the_diff_as_a_heat_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = [
        row("forward-agreement", "torch", "float64", "passed", 0.1),
        row("gradient-agreement", "torch", "float64", "passed", 0.1),
        row("kink-convention", "jax", "float64", "failed", 3.0),
        row("loss-gradient-agreement", "jax", "float64", "passed", 0.01),
    ]
    new = [
        row("forward-agreement", "torch", "float64", "passed", 0.1),
        row("gradient-agreement", "torch", "float64", "failed", 40.0, message="conformance failure: x"),
        row("kink-convention", "jax", "float64", "passed", 0.2),
        row("loss-gradient-agreement", "jax", "float64", "passed", 0.5),
    ]
    a = write_report(tmp_path / "old" / "report.json", old, META)
    b = write_report(tmp_path / "new" / "report.json", new, META)
    page = tmp_path / "diff.html"
    assert main(["diff", str(a), str(b), "--html", str(page)]) == 1
    assert f"html: {page}" in capsys.readouterr().out
    text = page.read_text()
    assert "ok 0.1 → FAIL 40" in text and "FAIL 3 → ok 0.2" in text
    assert not re.search(r"<script|<link|<img|@import|url\(", text)
    # REGRESSED red, improved green, worse orange, unchanged light grey
    shows(screenshot(page, tmp_path), [RED, GREEN, "#fdae61", "#f7f7f7"])
    assert json.loads(b.read_text())["rows"][1]["status"] == "failed"
