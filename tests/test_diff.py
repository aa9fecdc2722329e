"""`python -m conformance diff`: two hand-built reports, every verdict, the exit status."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance import diff
from conformance.cli import main
from conformance.report import write_report


def row(
    prop: str,
    framework: str,
    status: str,
    ratio: float | None,
    *,
    dtype: str = "float64",
    device: str = "cpu",
    version: str = "1.0",
    component: str = "mlp",
) -> dict[str, Any]:
    return {
        "component": component,
        "property": prop,
        "framework": framework,
        "framework_version": version,
        "dtype": dtype,
        "device": device,
        "status": status,
        "examples": 12,
        "worst_ratio": ratio,
        "worst": None,
        "reproducer": "",
        "known_issue": "",
        "message": "",
    }


# (property, framework, old status, old ratio, new status, new ratio) -> the verdict expected
PAIRS = [
    ("forward-agreement", "torch", "passed", 0.2, "passed", 0.3, None),
    ("gradient-agreement", "torch", "passed", 0.2, "failed", 40.0, "REGRESSED"),
    ("gradient-agreement", "jax", "xfailed", 5.0, "failed", 5.0, "REGRESSED"),
    ("loss-gradient-agreement", "jax", "xfailed", 3.0, "xpassed", 0.1, "FIXED?"),
    ("finite-differences", "torch", "failed", 2.0, "passed", 0.5, "improved"),
    ("kink-convention", "jax", "passed", 0.1, "xfailed", 7.0, "known"),
    ("reverse-vs-forward", "jax", "passed", 0.1, "skipped", None, "not run"),
    ("reverse-vs-forward", "torch", "skipped", None, "passed", 0.1, "runs now"),
    ("upstream-linearity", "torch", "passed", 0.001, "passed", 0.5, "worse"),
    ("batch-decomposition", "torch", "passed", 0.5, "passed", 0.01, "better"),
    ("batch-decomposition", "jax", "passed", 1e-6, "passed", 1e-4, None),  # both below the floor
    ("upstream-linearity", "jax", "failed", 3.0, "failed", 4.0, None),  # failing before and now
]


def reports(
    tmp_path: Path,
    pairs: list[tuple[Any, ...]],
    extra_new: list[dict[str, Any]] = (),
    extra_old: list[dict[str, Any]] = (),
    new_device: str = "cpu",
) -> tuple[str, str]:
    old = [row(p, fw, s0, r0, version="2.12.0") for p, fw, s0, r0, *_ in pairs] + list(extra_old)
    new = [row(p, fw, s1, r1, version="2.13.0", device=new_device) for p, fw, _, _, s1, r1, _ in pairs]
    a = write_report(tmp_path / "old.json", old, {"versions": {"torch": "2.12.0", "numpy": "2.4.6"}})
    b = write_report(
        tmp_path / "new.json", new + list(extra_new), {"versions": {"torch": "2.13.0", "numpy": "2.4.6"}}
    )
    return str(a), str(b)


def test_every_verdict_on_two_hand_built_reports(tmp_path: Path) -> None:
    old, new = reports(
        tmp_path,
        PAIRS,
        extra_new=[row("forward-agreement", "jax", "passed", 0.1)],
        extra_old=[row("forward-agreement", "numpy", "passed", 0.0)],
    )
    changes, unchanged = diff.compare(json.loads(Path(old).read_text()), json.loads(Path(new).read_text()))
    got = {(c.key[1], c.key[2]): c.verdict for c in changes}
    expected = {(p, fw): v for p, fw, *_, v in PAIRS if v is not None}
    assert got == {**expected, ("forward-agreement", "jax"): "new", ("forward-agreement", "numpy"): "removed"}
    assert unchanged == 3
    assert [c.verdict for c in changes] == sorted((c.verdict for c in changes), key=diff.ORDER.index)
    worse = next(c for c in changes if c.verdict == "worse")
    assert worse.factor == pytest.approx(500.0)  # 0.5 / 0.001


def test_cli_prints_the_table_and_fails_on_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = reports(tmp_path, PAIRS)
    assert main(["diff", old, new]) == 1
    out = capsys.readouterr().out
    assert "torch 2.12.0 -> 2.13.0" in out and "numpy" not in out.split("versions:")[1].split("\n")[0]
    line = next(x for x in out.splitlines() if x.startswith("REGRESSED") and "torch" in x)
    assert "gradient-agreement" in line and "passed -> failed" in line and "0.2 -> 40" in line
    assert "2.12.0 -> 2.13.0" in line
    assert "verdict: REGRESSED" in out and "3 unchanged" in out


def test_no_regression_exits_0_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calm = [p for p in PAIRS if p[-1] in (None, "improved", "better", "worse", "not run", "FIXED?")]
    old, new = reports(tmp_path, calm)
    assert main(["diff", old, new]) == 0
    assert "verdict: no regression" in capsys.readouterr().out
    assert main(["diff", old, new, "--strict"]) == 1  # "worse" and "not run" fail under --strict
    assert main(["diff", old, new, "--factor", "1000"]) == 0


def test_a_report_against_itself_lists_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, _ = reports(tmp_path, PAIRS)
    assert main(["diff", old, old, "--strict"]) == 0
    out = capsys.readouterr().out
    assert "12 unchanged" in out and "REGRESSED" not in out.split("verdict")[0]


def test_a_new_failing_row_is_a_regression(tmp_path: Path) -> None:
    old, new = reports(tmp_path, PAIRS[:1], extra_new=[row("forward-agreement", "jax", "failed", 9.0)])
    assert main(["diff", old, new]) == 1


def test_cpu_and_gpu_reports_are_matched_across_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = reports(tmp_path, PAIRS[:1] + PAIRS[8:9], new_device="cuda")
    assert main(["diff", old, new]) == 0
    out = capsys.readouterr().out
    assert "matched across devices" in out and "removed" not in out
    assert "upstream-linearity" in out and "worse" in out


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "expected a JSON report, no such file"),
        ('{"rows": [', "not valid JSON (Expecting value: line 1 column 11"),
        ("[1, 2]", "expected a JSON object with a list 'rows'"),
        (json.dumps({"rows": [{"component": "mlp", "status": "passed"}]}), "rows[0]: expected fields"),
        (json.dumps({"rows": [{**row("p", "torch", "passed", 0.1), "status": "green"}]}), "rows[0] status"),
    ],
)
def test_a_bad_report_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, said: str
) -> None:
    old, _ = reports(tmp_path, PAIRS[:1])
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert main(["diff", old, str(bad)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"diff: {bad}") and said in line


def test_bad_factor_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, _ = reports(tmp_path, PAIRS[:1])
    assert main(["diff", old, old, "--factor", "1"]) == 2
    assert "--factor: expected a number > 1" in capsys.readouterr().err


def test_an_error_row_is_a_regression_and_a_fixed_one_an_improvement(tmp_path: Path) -> None:
    old = {
        "rows": [
            row("forward-agreement", "torch", "passed", 0.1),
            row("gradient-agreement", "jax", "error", None),
        ]
    }
    new = {
        "rows": [
            row("forward-agreement", "torch", "error", None),
            row("gradient-agreement", "jax", "passed", 0.2),
        ]
    }
    changes, _ = diff.compare(old, new)
    assert {c.key[1]: c.verdict for c in changes} == {
        "forward-agreement": "REGRESSED",
        "gradient-agreement": "improved",
    }


def test_a_report_whose_rows_all_skipped_is_not_a_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GPU run on a machine without one: every row skipped. Without --strict it still fails."""
    cpu = write_report(tmp_path / "cpu.json", [row("forward-agreement", "torch", "passed", 0.1)], {})
    skipped = {
        **row("forward-agreement", "torch", "skipped", None, device="cuda"),
        "message": "torch: no CUDA device is available",
    }
    gpu = write_report(tmp_path / "gpu.json", [skipped], {})
    assert main(["diff", str(cpu), str(gpu)]) == 1
    out = capsys.readouterr().out
    assert f"{gpu}: none of its 1 rows ran (skipped: torch: no CUDA device is available)" in out
    assert out.rstrip().endswith("verdict: NOTHING RAN")
    assert main(["diff", str(gpu), str(cpu)]) == 0  # the other way round, everything runs now


