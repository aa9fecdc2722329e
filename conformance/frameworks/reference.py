"""The NumPy reference as a framework: refimpl, through each component's reference runner."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from conformance import registry
from conformance.backend import Backend, Outcome
from conformance.case import Arrays, Case
from conformance.framework import Framework


class ReferenceBackend(Backend):
    name = "numpy"

    def __init__(self, device: str) -> None:
        self.device = device

    def version(self) -> str:
        return str(np.__version__)

    def run(self, case: Case, cotangents: Arrays | None = None) -> Outcome:
        return registry.component(case.component).reference(case, cotangents)


class Reference(Framework):
    name = "numpy"
    requires = ("numpy",)
    install = "pip install numpy"
    order = 0

    def version(self) -> str:
        return str(np.__version__)

    def device_unavailable(self, device: str) -> str | None:
        return None if device == "cpu" else "the NumPy reference runs on the CPU only"

    def backend(self, device: str, adapter_of: Callable[[str, str], str | None]) -> Backend:
        return ReferenceBackend(device)


REFERENCE = Reference()
