"""Known framework bugs and conventions as data (known_issues.toml), applied as strict xfails.

An entry names the property, component, framework, the package and version
range it applies to, a link and the expected behaviour. A matching test is
marked `xfail(strict=True)` with a one-line reason (kind, id, link); the report
carries the whole entry. While the issue reproduces the row reads "known"; when
a release fixes it the test XPASSes, strict turns that into a failure, and the
message says the issue looks fixed and which file to remove the entry from.

An entry with `reached = "module:function"` holds only for the cases that function
says reach it (conformance.scopes): its row is judged case by case, not marked xfail.
A case that reaches it and fails is the issue ("known"), one that reaches it and passes
says it looks fixed (a failure), and the other cases are judged as in any row. Such an
entry's failure is a disagreement (an assertion of the property), or, with
`raises = "TypeError"` (a built-in exception's name), the framework raising that
exception: a disagreement on a reaching case is then a failure as on any other.

A file that cannot be read is an error naming the file, the entry and the field,
raised before any test runs.
"""

from __future__ import annotations

import builtins
import importlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from conformance import files
from conformance.case import Case
from conformance.dtypes import DTYPES  # an entry without dtypes applies to every one

DEFAULT_PATH = Path(__file__).with_name("known_issues.toml")
KINDS = ("bug", "convention")
REQUIRED = ("id", "kind", "property", "component", "framework", "package", "versions", "link", "expected")
OPTIONAL = ("dtypes", "reached", "raises")


@dataclass(frozen=True)
class KnownIssue:
    id: str
    kind: str  # "bug" or "convention"
    property: str
    component: str
    framework: str
    package: str  # whose version `versions` constrains
    versions: str  # a PEP 440 specifier, e.g. ">=0.2.0"
    link: str
    expected: str  # what the framework does, in words
    dtypes: tuple[str, ...] = DTYPES
    reached: str = ""  # "module:function" of a conformance.scopes predicate; "" for the whole row
    raises: str = ""  # with `reached`: the built-in exception a reaching case raises; "": it disagrees
    source: Path = field(default=DEFAULT_PATH, compare=False)  # the file it was read from

    def installed(self) -> str | None:
        try:
            return metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return None

    def applies(self, property_id: str, component: str, framework: str, dtype: str) -> bool:
        if (property_id, component, framework) != (self.property, self.component, self.framework):
            return False
        if dtype not in self.dtypes:
            return False
        installed = self.installed()
        return installed is not None and SpecifierSet(self.versions).contains(installed, prereleases=True)

    def reaches(self, case: Case) -> bool | None:
        """Whether `case` reaches this issue (True for every case of a row-wide entry)."""
        return scope(self.reached)(case) if self.reached else True

    def reproduced_by(self, failure: BaseException) -> bool:
        """`describes` for a raised failure: a failed assertion of the property is a wrong value,
        any other exception is named by its class or one of its bases."""
        if isinstance(failure, AssertionError):
            return self.describes(None)
        return any(self.describes(cls.__name__) for cls in type(failure).__mro__)

    def describes(self, exception: str | None) -> bool:
        """Whether a failure on a case this issue reaches is this issue, by the name of the
        exception the framework raised (None: it returned a wrong value); a row-wide entry
        describes any failure of its row."""
        return not self.reached or exception == (self.raises or None)

    def reason(self) -> str:
        """The xfail reason pytest prints: one short line."""
        return f"known {self.kind} {self.id} ({self.link})"

    def fixed(self) -> str:
        """What a strict XPASS says: the issue looks fixed, and where its entry is."""
        return (
            f"known {self.kind} {self.id} ({self.link}) no longer reproduces with {self.package}"
            f" {self.installed()}: the issue looks fixed, remove {self.id} from {self.source}"
        )

    def details(self) -> dict[str, str]:
        """The entry as the report keeps it."""
        return {
            "kind": self.kind,
            "link": self.link,
            "expected": self.expected,
            "package": self.package,
            "versions": self.versions,
            "file": str(self.source),
        } | {k: v for k, v in (("reached", self.reached), ("raises", self.raises)) if v}


def scope(path: str) -> Callable[[Case], bool | None]:
    """The predicate a `reached` field names; ValueError naming the path if there is none."""
    module, _, name = path.partition(":")
    try:
        found = getattr(importlib.import_module(module), name, None) if name else None
    except ImportError as err:
        raise ValueError(f"reached: cannot import {module!r} ({err}), received {path!r}") from None
    if not callable(found):
        raise ValueError(f"reached: expected 'module:function' naming a function, received {path!r}")
    return found


def _entry(path: Path, n: int, entry: Any) -> KnownIssue:
    where = f"{path} [[issue]] {n + 1}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a table of fields, received {entry!r}")
    if isinstance(entry.get("id"), str):
        where += f" ({entry['id']})"
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise ValueError(f"{where}: expected the fields {list(REQUIRED)}, missing {missing}")
    unknown = sorted(set(entry) - {*REQUIRED, *OPTIONAL})
    if unknown:
        raise ValueError(f"{where}: unknown fields {unknown}; expected {[*REQUIRED, *OPTIONAL]}")
    for key in REQUIRED:
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ValueError(f"{where} {key}: expected a non-empty string, received {entry[key]!r}")
    if entry["kind"] not in KINDS:
        raise ValueError(f"{where} kind: expected one of {list(KINDS)}, received {entry['kind']!r}")
    try:
        SpecifierSet(entry["versions"])
    except InvalidSpecifier:
        raise ValueError(
            f"{where} versions: expected a PEP 440 range such as '>=2.0,<3', received {entry['versions']!r}"
        ) from None
    dtypes = entry.get("dtypes", list(DTYPES))
    if not isinstance(dtypes, list) or not dtypes or any(d not in DTYPES for d in dtypes):
        raise ValueError(f"{where} dtypes: expected a list of {list(DTYPES)}, received {dtypes!r}")
    if "reached" in entry:
        if not isinstance(entry["reached"], str):
            raise ValueError(f"{where} reached: expected 'module:function', received {entry['reached']!r}")
        try:
            scope(entry["reached"])
        except ValueError as err:
            raise ValueError(f"{where} {err}") from None
    if "raises" in entry:
        raised = entry["raises"]
        known = isinstance(raised, str) and isinstance(getattr(builtins, raised, None), type)
        if not known or not issubclass(getattr(builtins, raised), Exception):
            raise ValueError(f"{where} raises: expected a built-in exception's name, received {raised!r}")
        if "reached" not in entry:
            raise ValueError(
                f"{where} raises: applies to an entry with `reached` (a row-wide entry's xfail takes"
                f" any failure), received raises = {raised!r} without it"
            )
    return KnownIssue(**{**entry, "dtypes": tuple(dtypes), "source": path})


def load(path: str | Path = DEFAULT_PATH) -> list[KnownIssue]:
    """The entries of one file; ValueError naming the file, the entry and the field otherwise."""
    path = Path(path)
    data = files.read(path, "a known-issues TOML file", "TOML", tomllib.loads, (tomllib.TOMLDecodeError,))
    entries = data.get("issue", [])
    if not isinstance(entries, list):
        raise ValueError(f"{path} issue: expected [[issue]] tables, received {entries!r}")
    unknown = sorted(set(data) - {"issue"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}; expected only [[issue]] tables")
    return [_entry(path, n, entry) for n, entry in enumerate(entries)]
