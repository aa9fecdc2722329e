"""Backends: the NumPy reference, torch and JAX, behind one contract (see base.py).

`get_backend(name, device)` imports a framework only when asked, so a missing
framework becomes a skip reason (`skip_reason`) instead of an import error.
"""

from __future__ import annotations

import importlib
from functools import cache

from conformance.backends.base import Backend, Outcome, Unsupported

FRAMEWORKS = ("numpy", "torch", "jax")
DEVICES = ("cpu", "cuda")

_MODULES = {
    "numpy": "conformance.backends.reference",
    "torch": "conformance.backends.torch_adapter",
    "jax": "conformance.backends.jax_adapter",
}
_REQUIRES = {"numpy": ("numpy",), "torch": ("torch",), "jax": ("jax", "flax", "optax")}


def check_name(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework: expected one of {list(FRAMEWORKS)}, received {framework!r}")


@cache
def skip_reason(framework: str, device: str = "cpu") -> str | None:
    """Why this framework cannot run here (not installed, no such device), or None."""
    check_name(framework)
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {list(DEVICES)}, received {device!r}")
    for module in _REQUIRES[framework]:
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"{framework} is not installed ({module}: {err}); pip install '.[{framework}]'"
    backend_module = importlib.import_module(_MODULES[framework])
    reason: str | None = backend_module.device_unavailable(device)
    return reason


@cache
def get_backend(framework: str, device: str = "cpu") -> Backend:
    reason = skip_reason(framework, device)
    if reason is not None:
        raise Unsupported(reason)
    backend: Backend = importlib.import_module(_MODULES[framework]).make_backend(device)
    return backend


__all__ = ["FRAMEWORKS", "Backend", "Outcome", "Unsupported", "get_backend", "skip_reason"]
