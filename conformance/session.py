"""A pytest session of the suite: the options read into one RunConfig, the known issues, and
each test's outcome turned into its report row (status, message, reproducer).

conformance/plugin.py imports this module only when a session needs it: when a
`--conformance-*` option is given or a conformance test is collected. A user
mistake here is a `pytest.UsageError` naming the option or file: pytest prints it
as one line and exits with status 4, before any test runs.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from conformance import frameworks, known_issues, profiles, record
from conformance.config import DEFAULT_REPRODUCER_DIR, RunConfig
from conformance.dtypes import DTYPES
from conformance.framework import DEVICES
from conformance.outcome import FAILED_LIKE, outcome
from conformance.replay import find_property


def comma_list(value: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise pytest.UsageError(f"{option}: expected a comma list of {list(allowed)}, received {value!r}")
    return tuple(dict.fromkeys(chosen))


def _choice(value: str | None, allowed: tuple[str, ...], option: str, default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise pytest.UsageError(f"{option}: expected one of {list(allowed)}, received {value!r}")
    return value


def whole_number(value: str, option: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"{option}: expected a whole number >= 1, received {value!r}")
    return int(value)


def _profile(name: str | None, max_examples: str | None) -> profiles.Profile:
    chosen = profiles.profile(_choice(name, tuple(profiles.PROFILES), "--conformance-profile", "ci"))
    if max_examples is None:
        return chosen
    return replace(chosen, max_examples=whole_number(max_examples, "--conformance-max-examples"))


class Session:
    """What the plugin knows for one pytest run of the suite."""

    def __init__(self, config: pytest.Config) -> None:
        def option(name: str) -> Any:
            return config.getoption(f"conformance_{name}")

        device = _choice(option("device"), DEVICES, "--conformance-device", "cpu")
        names = frameworks.names()
        asked = option("frameworks")
        if asked:
            chosen = comma_list(asked, names, "--conformance-frameworks")
        else:  # every framework installed; the CPU-only reference only on the CPU
            chosen = tuple(n for n in names if device == "cpu" or n != frameworks.REFERENCE.name)
        report = option("report")
        self.report_dir = Path(report).parent if report else None
        self.run = RunConfig(
            frameworks=chosen,
            dtypes=comma_list(option("dtypes") or ",".join(DTYPES), DTYPES, "--conformance-dtypes"),
            device=device,
            profile=_profile(option("profile"), option("max_examples")),
            reproducer_dir=self.report_dir / "reproducers" if self.report_dir else DEFAULT_REPRODUCER_DIR,
        )
        self._known_file = option("known_issues")
        self._known: list[known_issues.KnownIssue] | None = None
        if self._known_file:
            self.known()  # a file the user named is checked before anything runs
        controller = not hasattr(config, "workerinput")
        if controller and (asked or device != "cpu") and not option("allow_missing"):
            given = [
                f"--conformance-frameworks {asked}" if asked else "",
                f"--conformance-device {device}" if device != "cpu" else "",
            ]
            self.require(" ".join(filter(None, given)))

    def require(self, option: str) -> None:
        """Every framework asked for is installed and has the device, or a usage error says which."""
        missing = [
            reason for fw in self.run.frameworks if (reason := frameworks.skip_reason(fw, self.run.device))
        ]
        if missing:
            raise pytest.UsageError(
                f"{option}: {'; '.join(missing)}; add --conformance-allow-missing to"
                " run the rest and report these rows as skipped"
            )

    def known(self) -> list[known_issues.KnownIssue]:
        """The known issues: the file given, or the packaged one and those framework plugins ship."""
        if self._known is None:
            files = [Path(self._known_file)] if self._known_file else [known_issues.DEFAULT_PATH]
            if not self._known_file:
                files += [
                    f
                    for p in frameworks.plugins().values()
                    if isinstance(p, frameworks.Framework)
                    for f in p.known_issues()
                ]
            try:
                found = [issue for path in files for issue in known_issues.load(path)]
                for issue in found:
                    _check_names(issue)
            except ValueError as err:
                prefix = "--conformance-known-issues " if self._known_file else ""
                raise pytest.UsageError(f"{prefix}{err}") from None
            self._known = found
        return self._known

    def frameworks_for(self, property_id: str, component: str) -> tuple[list[str], list[str]]:
        """The frameworks and dtypes a property has rows for (none where it does not apply)."""
        fws, dtypes = list(self.run.frameworks), list(self.run.dtypes)
        try:
            prop = find_property(component, property_id)
        except ValueError:
            return fws, dtypes
        fws = [f for f in fws if not (prop.frameworks_only and f == frameworks.REFERENCE.name)]
        return fws, [d for d in dtypes if not any(prop.not_applicable(f, d) for f in fws)]

    def close(
        self, item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None], rec: record.Record
    ) -> dict[str, Any]:
        """The row of a finished test; its reproducer written, kept or removed."""
        issue = next((i for i in self.known() if i.id == rec.known_issue), None)
        status, message = outcome(report, call)
        if status == "xpassed" and issue is not None:
            message = f"[XPASS(strict)] {issue.fixed()}"
            if report.failed:
                report.longrepr = message
        elif status == "failed" and rec.not_reproduced and issue is not None:  # a case-scoped issue
            status = "xpassed"  # reached and passed: conformance.testing.judge_scoped
        return rec.row(status, message) | {"reproducer": self.reproducer(rec, status)}

    def reproducer(self, rec: record.Record, status: str) -> str:
        """The row's one file: a failure's case, or with a report the worst passing case; none
        else (a file an earlier run left for the row is removed). A path relative to the report."""
        path = self.run.reproducer_path(rec.component, rec.property, rec.framework, rec.dtype)
        written = rec.reproducer if status in FAILED_LIKE else ""
        if status == "passed" and self.report_dir is not None and rec.worst_case and path:
            written = str(
                rec.worst_case.save(
                    path, property=rec.property, framework=rec.framework, dtype=rec.dtype, device=rec.device
                )
            )
        if not written:
            if path is not None:
                path.unlink(missing_ok=True)
            return ""
        return os.path.relpath(written, self.report_dir) if self.report_dir else written

    def meta(self) -> dict[str, Any]:
        known = {i.id: i.details() for i in self.known()}
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return {
            "created": created,
            "profile": self.run.profile.name,
            "max_examples": self.run.profile.max_examples,
            "device": self.run.device,
            "frameworks": list(self.run.frameworks),
            "versions": versions(),
            "known_issues": known,
        }


def _check_names(issue: known_issues.KnownIssue) -> None:
    where = f"{issue.source} [[issue]] ({issue.id})"
    if issue.framework not in frameworks.names():
        raise ValueError(
            f"{where} framework: expected one of {list(frameworks.names())}, received {issue.framework!r}"
        )
    try:
        find_property(issue.component, issue.property)
    except ValueError as err:
        raise ValueError(f"{where} {err}") from None


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
