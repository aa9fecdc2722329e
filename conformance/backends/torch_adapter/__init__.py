"""torch, through its own public layers (`nn.Linear`, `F.leaky_relu`, `F.cross_entropy`, ...).

One module per component, named like the component (mlp.py for "mlp"),
defines run, jvp (optional) and CONVENTIONS; this backend dispatches on
case.component.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from conformance.backends.base import Backend, Outcome, Unsupported
from conformance.case import Arrays, Case


def adapter(component: str) -> ModuleType:
    """conformance.backends.torch_adapter.<component>: run, jvp (optional) and CONVENTIONS."""
    name = f"conformance.backends.torch_adapter.{component}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise Unsupported(f"torch has no adapter for component {component!r}") from err


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, device: str) -> None:
        self.device = device

    def version(self) -> str:
        return str(torch.__version__)

    def conventions(self, component: str) -> dict[str, object]:
        return dict(adapter(component).CONVENTIONS)

    def _adapter(self, case: Case) -> ModuleType:
        return adapter(case.component)

    def run(self, case: Case, cotangents: Arrays | None = None) -> Outcome:
        return self._adapter(case).run(case, cotangents, torch.device(self.device))

    def jvp(self, case: Case, tangents: Arrays) -> Arrays:
        result: Arrays = self._adapter(case).jvp(case, tangents, torch.device(self.device))
        return result


def device_unavailable(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_available():
        return "torch: no CUDA device is available"
    return None


def make_backend(device: str) -> Backend:
    return TorchBackend(device)
