"""Known framework bugs and conventions as data (known_issues.toml), applied as strict xfails.

An entry names the property, component, framework, the package and version
range it applies to, a link and the expected behaviour. A matching test is
marked `xfail(strict=True)`: while the issue reproduces the row reads "known";
when a release fixes it the test XPASSes, strict turns that into a failure,
and the message says the issue looks fixed and the entry should go.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet

DEFAULT_PATH = Path(__file__).with_name("known_issues.toml")
KINDS = ("bug", "convention")
REQUIRED = ("id", "kind", "property", "component", "framework", "package", "versions", "link",
            "expected")


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
    dtypes: tuple[str, ...] = ("float32", "float64")

    def applies(self, property_id: str, component: str, framework: str, dtype: str) -> bool:
        if (property_id, component, framework) != (self.property, self.component, self.framework):
            return False
        if dtype not in self.dtypes:
            return False
        try:
            installed = metadata.version(self.package)
        except metadata.PackageNotFoundError:
            return False
        return SpecifierSet(self.versions).contains(installed, prereleases=True)

    def reason(self) -> str:
        return (
            f"known {self.kind} {self.id} ({self.link}): {self.expected}"
            f" -- if this XPASSes, {self.package} no longer shows it: the issue looks fixed,"
            f" remove {self.id} from known_issues.toml"
        )


def load(path: str | Path = DEFAULT_PATH) -> list[KnownIssue]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"known issues: expected an existing TOML file, received {str(path)!r}")
    data = tomllib.loads(path.read_text())
    issues = []
    for n, entry in enumerate(data.get("issue", [])):
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            raise ValueError(f"known issues [{n}]: expected fields {list(REQUIRED)}, missing {missing}")
        if entry["kind"] not in KINDS:
            raise ValueError(f"known issues [{n}] kind: expected one of {KINDS}, received {entry['kind']!r}")
        SpecifierSet(entry["versions"])  # raises InvalidSpecifier on a bad range
        issues.append(KnownIssue(**{**entry, "dtypes": tuple(entry.get("dtypes", KnownIssue.dtypes))}))
    return issues
