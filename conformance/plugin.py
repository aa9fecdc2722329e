"""The pytest plugin (entry point `pytest11`): options, parametrization, known issues, report.

Options (all prefixed, so they meet no other plugin's):
  --conformance-frameworks LIST   numpy,torch,jax or a plugin's; each one named is required
  --conformance-dtypes LIST       float32,float64,float16,bfloat16
  --conformance-device DEVICE     cpu (default) or cuda: required
  --conformance-allow-missing     a framework or device asked for but missing: skipped rows
  --conformance-profile NAME      hypothesis profile: ci, dev, thorough, hunt (profiles.py)
  --conformance-max-examples N    examples per test, instead of the profile's number
  --conformance-report PATH       report.json at PATH, .md and .html beside it, reproducers/
  --conformance-known-issues PATH known-issue data (default: the packaged known_issues.toml and
                                  the files the framework plugins ship)

`--frameworks`, `--dtypes` and `--device` still work for one release, with a deprecation
warning, where no other plugin or conftest owns the name.

The plugin loads into every pytest run of the environment, so this module imports only
pytest: the suite's modules (conformance.session) load when a `--conformance-*` option is
given or a conformance test is collected, and an unrelated run never pays for them. Every
conformance test asks for the fixture `conformance_run` (the config and its own row's
record). Rows travel in each test report's `user_properties`, so under pytest-xdist the
controller receives every worker's rows and writes one report, the same rows as a serial run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from conformance.config import Run
    from conformance.session import Session

ROW = "conformance_row"
KNOWN = "conformance_known_issue"
SCOPED = "conformance_scoped_known_issue"
OPTIONS = (
    "frameworks",
    "dtypes",
    "device",
    "allow_missing",
    "profile",
    "max_examples",
    "report",
    "known_issues",
)
DEPRECATED = {
    "--frameworks": "--conformance-frameworks",
    "--dtypes": "--conformance-dtypes",
    "--device": "--conformance-device",
}
_SESSION = pytest.StashKey["Session"]()
_RECORD = pytest.StashKey[Any]()  # the test's conformance.record.Record
_ALIASED = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "backprop conformance suite (python -m conformance --help)")
    group.addoption(
        "--conformance-frameworks",
        metavar="LIST",
        help="comma list of frameworks to test, each one required: numpy,torch,jax or a"
        " plugin's (default: every one installed; one missing is skipped)",
    )
    group.addoption(
        "--conformance-dtypes",
        metavar="LIST",
        help="comma list of float32,float64,float16,bfloat16 (default: all four)",
    )
    group.addoption(
        "--conformance-device",
        metavar="DEVICE",
        help="cpu (default) or cuda; a framework without it stops the run with an error",
    )
    group.addoption(
        "--conformance-allow-missing",
        action="store_true",
        default=False,
        help="report a framework or device asked for but missing as skipped rows, not an error",
    )
    group.addoption(
        "--conformance-profile",
        metavar="NAME",
        help="hypothesis profile: ci (default: derandomized, bounded), dev, thorough, hunt",
    )
    group.addoption(
        "--conformance-max-examples",
        metavar="N",
        help="examples per test (default: the profile's: ci 12, dev 60, thorough 1000)",
    )
    group.addoption(
        "--conformance-report",
        metavar="PATH",
        help="write the report to PATH (JSON), PATH's .md and .html beside it, and the rows'"
        " reproducers to reproducers/ in its folder",
    )
    group.addoption(
        "--conformance-known-issues",
        metavar="PATH",
        help="known framework issues and conventions (TOML; default: the packaged ones)",
    )


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own, which always answers
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`-n N` without `--dist`: rows grouped by the programs they compile
    (conformance.distribution); an explicit `--dist` keeps xdist's scheduler."""
    args = [str(a) for a in config.invocation_params.args]
    explicit = any(a in ("--dist", "-d") or a.startswith("--dist=") for a in args)
    if config.getvalue("dist") != "load" or explicit:
        return None
    from conformance.distribution import ByCompiledPrograms

    return ByCompiledPrograms(config, log)


def _registered(parser: pytest.Parser) -> set[str]:
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    return {name for g in groups if g is not None for opt in g.options for name in opt.names()}


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Any:
    """The deprecated spellings, rewritten to the prefixed ones where nobody else owns them."""
    result = yield
    taken = _registered(parser)
    used = []
    for n, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in DEPRECATED and name not in taken:
            args[n] = DEPRECATED[name] + eq + value
            used.append(name)
    early_config.stash[_ALIASED] = used
    return result


def _given(config: pytest.Config) -> bool:
    return any(config.getoption(f"conformance_{name}") not in (None, False) for name in OPTIONS)


