"""Reading a file the user names (a report, a known-issues file): one ValueError naming the
file and what was expected when it is missing or does not parse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def read(
    path: Path, what: str, language: str, parse: Callable[[str], Any], errors: tuple[type[Exception], ...]
) -> Any:
    """`parse` of the text at `path`; `what` is the file expected ("a JSON report")."""
    if not path.is_file():
        raise ValueError(f"{path}: expected {what}, no such file")
    unreadable: tuple[type[Exception], ...] = (UnicodeDecodeError, *errors)
    try:
        return parse(path.read_text())
    except unreadable as err:
        raise ValueError(f"{path}: expected {what}, not valid {language} ({err})") from None
