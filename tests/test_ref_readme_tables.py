"""The README's math tables point at code that exists: every `module.function` they name is a
public function of that refimpl module, and every line they quote ("line of `f`") is a line
of the function the table names. A rename, a privatized function or a rewritten line that
the README still shows fails here."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import refimpl

README = Path(__file__).resolve().parent.parent / "README.md"
MATH = README.read_text().split("## The math, mapped to the code")[1].split("### The public API")[0]
MODULES = {
    info.name: importlib.import_module(f"refimpl.{info.name}")
    for info in pkgutil.iter_modules(refimpl.__path__)
    if not info.name.startswith("_")
}


def qualified_names() -> list[str]:
    """`module.function` in the math section, for every refimpl module (calls' arguments dropped)."""
    names = {
        m.group(1) + "." + m.group(2)
        for m in re.finditer(r"`([a-z_]+)\.([a-z_]+)[(`]", MATH)
        if m.group(1) in MODULES
    }
    return sorted(names)


def quoted_lines() -> list[tuple[str, str]]:
    """(function names of the table header, quoted code line) for every "line of" table."""
    found = []
    for table in re.findall(r"((?:^\|.*\|\n)+)", MATH, flags=re.MULTILINE):
        header = table.splitlines()[0]
        if "line of" not in header:
            continue
        owners = re.findall(r"`(_?[a-z_]+)`", header.split("line of")[1])
        for row in table.splitlines()[2:]:
            for code in re.findall(r"`([^`]*=[^`]*)`", row.rsplit("|", 2)[-2]):
                found.append((" ".join(owners), code))
    return found


def source_of(name: str) -> str:
    for module in MODULES.values():
        if inspect.isfunction(getattr(module, name, None)):
            return inspect.getsource(getattr(module, name))
    raise AssertionError(f"README names {name}, which no refimpl module defines")


@pytest.mark.parametrize("name", qualified_names())
def test_a_named_function_exists_and_is_public(name: str) -> None:
    module, function = name.split(".")
    assert inspect.isfunction(getattr(MODULES[module], function, None)), f"README names {name}"
    assert not function.startswith("_")


@pytest.mark.parametrize(("owners", "code"), quoted_lines())
def test_a_quoted_line_is_in_the_named_function(owners: str, code: str) -> None:
    sources = "".join(source_of(name) for name in owners.split())
    assert code in sources, f"README quotes `{code}` as a line of {owners}"


def test_the_tables_are_found() -> None:
    assert len(qualified_names()) >= 15 and len(quoted_lines()) >= 10
