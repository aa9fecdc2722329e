"""The pytest plugin (entry point `pytest11`): options, the run, parametrization, known issues, report.

Options:
  --frameworks numpy,torch,jax    implementations under test (any installed framework plugin)
  --dtypes float32,float64
  --device cpu|cuda
  --conformance-profile ci|dev|thorough|hunt   hypothesis profile (profiles.py)
  --conformance-report PATH       JSON at PATH, Markdown beside it, reproducers in PATH's folder
  --conformance-known-issues PATH known-issue data (default: the packaged known_issues.toml and
                                  the files the framework plugins ship)

The plugin builds one RunConfig from them and hands it down: every conformance test
asks for the fixture `conformance_run` (the config and its own row's record). Rows
travel in each test report's `user_properties`, so under pytest-xdist the controller
receives every worker's rows and writes one report, the same rows as a serial run.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from conformance import frameworks, known_issues, profiles, record
from conformance.compare import Context as CompareContext
from conformance.compare import write_reproducer
from conformance.config import DTYPES, Run, RunConfig
from conformance.framework import DEVICES
from conformance.registry import component
from conformance.report import write_report

ROW = "conformance_row"
_CONFIG = pytest.StashKey[RunConfig]()
_KNOWN = pytest.StashKey[list[known_issues.KnownIssue]]()
_RECORD = pytest.StashKey[record.Record]()


def _csv(value: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise pytest.UsageError(f"{option}: expected a comma list of {list(allowed)}, received {value!r}")
    return tuple(chosen)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "backprop conformance suite")
    group.addoption("--frameworks", default=None,
                    help="comma list of frameworks (default: every one installed: numpy,torch,jax, ...)")
    group.addoption("--dtypes", default=",".join(DTYPES), help="comma list of float32,float64")
    group.addoption("--device", default="cpu", choices=DEVICES, help="cpu or cuda")
    group.addoption("--conformance-profile", default="ci", choices=tuple(profiles.PROFILES),
                    help="hypothesis profile: ci (derandomized, bounded), dev, thorough, hunt")
    group.addoption("--conformance-report", default=None, metavar="PATH",
                    help="write the report as JSON to PATH and as Markdown beside it")
    group.addoption("--conformance-known-issues", default=None, metavar="PATH",
                    help="known framework issues and conventions (TOML; default: the packaged ones)")


def _known_issue_files(config: pytest.Config) -> list[Path]:
    chosen = config.getoption("conformance_known_issues")
    if chosen:
        return [Path(chosen)]
    files = [known_issues.DEFAULT_PATH]
    for plugin in frameworks.plugins().values():
        if isinstance(plugin, frameworks.Framework):
            files.extend(plugin.known_issues())
    return files


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance(property, component): a conformance property")
    names = frameworks.names()
    report = config.getoption("conformance_report")
    config.stash[_CONFIG] = RunConfig(
        frameworks=_csv(config.getoption("frameworks") or ",".join(names), names, "--frameworks"),
        dtypes=_csv(config.getoption("dtypes"), DTYPES, "--dtypes"),
        device=config.getoption("device"),
        profile=profiles.profile(config.getoption("conformance_profile")),
        reproducer_dir=Path(report).resolve().parent / "reproducers" if report else RunConfig.reproducer_dir,
    )
    config.stash[_KNOWN] = [issue for path in _known_issue_files(config)
                            for issue in known_issues.load(path)]
    if report and not hasattr(config, "workerinput"):  # xdist workers leave writing to the controller
        config.pluginmanager.register(ReportWriter(report), "conformance-report-writer")


@pytest.fixture
def conformance_run(request: pytest.FixtureRequest) -> Run:
    """The run a conformance test checks under: the session's config and its row's record."""
    return Run(request.config.stash[_CONFIG], request.node.stash.get(_RECORD, None))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("conformance")
    if marker is None:
        return
    run = metafunc.config.stash[_CONFIG]
    fws, dtypes = list(run.frameworks), list(run.dtypes)
    try:
        prop = component(marker.kwargs["component"]).property(marker.kwargs["property"])
    except ValueError:
        prop = None  # a property bound outside the component's record (golden-agreement)
    if prop is not None:  # no rows for combinations a property does not apply to
        fws = [f for f in fws if not (prop.frameworks_only and f == frameworks.REFERENCE.name)]
        dtypes = [d for d in dtypes if not (prop.float64_only and d != "float64")]
    if "framework" in metafunc.fixturenames:
        metafunc.parametrize("framework", fws)
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
        item.extra_keyword_matches.update(info[:2])  # -k bn-gradient-sums, -k mlp_bn
        for issue in config.stash[_KNOWN]:
            if issue.applies(*info):
                item.add_marker(pytest.mark.xfail(strict=True, reason=issue.reason()))
                item.user_properties.append(("conformance_known_issue", issue.id))


def pytest_runtest_setup(item: pytest.Item) -> None:
    info = _marker_info(item)
    if info is not None:
        prop, comp, framework, dtype = info
        known = dict(item.user_properties).get("conformance_known_issue", "")
        item.stash[_RECORD] = record.Record(prop, comp, framework, dtype,
                                            item.config.stash[_CONFIG].device, known_issue=str(known))


def _status(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed and "XPASS(strict)" in str(report.longrepr):
        return "xpassed"
    return report.outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    closes = call.when == "call" or (call.when == "setup" and not report.passed)
    rec = item.stash.get(_RECORD, None)
    if rec is None or not closes:
        return report
    del item.stash[_RECORD]
    if rec.worst_case is not None and item.config.getoption("conformance_report"):
        ctx = CompareContext(rec.property, component(rec.component), rec.framework,
                             rec.framework_version, rec.dtype, rec.device, rec.worst_case)
        directory = item.config.stash[_CONFIG].reproducer_dir
        if directory is not None:
            rec.reproducer = str(write_reproducer(ctx, directory))
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
    packages = ["numpy", "torch", "jax", "jaxlib", "flax", "optax", "hypothesis"]
    for plugin in frameworks.plugins().values():
        if isinstance(plugin, frameworks.Framework):
            packages += [m for m in plugin.requires if m not in packages]
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
