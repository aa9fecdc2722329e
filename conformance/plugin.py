"""The pytest plugin (entry point `pytest11`): options, parametrization, known issues, report.

Options:
  --frameworks numpy,torch,jax    implementations under test
  --dtypes float32,float64
  --device cpu|cuda
  --conformance-profile ci|dev|thorough|hunt   hypothesis profile (profiles.py)
  --conformance-report PATH       JSON at PATH, Markdown beside it, reproducers in PATH's folder
  --conformance-known-issues PATH known-issue data (default: the packaged known_issues.toml)

Rows travel in each test report's `user_properties`, so under pytest-xdist the
controller receives every worker's rows and writes one report, the same rows
as a serial run.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from conformance import known_issues, profiles, record
from conformance.backends import DEVICES, FRAMEWORKS
from conformance.checks import PROPERTIES
from conformance.compare import REPRODUCER_DIR_ENV, write_reproducer
from conformance.compare import Context as CompareContext
from conformance.report import write_report
from conformance.testing import set_device

DTYPES = ("float32", "float64")
ROW = "conformance_row"


def _csv(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise pytest.UsageError(f"{option}: expected a comma list of {list(allowed)}, received {value!r}")
    return chosen


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "backprop conformance suite")
    group.addoption("--frameworks", default=",".join(FRAMEWORKS), help="comma list of numpy,torch,jax")
    group.addoption("--dtypes", default=",".join(DTYPES), help="comma list of float32,float64")
    group.addoption("--device", default="cpu", choices=DEVICES, help="cpu or cuda")
    group.addoption("--conformance-profile", default="ci", choices=profiles.PROFILES,
                    help="hypothesis profile: ci (derandomized, bounded), dev, thorough, hunt")
    group.addoption("--conformance-report", default=None, metavar="PATH",
                    help="write the report as JSON to PATH and as Markdown beside it")
    group.addoption("--conformance-known-issues", default=str(known_issues.DEFAULT_PATH),
                    metavar="PATH", help="known framework issues and conventions (TOML)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance(property, component): a conformance property")
    config.stash[_SELECTED] = (
        _csv(config.getoption("frameworks"), FRAMEWORKS, "--frameworks"),
        _csv(config.getoption("dtypes"), DTYPES, "--dtypes"),
    )
    profiles.activate(config.getoption("conformance_profile"))
    set_device(config.getoption("device"))
    report = config.getoption("conformance_report")
    if report:
        os.environ[REPRODUCER_DIR_ENV] = str(Path(report).resolve().parent / "reproducers")
    config.stash[_KNOWN] = known_issues.load(config.getoption("conformance_known_issues"))
    if report and not hasattr(config, "workerinput"):  # xdist workers leave writing to the controller
        config.pluginmanager.register(ReportWriter(report), "conformance-report-writer")


_SELECTED = pytest.StashKey[tuple[list[str], list[str]]]()
_KNOWN = pytest.StashKey[list[known_issues.KnownIssue]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("conformance") is None:
        return
    frameworks, dtypes = metafunc.config.stash[_SELECTED]
    marker = metafunc.definition.get_closest_marker("conformance")
    prop = PROPERTIES.get(marker.kwargs.get("property", "")) if marker else None
    if prop is not None:  # no rows for combinations a property does not apply to
        frameworks = [f for f in frameworks if not (prop.frameworks_only and f == "numpy")]
        dtypes = [d for d in dtypes if not (prop.float64_only and d != "float64")]
    if "framework" in metafunc.fixturenames:
        metafunc.parametrize("framework", frameworks)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", dtypes)


def _marker_info(item: pytest.Item) -> tuple[str, str, str, str] | None:
    marker = item.get_closest_marker("conformance")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None:
        return None
    return (marker.kwargs["property"], marker.kwargs["component"], callspec.params["framework"],
            callspec.params["dtype"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        info = _marker_info(item)
        if info is None:
            continue
        for issue in config.stash[_KNOWN]:
            if issue.applies(*info):
                item.add_marker(pytest.mark.xfail(strict=True, reason=issue.reason()))
                item.user_properties.append(("conformance_known_issue", issue.id))


def pytest_runtest_setup(item: pytest.Item) -> None:
    info = _marker_info(item)
    if info is not None:
        prop, comp, framework, dtype = info
        known = dict(item.user_properties).get("conformance_known_issue", "")
        record.open_record(record.Record(prop, comp, framework, dtype, item.config.getoption("device"),
                                         known_issue=str(known)))


def _status(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and "XPASS(strict)" in str(report.longrepr):
        return "xpassed"
    return report.outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    info = _marker_info(item)
    closes = call.when == "call" or (call.when == "setup" and not report.passed)
    if info is None or not closes:
        return report
    rec = record.close_record()
    if rec is None:
        return report
    if rec.worst_case is not None and item.config.getoption("conformance_report"):
        ctx = CompareContext(rec.property, rec.component, rec.framework, rec.framework_version,
                             rec.dtype, rec.device, rec.worst_case)
        rec.reproducer = str(write_reproducer(ctx))
    message = "" if report.passed else str(report.longrepr)[-2000:]
    report.user_properties.append((ROW, rec.row(_status(report), message)))
    return report


class ReportWriter:
    """Collects rows where reports arrive (the only process serially, the xdist controller)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.rows.extend(value for name, value in report.user_properties if name == ROW)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        meta = {
            "profile": config.getoption("conformance_profile"),
            "device": config.getoption("device"),
            "versions": versions(),
        }
        write_report(self.path, self.rows, meta)


def versions() -> dict[str, str]:
    found = {}
    for package in ("numpy", "torch", "jax", "jaxlib", "flax", "optax", "hypothesis"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
