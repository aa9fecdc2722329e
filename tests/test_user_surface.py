"""The suite as a new user meets it: in a folder of their own, with the README as the guide.

Every user mistake is one line on stderr naming the option, file or field and what was
expected, with the README's exit status and no traceback; a run that writes no report
prints no matrix; a device or framework asked for but missing fails unless allowed;
reproducers are one per row, named by the row, relative to the report; the options carry
the plugin's prefix and leave unrelated pytest runs alone. Each test runs the real
commands (`python -m conformance`, `python -m pytest`) in a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.report import write_report

README = Path(__file__).resolve().parent.parent / "README.md"
MLP = ["--pyargs", "conformance.components.mlp.test_mlp", "-p", "no:cacheprovider"]
FAULTS = """
from conformance.components.mlp import torch_adapter as t

_ACT = dict(t.ACTIVATIONS)
t.ACTIVATIONS.update({k: (lambda f: lambda z, s: f(z, s) * (1 + 1e-3))(f) for k, f in _ACT.items()})


def jvp(case, tangents, device):
    raise TypeError("injected: jvp is broken")


t.jvp = jvp
"""


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def one_line(stderr: str) -> str:
    """The only line on stderr (pytest's usage errors add a blank one)."""
    assert "Traceback" not in stderr and "INTERNALERROR" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_usage_error_prints_no_matrix_not_even_a_stale_one(tmp_path: Path) -> None:
    stale = tmp_path / ".conformance" / "report.json"
    write_report(
        stale,
        [
            {
                "component": "mlp",
                "property": "p",
                "framework": "numpy",
                "dtype": "float64",
                "device": "cpu",
                "status": "passed",
                "worst_ratio": 0.1,
            }
        ],
        {},
    )
    done = run(tmp_path, "-m", "conformance", "--frameworks", "tensorflow")
    assert done.returncode == 4 and done.stdout == ""
    assert "--frameworks: expected a comma list of ['numpy'," in one_line(done.stderr)
    done = run(
        tmp_path,
        "-m",
        "conformance",
        "--frameworks",
        "numpy",
        "--",
        "--conformance-known-issues",
        "nowhere.toml",
    )  # caught by pytest, after the run began
    assert done.returncode == 4 and "component" not in done.stdout
    assert one_line(done.stderr) == (
        "ERROR: --conformance-known-issues nowhere.toml: expected a known-issues TOML file, no such file"
    )
    assert not stale.exists() and not stale.with_suffix(".md").exists()


def test_an_internal_error_prints_no_matrix(tmp_path: Path) -> None:
    (tmp_path / "breaks.py").write_text("def pytest_sessionstart(session):\n    raise RuntimeError('x')\n")
    done = run(
        tmp_path,
        "-m",
        "conformance",
        "--frameworks",
        "numpy",
        "--",
        "-p",
        "breaks",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 2 and "component" not in done.stdout
    assert done.stderr.splitlines()[-1] == (
        "python -m conformance: no report was written (pytest's exit status 3: internal error), so no matrix"
    )


ENTRY = (
    'id = "torch-forward-demo"\nkind = "bug"\nproperty = "forward-agreement"\ncomponent = "mlp"\n'
    'framework = "torch"\npackage = "torch"\nversions = ">=1.0"\nlink = "https://example.org/1"\n'
    'expected = "disagrees"\n'
)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "expected a known-issues TOML file, no such file"),
        (
            "[[issue]\n",
            "expected a known-issues TOML file, not valid TOML (Expected ']]' at the end of an"
            " array declaration (at line 1, column 8))",
        ),
        ('[[issue]]\nid = "a"\n', "[[issue]] 1 (a): expected the fields ['id', 'kind', 'property',"),
        (
            "[[issue]]\n" + ENTRY.replace(">=1.0", ">=1.0,<<2"),
            "[[issue]] 1 (torch-forward-demo) versions: expected a PEP 440 range",
        ),
        (
            "[[issue]]\n" + ENTRY.replace('"forward-agreement"', '"forward-agreemnt"'),
            "[[issue]] (torch-forward-demo) property: expected one of "
            "['batch-blocks', 'batch-decomposition',",
        ),
    ],
)
def test_a_bad_known_issues_file_is_one_line_naming_it(
    tmp_path: Path, content: str | None, said: str
) -> None:
    if content is not None:
        (tmp_path / "known.toml").write_text(content)
    done = run(tmp_path, "-m", "pytest", *MLP, "--conformance-known-issues", "known.toml")
    assert done.returncode == 4
    line = one_line(done.stderr)
    assert line.startswith("ERROR: --conformance-known-issues known.toml") and said in line, line


def test_a_replay_of_what_is_not_a_reproducer_is_one_line(tmp_path: Path) -> None:
    import numpy as np

    (tmp_path / "notes.txt").write_text("hello\n")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "other.npz").read_bytes()[:100])
    expected = {
        "missing.npz": "no such file",
        "notes.txt": "which it is not (not a zip archive, or a truncated one)",
        "cut.npz": "which it is not (not a zip archive, or a truncated one)",
        "other.npz": "this archive has no __meta__ entry (it holds ['a'])",
    }
    for name, said in expected.items():
        done = run(tmp_path, "-m", "conformance", "replay", name)
        assert done.returncode == 2, done.stderr
        line = one_line(done.stderr)
        assert line.startswith(f"replay: {name}: expected a reproducer written by the suite") and said in line


