"""The plugin end to end, in fresh pytest processes: report rows, xdist, known issues, skips."""

from __future__ import annotations

import json

import pytest

from conformance import frameworks

MLP = "conformance.components.mlp.test_mlp"
SUITE = ["--pyargs", MLP, "-p", "no:cacheprovider", "--conformance-frameworks", "numpy,torch"]
SUBSET = ["-k", "test_forward or linearity"]


def rows(path) -> list[tuple]:  # type: ignore[no-untyped-def]
    document = json.loads(path.read_text())
    return [
        (
            r["component"],
            r["property"],
            r["framework"],
            r["dtype"],
            r["status"],
            r["examples"],
            r["worst_ratio"],
        )
        for r in document["rows"]
    ]


def test_report_rows_are_the_same_under_xdist(pytester: pytest.Pytester) -> None:
    serial = pytester.path / "serial.json"
    parallel = pytester.path / "parallel.json"
    # forward-agreement: torch in four dtypes; upstream-linearity: numpy and torch, float32 and float64
    pytester.runpytest_subprocess(*SUITE, *SUBSET, "--conformance-report", str(serial)).assert_outcomes(
        passed=8
    )
    result = pytester.runpytest_subprocess(*SUITE, *SUBSET, "-n", "2", "--conformance-report", str(parallel))
    result.assert_outcomes(passed=8)
    assert rows(serial) == rows(parallel)
    assert len(rows(serial)) == 8
    md = (pytester.path / "serial.md").read_text()
    assert "| mlp | upstream-linearity | ok " in md


def test_rows_carry_examples_ratio_and_reproducer(pytester: pytest.Pytester) -> None:
    report = pytester.path / "r.json"
    pytester.runpytest_subprocess(
        *SUITE,
        "-k",
        "test_gradient and not loss",  # not per-example
        "--conformance-dtypes",
        "float64",
        "--conformance-report",
        str(report),
    )
    (row,) = [r for r in json.loads(report.read_text())["rows"] if r["framework"] == "torch"]
    assert row["status"] == "passed" and row["examples"] >= 10
    assert 0 < row["worst_ratio"] < 1
    assert row["framework_version"].startswith("2.")
    assert row["worst"]["parameter"] in {"W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4", "W5", "b5", "X"}
    assert row["reproducer"] == "reproducers/mlp.gradient-agreement.torch.float64.cpu.npz"
    assert (pytester.path / row["reproducer"]).is_file()


def known_issue(pytester: pytest.Pytester, versions: str) -> str:
    path = pytester.path / "known.toml"
    path.write_text(
        '[[issue]]\nid = "torch-forward-demo"\nkind = "bug"\nproperty = "forward-agreement"\n'
        'component = "mlp"\nframework = "torch"\npackage = "torch"\n'
        f'versions = "{versions}"\nlink = "https://example.org/1"\nexpected = "disagrees"\n'
    )
    return str(path)


def test_known_issue_that_no_longer_reproduces_fails_as_fixed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        *SUITE,
        "-k",
        "test_forward",
        "--conformance-dtypes",
        "float64",
        "--conformance-known-issues",
        known_issue(pytester, ">=1.0"),
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*torch-forward-demo*looks fixed*remove*known.toml*"])


def test_known_issue_outside_its_versions_is_not_applied(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        *SUITE,
        "-k",
        "test_forward",
        "--conformance-dtypes",
        "float64",
        "--conformance-known-issues",
        known_issue(pytester, "<1.0"),
    )
    result.assert_outcomes(passed=1)


def test_a_row_is_judged_by_its_own_scoped_entries_not_by_others_of_the_same_id(
    pytester: pytest.Pytester,
) -> None:
    """One id, two entries: scoped on this row (no float64 case reaches a float16 overflow) and
    row-wide on float16 only. The row-wide entry would reach every float64 case, whose passing
    would read as the issue fixed."""
    fields = (
        'id = "torch-forward-demo"\nkind = "bug"\nproperty = "forward-agreement"\ncomponent = "mlp"\n'
        'framework = "torch"\npackage = "torch"\nversions = ">=1.0"\nlink = "https://example.org/1"\n'
        'expected = "disagrees"\n'
    )
    path = pytester.path / "known.toml"
    path.write_text(
        f'[[issue]]\n{fields}reached = "conformance.scopes:low_precision_mean_overflows"\n\n'
        f'[[issue]]\n{fields}dtypes = ["float16"]\n'
    )
    options = ["--conformance-dtypes", "float64", "--conformance-known-issues", str(path)]
    result = pytester.runpytest_subprocess(*SUITE, "-k", "test_forward", *options)
    result.assert_outcomes(passed=1)


