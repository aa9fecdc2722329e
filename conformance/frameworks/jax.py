"""JAX as a framework plugin: its adapters are the components' jax_adapter modules, over
flax layers, `jax.nn` activations, optax losses and clipping.

float64 needs `jax_enable_x64`; it is switched on once, when the framework is first
asked for a device, and float32 runs stay float32 because every array is created with
an explicit dtype. Every adapter call runs under `jax.default_device`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from conformance.framework import Framework

_PLATFORM = {"cpu": "cpu", "cuda": "gpu"}


def enable_float64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


class Jax(Framework):
    name = "jax"
    requires = ("jax", "flax", "optax")
    install = "pip install '.[jax]'"
    order = 20

    def version(self) -> str:
        import flax
        import jax
        import optax

        return f"{jax.__version__} (flax {flax.__version__}, optax {optax.__version__})"

    def device_unavailable(self, device: str) -> str | None:
        import jax

        try:
            jax.devices(_PLATFORM.get(device, device))
        except RuntimeError:
            return f"jax: no {device} device is available"
        return None

    def device(self, device: str) -> Any:
        import jax

        enable_float64()
        return jax.devices(_PLATFORM[device])[0]

    def activate(self, device: str) -> AbstractContextManager[None]:
        import jax

        result: AbstractContextManager[None] = jax.default_device(self.device(device))
        return result


FRAMEWORK = Jax()
