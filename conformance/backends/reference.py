"""The NumPy reference as a backend: refimpl, through each component's reference runner."""

from __future__ import annotations

import numpy as np

from conformance.backends.base import Backend, Outcome
from conformance.case import Arrays, Case


class ReferenceBackend(Backend):
    name = "numpy"

    def __init__(self, device: str) -> None:
        self.device = device

    def version(self) -> str:
        return str(np.__version__)

    def run(self, case: Case, cotangents: Arrays | None = None) -> Outcome:
        from conformance.components import component

        return component(case.component).reference(case, cotangents)


def device_unavailable(device: str) -> str | None:
    return None if device == "cpu" else "the NumPy reference runs on the CPU only"


def make_backend(device: str) -> Backend:
    return ReferenceBackend(device)