def test_junit_xml_and_the_report_from_one_pytest_run(pytester: pytest.Pytester) -> None:
    """--junitxml works alongside --conformance-report; the report diffs against itself. A
    property with no row in the subset (forward-agreement has none for the reference) has no
    test either: no skipped `test_forward[NOTSET-float64]` in JUnit that the report lacks."""
    report, junit = pytester.path / "r.json", pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "--pyargs",
        "conformance.components",
        "-p",
        "no:cacheprovider",
        "-k",
        "test_mlp and (test_forward or linearity)",
        "--conformance-frameworks",
        "numpy",
        "--conformance-dtypes",
        "float64",
        "--conformance-report",
        str(report),
        "--junitxml",
        str(junit),
    )
    assert result.ret == pytest.ExitCode.OK
    cases = [c.get("name", "") for c in ET.parse(junit).getroot().iter("testcase")]
    assert sorted(cases) == ["test_upstream_linearity[numpy-float64]"] * 2  # mlp and mlp_bn
    assert "NOTSET" not in result.stdout.str() and "skipped" not in result.stdout.str()
    rows = [(r["framework"], r["status"]) for r in json.loads(report.read_text())["rows"]]
    assert rows == [("numpy", "passed")] * 2
    assert len(rows) == len(cases)  # one report row per JUnit test case
    assert main(["diff", str(report), str(report)]) == 0
