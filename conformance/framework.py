"""What a framework plugin provides, and the backend that dispatches to its adapters.

A framework joins the suite as an object of a `Framework` subclass, published under
the entry-point group "conformance.frameworks" (this package publishes torch and
jax that way; a third-party package publishes its own, with its own adapters and
known issues, and changes no file of this package):

    [project.entry-points."conformance.frameworks"]
    torch = "conformance.frameworks.torch:FRAMEWORK"

The plugin module must import without the framework installed (import it inside the
methods), so that a missing framework becomes a skip with `install` as the hint.

An adapter is a module per component: `CONVENTIONS` (the spec fields the framework
fixes: leaky_relu'(0), batch-norm momentum, ...), `run(case, cotangents, device) ->
Outcome`, optionally `jvp(case, tangents, device) -> Arrays` and capabilities such as
`hidden_grad_norms(case, device)`. `device` is what `Framework.device` returns for
the run's device name. A component's own folder names adapters for the frameworks it
knows (Component.adapters); a plugin names adapters for the components it brings
them for (Framework.adapters), and those take precedence.
"""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

from conformance.backend import Backend, Outcome, Unsupported
from conformance.case import Arrays, Case

DEVICES = ("cpu", "cuda")


class Framework(ABC):
    """A framework under test: its name, how to find it, its devices and its adapters."""

    name: str
    requires: tuple[str, ...]  # modules that must import for it to run
    install: str  # how a user installs it, for the skip reason
    order: int = 100  # column order in the matrix (the reference is 0)

    def adapters(self) -> Mapping[str, str]:
        """Component name -> adapter module path, for the components this plugin brings."""
        return {}

    def known_issues(self) -> tuple[Path, ...]:
        """TOML files of known issues (conformance.known_issues format) that ship with it."""
        return ()

    @abstractmethod
    def version(self) -> str:
        """The version reported in the matrix (with its companions: flax, optax, ...)."""

    def device_unavailable(self, device: str) -> str | None:
        """Why the device cannot run here, or None."""
        return None if device == "cpu" else f"{self.name}: no {device} device is supported"

    def device(self, device: str) -> Any:
        """The framework's handle for a device name, passed to every adapter call."""
        return device

    def activate(self, device: str) -> AbstractContextManager[None]:
        """The context around every adapter call (a default device, say)."""
        return contextlib.nullcontext()

    def backend(self, device: str, adapter_of: Callable[[str, str], str | None]) -> Backend:
        """The backend for a device; adapter_of(framework, component) finds a component's
        own adapter path."""
        return AdapterBackend(self, device, adapter_of)


class AdapterBackend(Backend):
    """Answers the backend contract through the framework's adapter for each component."""

    def __init__(
        self, framework: Framework, device: str, adapter_of: Callable[[str, str], str | None]
    ) -> None:
        self.framework = framework
        self.name = framework.name
        self.device = device
        self._handle = framework.device(device)
        self._adapter_of = adapter_of

    def version(self) -> str:
        return self.framework.version()

    def adapter(self, component: str) -> ModuleType:
        path = self.framework.adapters().get(component) or self._adapter_of(self.name, component)
        if path is None:
            raise Unsupported(f"{self.name} has no adapter for component {component!r}")
        return importlib.import_module(path)

    def conventions(self, component: str) -> dict[str, object]:
        return dict(self.adapter(component).CONVENTIONS)

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        with self.framework.activate(self.device):
            yield

    def run(self, case: Case, cotangents: Arrays | None = None) -> Outcome:
        adapter = self.adapter(case.component)
        with self._active():
            result: Outcome = adapter.run(case, cotangents, self._handle)
        return result

    def jvp(self, case: Case, tangents: Arrays) -> Arrays:
        adapter = self.adapter(case.component)
        if not hasattr(adapter, "jvp"):
            raise Unsupported(f"{self.name}'s adapter for {case.component} has no forward mode")
        with self._active():
            result: Arrays = adapter.jvp(case, tangents, self._handle)
        return result

    def call(self, case: Case, capability: str) -> Any:
        adapter = self.adapter(case.component)
        if not hasattr(adapter, capability):
            raise Unsupported(f"{self.name}'s adapter for {case.component} cannot answer {capability!r}")
        with self._active():
            return getattr(adapter, capability)(case, self._handle)
