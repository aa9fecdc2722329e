"""A finished test's status and message for its report row, read from pytest's report.

passed    every example agreed
failed    a disagreement: the message is the `conformance failure: ...` lines, the
          property, parameter, worst element and replay command, nothing else
error     the check raised something else (an adapter's TypeError, a missing golden
          file, a hypothesis health check): the message is the exception and where
skipped   the reason (a framework not installed, a device missing, not applicable)
xfailed   a known issue reproduced (the message is how it shows)
xpassed   a known issue no longer reproduces
"""

from __future__ import annotations

import traceback

import pytest

FAILED_LIKE = ("failed", "error", "xfailed")  # a row whose case is kept for replay
LIMIT = 4000  # characters of one exception's text kept in a row


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (hypothesis groups distinct failures of one test)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno} in {last.name})"


def _text(error: BaseException) -> str:
    if isinstance(error, AssertionError):
        text = str(error)
    elif isinstance(error, pytest.fail.Exception):
        text = str(error.msg)
    else:
        text = f"{type(error).__name__}: {error}{_where(error)}"
    return text if len(text) <= LIMIT else text[:LIMIT] + " [...]"


def failure(call: pytest.CallInfo[None]) -> tuple[bool, str]:
    """(every exception is a disagreement, their messages)."""
    if call.excinfo is None:
        return True, ""
    leaves = _leaves(call.excinfo.value)
    disagreements = all(isinstance(e, AssertionError) for e in leaves)
    return disagreements, "\n\n".join(_text(e) for e in leaves)


def outcome(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str, str]:
    """(status, message) of the row whose test produced `report` at `call`."""
    if hasattr(report, "wasxfail"):
        return ("xfailed", failure(call)[1]) if report.skipped else ("xpassed", "")
    if report.failed and call.excinfo is None and "XPASS(strict)" in str(report.longrepr):
        return "xpassed", str(report.longrepr)
    if report.passed:
        return "passed", ""
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return "skipped", reason.removeprefix("Skipped: ")
    disagreement, message = failure(call)
    return ("failed" if disagreement and call.when == "call" else "error"), message
