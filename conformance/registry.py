"""The registry: every component the suite runs, listed explicitly.

One line per component package below; each package (a folder of
conformance/components) exports `COMPONENTS`, a tuple of `Component` records (a
folder may hold variants: the RNN's holds full and truncated BPTT). A package
outside this one adds components through the entry-point group
"conformance.components", each entry naming such a module. Nothing registers itself
by being imported: this module imports the packages it lists, the first time a
component is asked for.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from conformance.component import Component

GROUP = "conformance.components"

PACKAGES = (
    "conformance.components.mlp",
    "conformance.components.mlp_bn",
    "conformance.components.activations",
    "conformance.components.rnn",
    "conformance.components.rnn_varlen",
    "conformance.components.clip",
    "conformance.components.trajectory",
)


def _records(module_path: str) -> tuple[Component, ...]:
    module = importlib.import_module(module_path)
    records = getattr(module, "COMPONENTS", None)
    if not isinstance(records, tuple) or not all(isinstance(r, Component) for r in records):
        raise TypeError(
            f"{module_path}.COMPONENTS: expected a tuple of conformance.component.Component,"
            f" received {records!r}"
        )
    return records


@cache
def components() -> dict[str, Component]:
    """Component name -> record, in the order listed (built-in first, then entry points)."""
    paths = [*PACKAGES, *(entry.module for entry in entry_points(group=GROUP))]
    found: dict[str, Component] = {}
    for path in paths:
        for record in _records(path):
            if record.name in found:
                raise ValueError(f"component {record.name!r}: defined twice (again in {path})")
            found[record.name] = record
    return found


def names() -> tuple[str, ...]:
    return tuple(components())


def component(name: str) -> Component:
    found = components().get(name)
    if found is None:
        raise ValueError(f"component: expected one of {list(names())}, received {name!r}")
    return found


def test_packages() -> tuple[str, ...]:
    """The packages whose test modules hold the components' tests (for pytest --pyargs)."""
    return ("conformance.components", *(entry.module for entry in entry_points(group=GROUP)))


def adapter_of(framework: str, name: str) -> str | None:
    """The module path of a component's own adapter for a framework, or None."""
    return component(name).adapters.get(framework)