def cuda() -> bool:
    torch = pytest.importorskip("torch")
    return bool(torch.cuda.is_available())


def test_a_device_asked_for_and_missing_fails_unless_allowed(tmp_path: Path) -> None:
    if cuda():
        pytest.skip("this machine has a CUDA device")
    asked = [
        *MLP,
        "-k",
        "test_forward",
        "--conformance-frameworks",
        "torch",
        "--conformance-dtypes",
        "float64",
        "--conformance-device",
        "cuda",
    ]
    done = run(tmp_path, "-m", "pytest", *asked)
    assert done.returncode == 4
    assert one_line(done.stderr) == (
        "ERROR: --conformance-frameworks torch --conformance-device cuda: torch:"
        " no CUDA device is available; add --conformance-allow-missing to run"
        " the rest and report these rows as skipped"
    )
    done = run(
        tmp_path,
        "-m",
        "pytest",
        *asked,
        "--conformance-allow-missing",
        "--conformance-report",
        "gpu/report.json",
    )
    assert done.returncode == 0
    assert "  skipped (1): torch: no CUDA device is available" in done.stdout.splitlines()
    cpu = tmp_path / "cpu.json"
    write_report(
        cpu,
        [
            {
                "component": "mlp",
                "property": "forward-agreement",
                "framework": "torch",
                "dtype": "float64",
                "device": "cpu",
                "status": "passed",
                "worst_ratio": 0.1,
            }
        ],
        {},
    )
    done = run(tmp_path, "-m", "conformance", "diff", str(cpu), "gpu/report.json")
    assert done.returncode == 1 and done.stdout.rstrip().endswith("verdict: NOTHING RAN")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A folder whose conftest breaks torch's MLP: forward-agreement fails, reverse-vs-forward raises."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("faulty")
    (folder / "conftest.py").write_text(FAULTS)
    selected = "test_mlp and not mlp_bn and (test_forward or test_reverse_vs_forward)"
    done = run(
        folder,
        "-m",
        "conformance",
        "--frameworks",
        "torch",
        "--dtypes",
        "float64",
        "--report",
        "out/report.json",
        "--",
        "-k",
        selected,
    )
    return folder, done


def rows(path: Path) -> dict[str, dict[str, object]]:
    return {str(r["property"]): r for r in json.loads(path.read_text())["rows"]}


def test_the_report_for_people_opens_with_versions_totals_and_the_matrix(faulty) -> None:  # type: ignore[no-untyped-def]
    folder, done = faulty
    assert done.returncode == 1
    printed = done.stdout.splitlines()
    assert (
        "  FAIL mlp forward-agreement torch float64 cpu: python -m conformance replay"
        " out/reproducers/mlp.forward-agreement.torch.float64.cpu.npz" in printed
    )
    assert "2 rows: 1 failed, 1 error" in printed
    md = (folder / "out" / "report.md").read_text().splitlines()
    assert md[0] == "# Conformance report" and md[2].startswith("numpy ") and " · torch 2." in md[2]
    assert md[4] == "**FAIL: 2 rows: 1 failed, 1 error**"
    assert md[6] == "## Matrix" and md[10] == "| component | property | torch float64 |"
    assert "| mlp | forward-agreement | **FAIL " in "\n".join(md)
    assert "| mlp | reverse-vs-forward | **ERROR** |" in md
    text = "\n".join(md)
    assert "### mlp · forward-agreement · torch float64 cpu: FAIL" in text
    replay = "python -m conformance replay reproducers/mlp.forward-agreement.torch.float64.cpu.npz"
    assert f"replay: `{replay}`" in text
    assert (folder / "out" / "report.html").is_file()


def test_a_row_message_is_the_failure_or_the_exception(faulty) -> None:  # type: ignore[no-untyped-def]
    folder, _ = faulty
    found = rows(folder / "out" / "report.json")
    failed, error = found["forward-agreement"], found["reverse-vs-forward"]
    assert failed["status"] == "failed"
    message = str(failed["message"])
    verdict, header = message.splitlines()[:2]  # the arbitration's verdict first (conformance.runner)
    assert verdict.startswith("disagreement: torch float64 is ")
    assert header.startswith(
        "  conformance failure: property forward-agreement, component mlp, framework torch"
    )
    assert "worst element" in message and "Falsifying" not in message and "____" not in message
    assert error["status"] == "error" and error["worst_ratio"] is None
    assert str(error["message"]).startswith("TypeError: injected: jvp is broken (at ")


