"""JAX, through flax layers, `jax.nn` activations and optax losses.

float64 needs `jax_enable_x64`; it is switched on here, once, and float32 runs
stay float32 because every array is created with an explicit dtype.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import jax

jax.config.update("jax_enable_x64", True)

from conformance.backends.base import Backend, Outcome, Unsupported  # noqa: E402
from conformance.case import Arrays, Case  # noqa: E402

_PLATFORM = {"cpu": "cpu", "cuda": "gpu"}


def adapter(component: str) -> ModuleType:
    """conformance.backends.jax_adapter.<component>: run, jvp (optional) and CONVENTIONS."""
    name = f"conformance.backends.jax_adapter.{component}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        raise Unsupported(f"jax has no adapter for component {component!r}") from err


class JaxBackend(Backend):
    name = "jax"

    def __init__(self, device: str) -> None:
        self.device = device
        self.jax_device = jax.devices(_PLATFORM[device])[0]

    def version(self) -> str:
        import flax
        import optax

        return f"{jax.__version__} (flax {flax.__version__}, optax {optax.__version__})"

    def conventions(self, component: str) -> dict[str, object]:
        return dict(adapter(component).CONVENTIONS)

    def _adapter(self, case: Case) -> ModuleType:
        return adapter(case.component)

    def run(self, case: Case, cotangents: Arrays | None = None) -> Outcome:
        with jax.default_device(self.jax_device):
            result: Outcome = self._adapter(case).run(case, cotangents)
        return result

    def jvp(self, case: Case, tangents: Arrays) -> Arrays:
        with jax.default_device(self.jax_device):
            result: Arrays = self._adapter(case).jvp(case, tangents)
        return result


def device_unavailable(device: str) -> str | None:
    try:
        jax.devices(_PLATFORM.get(device, device))
    except RuntimeError:
        return f"jax: no {device} device is available"
    return None


def make_backend(device: str) -> Backend:
    return JaxBackend(device)
