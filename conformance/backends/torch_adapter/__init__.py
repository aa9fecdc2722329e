"""torch, through its own public layers (`nn.Linear`, `F.leaky_relu`, `F.cross_entropy`, ...).

One module per component registers its adapter in ADAPTERS; this backend
dispatches on case.component.
"""

from __future__ import annotations

import torch

from conformance.backends.base import Backend, Outcome, Unsupported
from conformance.backends.torch_adapter import mlp
from conformance.case import Arrays, Case

ADAPTERS = {"mlp": mlp}

CONVENTIONS: dict[str, object] = {
    "leaky_kink": "slope",  # aten leaky_relu_backward: x > 0 ? g : g * slope
}


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, device: str) -> None:
        self.device = device

    def version(self) -> str:
        return str(torch.__version__)

    def conventions(self) -> dict[str, object]:
        return dict(CONVENTIONS)

    def _adapter(self, case: Case):  # type: ignore[no-untyped-def]
        if case.component not in ADAPTERS:
            raise Unsupported(f"torch has no adapter for component {case.component!r}")
        return ADAPTERS[case.component]

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