def test_reproducers_are_one_per_failed_row_named_by_it(faulty) -> None:  # type: ignore[no-untyped-def]
    folder, _ = faulty
    found = rows(folder / "out" / "report.json")
    assert sorted(p.name for p in (folder / "out" / "reproducers").iterdir()) == [
        "mlp.forward-agreement.torch.float64.cpu.npz",
        "mlp.reverse-vs-forward.torch.float64.cpu.npz",
    ]
    failed = found["forward-agreement"]
    assert failed["reproducer"] == "reproducers/mlp.forward-agreement.torch.float64.cpu.npz"
    named = re.search(r"replay: python -m conformance replay (\S+)", str(failed["message"]))
    assert named is not None and Path(named.group(1)) == Path("out") / str(failed["reproducer"])
    assert not (folder / ".conformance").exists()  # nothing written beside the report's folder


def test_a_row_that_runs_again_replaces_or_removes_its_reproducer(faulty) -> None:  # type: ignore[no-untyped-def]
    folder, _ = faulty
    plain = [
        *MLP,
        "-k",
        "test_forward",
        "--conformance-frameworks",
        "torch",
        "--conformance-dtypes",
        "float64",
    ]
    assert run(folder, "-m", "pytest", *plain).returncode == 1  # no report asked for: failures only
    kept = folder / ".conformance" / "reproducers"
    assert [p.name for p in kept.iterdir()] == ["mlp.forward-agreement.torch.float64.cpu.npz"]
    (folder / "conftest.py").unlink()
    assert run(folder, "-m", "pytest", *plain).returncode == 0
    assert list(kept.iterdir()) == []  # the row passes now: its old failure is gone


def test_names_select_and_options_carry_the_prefix(tmp_path: Path) -> None:
    """-k takes a property id; the old option names still work, with a warning; the examples per
    test are an option; torch's deprecation warnings stay out of a run outside the repository."""
    pytest.importorskip("torch")
    done = run(
        tmp_path,
        "-m",
        "pytest",
        *MLP,
        "-k",
        "reverse-vs-forward",
        "--frameworks",
        "torch",
        "--dtypes",
        "float64",
        "--conformance-max-examples",
        "3",
        "--conformance-report",
        "r.json",
    )
    assert done.returncode == 0, done.stdout[-2000:]
    found = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [(r["property"], r["framework"], r["examples"]) for r in found] == [
        ("reverse-vs-forward", "torch", 3)
    ]
    said = "--frameworks is deprecated and goes in the next release: use --conformance-frameworks"
    assert said in done.stdout
    assert "--dtypes is deprecated" in done.stdout
    assert "torch.jit" not in done.stdout + done.stderr


def test_an_unrelated_pytest_run_meets_nothing_of_the_suite(tmp_path: Path) -> None:
    """Its own --device option (a common conftest option) works, and no suite module is loaded."""
    (tmp_path / "conftest.py").write_text('def pytest_addoption(parser):\n    parser.addoption("--device")\n')
    (tmp_path / "test_own.py").write_text(
        "import sys\n\n\ndef test_own(request):\n    assert request.config.getoption('device') == 'tpu7'\n"
        "    loaded = sorted(m for m in sys.modules if m.startswith('conformance'))\n"
        "    assert loaded == ['conformance', 'conformance.plugin'], loaded\n"
    )
    done = run(tmp_path, "-m", "pytest", "-p", "no:cacheprovider", "--device", "tpu7", "test_own.py")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "deprecated" not in done.stdout and "conformance:" not in done.stdout


def test_known_issue_reasons_are_one_short_line(tmp_path: Path) -> None:
    pytest.importorskip("optax")
    done = run(
        tmp_path,
        "-m",
        "pytest",
        "--pyargs",
        "conformance.components.clip.test_clip",
        "-p",
        "no:cacheprovider",
        "-k",
        "zero_max_norm",
        "--conformance-frameworks",
        "jax",
        "-rx",
    )
    assert done.returncode == 0, done.stdout[-2000:]
    xfails = [line for line in done.stdout.splitlines() if line.startswith("XFAIL")]
    assert len(xfails) == 2 and all(len(line) < 200 for line in xfails), xfails
    assert all(
        line.endswith(
            "known bug optax-clip-zero-max-norm-nan (https://github.com/google-deepmind/optax/pull/1752)"
        )
        for line in xfails
    )


# README, "What the exit statuses mean": command -> every status it documents. Each is
# exercised: pytest and run here and in tests/meta_tests/test_pytest_plugin.py, replay and hunt in
# tests/test_cli.py, diff in tests/test_diff.py, golden in tests/test_golden.py.
STATUSES = {
    "pytest": {0, 1, 4},
    "run": {0, 1, 2, 4},
    "replay": {0, 1, 2},
    "hunt": {0, 1, 2},
    "diff": {0, 1, 2},
    "golden": {0, 1, 2},
}


def test_the_readme_exit_status_table_names_every_command_and_status() -> None:
    text = README.read_text()
    table = text[text.index("What the exit statuses mean:") :].split("\n\n")[1].splitlines()[2:]
    documented = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        words = set(re.findall(r"[a-z]+", cells[0]))
        command = next(name for name in STATUSES if name in words)
        found = {int(n) for n in re.findall(r"(?:^|[ (])([0-9]):", cells[3])}
        documented[command] = {n for n, cell in ((0, cells[1]), (1, cells[2])) if cell} | found
    assert documented == STATUSES