def _session(config: pytest.Config) -> Session:
    if _SESSION not in config.stash:
        from conformance.session import Session

        config.stash[_SESSION] = Session(config)
    return config.stash[_SESSION]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance(property, component): a conformance property")
    if hasattr(config, "workerinput"):  # xdist workers leave warnings and the report to the controller
        if _given(config):
            _session(config)
        return
    for old in config.stash.get(_ALIASED, []):
        config.issue_config_time_warning(
            pytest.PytestDeprecationWarning(
                f"{old} is deprecated and goes in the next release: use {DEPRECATED[old]}"
            ),
            stacklevel=2,
        )
    report = config.getoption("conformance_report")
    if report:
        from conformance.report.rows import remove

        remove(report)  # a run that writes no report leaves none, never the previous one
    if _given(config):
        _session(config)  # a mistake in the options stops the run here, before anything runs
    config.pluginmanager.register(Rows(report), "conformance-rows")


@pytest.fixture
def conformance_run(request: pytest.FixtureRequest) -> Run:
    """The run a conformance test checks under: the session's config and its row's record."""
    from conformance.config import Run

    return Run(_session(request.config).run, request.node.stash.get(_RECORD, None))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("conformance")
    if marker is None:
        return
    fws, dtypes = _session(metafunc.config).frameworks_for(
        marker.kwargs["property"], marker.kwargs["component"]
    )
    if "framework" in metafunc.fixturenames:
        metafunc.parametrize("framework", fws)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", dtypes)


def _info(item: pytest.Item) -> tuple[str, str, str, str] | None:
    """(property, component, framework, dtype) of a conformance test, else None."""
    marker = item.get_closest_marker("conformance")
    params = getattr(getattr(item, "callspec", None), "params", {})
    if (
        marker is None
        or not isinstance(params.get("framework"), str)
        or not isinstance(params.get("dtype"), str)
    ):
        return None
    return marker.kwargs["property"], marker.kwargs["component"], params["framework"], params["dtype"]


@pytest.hookimpl(tryfirst=True)  # before -k and -m select: they match the keywords added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("conformance") for item in items):
        return
    known = _session(config).known()
    empty = [i for i in items if i.get_closest_marker("conformance") and _info(i) is None]
    if empty:  # a property with no framework or dtype selected has no row, so no test either
        items[:] = [i for i in items if i not in empty]
        config.hook.pytest_deselected(items=empty)
    for item in items:
        info = _info(item)
        if info is None:
            continue
        item.extra_keyword_matches.update(info[:2])  # -k bn-gradient-sums, -k mlp_bn
        for issue in known:
            if issue.applies(*info) and issue.reached:  # judged case by case (conformance.scopes)
                item.user_properties.append((SCOPED, issue.id))
            elif issue.applies(*info):
                item.add_marker(pytest.mark.xfail(strict=True, reason=issue.reason()))
                item.user_properties.append((KNOWN, issue.id))


def pytest_runtest_setup(item: pytest.Item) -> None:
    info = _info(item)
    if info is not None:
        from conformance.record import Record

        known = dict(item.user_properties).get(KNOWN, "")
        item.stash[_RECORD] = Record(
            *info,
            _session(item.config).run.device,
            known_issue=str(known),
            # this row's entries (one id may have entries for several rows, scoped or not)
            scoped=tuple(i for i in _session(item.config).known() if i.reached and i.applies(*info)),
        )


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """After a row: JAX's compiled programs dropped if they near the process's mapping limit."""
    if _info(item) is not None:
        from conformance.frameworks.jax import release_compiled_programs

        release_compiled_programs()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    closes = call.when == "call" or (call.when == "setup" and not report.passed)
    rec = item.stash.get(_RECORD, None)
    if rec is None or not closes:
        return report
    del item.stash[_RECORD]
    report.user_properties.append((ROW, _session(item.config).close(item, report, call, rec)))
    return report


class Rows:
    """Collects rows where reports arrive (the only process serially, the xdist controller),
    says what the run found, and writes the report if one was asked for."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.written = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.rows.extend(cast(dict[str, Any], value) for name, value in report.user_properties if name == ROW)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """The report of a run that ran tests and ended normally (not interrupted, no usage or
        internal error, not --collect-only)."""
        ran = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if self.path and ran and not session.config.option.collectonly:
            from conformance.report import write_report

            write_report(self.path, self.rows, _session(session.config).meta())
            self.written = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        from conformance.report.rows import paths, skip_reasons, totals_line

        line = f"conformance: {totals_line(self.rows)}"
        if self.written and self.path:
            line += f"; report: {', '.join(str(p) for p in paths(self.path))}"
        terminalreporter.write_line(line)
        for n, reason in skip_reasons(self.rows):
            terminalreporter.write_line(f"  skipped ({n}): {reason}")
