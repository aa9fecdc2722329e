"""The frameworks the suite knows: the NumPy reference, and every plugin installed.

Plugins are found through the entry-point group "conformance.frameworks" (this
package publishes torch and jax there; see conformance.framework). A framework is
imported only when a test asks for it, so a missing one becomes a skip reason
(`skip_reason`) instead of an import error; a plugin that fails to load is listed
with the reason.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from conformance import registry
from conformance.backend import Backend, Unsupported
from conformance.framework import DEVICES, Framework
from conformance.frameworks.reference import REFERENCE

GROUP = "conformance.frameworks"


@cache
def plugins() -> dict[str, Framework | str]:
    """Framework name -> plugin (or, for one that failed to load, why), reference first."""
    found: dict[str, Framework | str] = {}
    for entry in entry_points(group=GROUP):
        try:
            plugin = entry.load()
        except Exception as err:  # a broken third-party plugin must not stop the others
            found[entry.name] = f"{entry.name}: its plugin {entry.value} failed to load ({err})"
            continue
        if not isinstance(plugin, Framework) or plugin.name != entry.name:
            found[entry.name] = (
                f"{entry.name}: {entry.value} is not a conformance.framework.Framework named {entry.name!r}"
            )
            continue
        found[entry.name] = plugin
    ranked = sorted(found, key=lambda n: (getattr(found[n], "order", 100), n))
    return {REFERENCE.name: REFERENCE, **{n: found[n] for n in ranked}}


def names() -> tuple[str, ...]:
    """Every framework name --frameworks accepts: the reference first, then the plugins."""
    return tuple(plugins())


def check_name(framework: str) -> Framework:
    found = plugins().get(framework)
    if found is None:
        raise ValueError(f"framework: expected one of {list(names())}, received {framework!r}")
    if isinstance(found, str):
        raise Unsupported(found)
    return found


@cache
def skip_reason(framework: str, device: str = "cpu") -> str | None:
    """Why this framework cannot run here (not installed, no such device), or None."""
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {list(DEVICES)}, received {device!r}")
    try:
        plugin = check_name(framework)
    except Unsupported as err:
        return str(err)
    for module in plugin.requires:
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"{framework} is not installed ({module}: {err}); {plugin.install}"
    return plugin.device_unavailable(device)


@cache
def backend(framework: str, device: str = "cpu") -> Backend:
    """The backend of an installed framework on a device (Unsupported with the reason if not)."""
    reason = skip_reason(framework, device)
    if reason is not None:
        raise Unsupported(reason)
    return check_name(framework).backend(device, registry.adapter_of)


__all__ = [
    "DEVICES",
    "GROUP",
    "REFERENCE",
    "Framework",
    "backend",
    "check_name",
    "names",
    "plugins",
    "skip_reason",
]
