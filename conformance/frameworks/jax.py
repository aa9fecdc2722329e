"""JAX as a framework plugin: its adapters are the components' jax_adapter modules, over
flax layers, `jax.nn` activations, optax losses and clipping.

float64 needs `jax_enable_x64`; it is switched on once, when the framework is first
asked for a device, and float32 runs stay float32 because every array is created with
an explicit dtype. Every adapter call runs under `jax.default_device`.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from conformance.framework import Framework

_PLATFORM = {"cpu": "cpu", "cuda": "gpu"}
MAPS_SHARE = 0.5  # of the kernel's limit on a process's memory mappings: drop compiled programs beyond


def release_compiled_programs(share: float = MAPS_SHARE) -> bool:
    """Drop JAX's compiled programs (`jax.clear_caches`) where this process holds more than
    `share` of the memory mappings the kernel allows it (vm.max_map_count, 65530 by default);
    True if it did. Every program XLA compiles for the CPU keeps memory mappings of its own
    until it is dropped, and a jit cache drops none: a dev-profile run draws a new shape per
    example, and its workers reached the limit after a few thousand programs (62,703 mappings,
    5.4 GB resident), where XLA's compiler dies of SIGSEGV (jax-ml/jax#27201). The ci profile's
    catalog stays far below (about 4,600). A process that has not imported jax, or a system
    without /proc, is left alone."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    try:
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
        with open("/proc/self/maps", "rb") as maps:
            mapped = sum(1 for _ in maps)
    except (OSError, ValueError):
        return False
    if mapped <= share * limit:
        return False
    jax.clear_caches()
    return True


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