def test_missing_framework_is_a_skip_with_reason(pytester: pytest.Pytester) -> None:
    """Not asked for by name (the default: every framework installed), a missing one is skipped."""
    pytester.makeconftest("import sys\nsys.modules['jax'] = None\n")
    result = pytester.runpytest_subprocess(
        "--pyargs",
        MLP,
        "-p",
        "no:cacheprovider",
        "-k",
        "test_forward",
        "--conformance-dtypes",
        "float64",
    )
    others = len(frameworks.names()) - 2  # jax, and a plugin built on it (keras); numpy has no row
    result.assert_outcomes(passed=1, skipped=others)
    result.stdout.fnmatch_lines(
        [
            f"conformance: {others + 1} rows: 1 passed, {others} skipped",
            "  skipped (1): jax is not installed*pip install*",
        ]
    )


def test_missing_framework_asked_for_is_a_usage_error_unless_allowed(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['jax'] = None\n")
    asked = [
        "--pyargs",
        MLP,
        "-p",
        "no:cacheprovider",
        "-k",
        "test_forward",
        "--conformance-frameworks",
        "torch,jax",
        "--conformance-dtypes",
        "float64",
    ]
    result = pytester.runpytest_subprocess(*asked)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = "ERROR: --conformance-frameworks torch,jax: jax is not installed"
    assert result.stderr.lines[0].startswith(said)
    assert "--conformance-allow-missing" in result.stderr.lines[0]
    assert not [line for line in result.stderr.lines[1:] if line.strip()]
    pytester.runpytest_subprocess(*asked, "--conformance-allow-missing").assert_outcomes(passed=1, skipped=1)


def test_bad_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(*SUITE[:-2], "--conformance-frameworks", "tensorflow")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --conformance-frameworks*tensorflow*"])


def test_rows_of_component_specific_checks_travel_under_xdist(pytester: pytest.Pytester) -> None:
    """Rows cross process boundaries as plain values, whatever a property recorded."""
    report = pytester.path / "rnn.json"
    result = pytester.runpytest_subprocess(
        "--pyargs",
        "conformance.components.rnn.test_rnn",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "-k",
        "truncated_finite_differences or two_bias",
        "--conformance-frameworks",
        "numpy",
        "--conformance-report",
        str(report),
    )
    result.assert_outcomes(passed=3)
    found = json.loads(report.read_text())["rows"]
    assert {r["property"] for r in found} == {"truncated-finite-differences", "two-bias-mapping"}
    assert all(isinstance(r["worst_ratio"], float) for r in found)


def test_xdist_keeps_a_group_on_one_worker(pytester: pytest.Pytester) -> None:
    """-n without --dist: the rows of one (component, framework, dtype) share one worker (they
    compile the same programs: conformance.distribution); an explicit --dist keeps xdist's."""
    subset = ["-k", "float32 and (test_forward or test_gradient or linearity or test_extreme)", "-v"]
    result = pytester.runpytest_subprocess(*SUITE, *subset, "-n", "2")
    result.stdout.fnmatch_lines(["*scheduling tests via ByCompiledPrograms*"])
    workers: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        if line.startswith("[gw") and "::" in line:
            worker, test = line.split()[0], line.split("::")[-1].strip()
            workers.setdefault(test.split("[")[1], set()).add(worker)
    assert set(workers) == {"numpy-float32]", "torch-float32]"}
    assert all(len(w) == 1 for w in workers.values()), workers
    explicit = pytester.runpytest_subprocess(*SUITE, *subset, "-n", "2", "--dist", "load")
    explicit.stdout.fnmatch_lines(["*scheduling tests via LoadScheduling*"])


def test_group_of_a_row_is_its_component_framework_and_dtype() -> None:
    from conformance.distribution import group_of

    forward = "conformance/components/mlp/test_mlp.py::test_forward[jax-float32]"
    gradient = "conformance/components/mlp/test_mlp.py::test_gradient[jax-float32]"
    assert group_of(forward) == group_of(gradient) == "conformance/components/mlp/test_mlp.py[jax-float32]"
    assert group_of(forward.replace("float32", "float64")) != group_of(forward)
    assert group_of(forward.replace("/mlp/", "/mlp_bn/")) != group_of(forward)
    assert group_of("tests/test_cli.py::test_help") == "tests/test_cli.py::test_help"
