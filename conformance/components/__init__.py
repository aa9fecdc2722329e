"""The components the suite knows, one module each, found by name.

A component module `conformance/components/<name>.py` defines COMPONENT (see
base.py): its spec class, differentiable inputs, outputs, the NumPy reference
runner and a deterministic golden case. Each framework adapter package has a
module of the same name. New components join by adding those modules and a
property test module; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from conformance.components.base import Component


@cache
def names() -> tuple[str, ...]:
    return tuple(
        sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base")
    )


@cache
def component(name: str) -> Component:
    if name not in names():
        raise ValueError(f"component: expected one of {list(names())}, received {name!r}")
    module = importlib.import_module(f"conformance.components.{name}")
    found: Component = module.COMPONENT
    return found


def all_components() -> dict[str, Component]:
    return {name: component(name) for name in names()}
