"""Keras 3 on its JAX backend as a framework of backprop-conformance.

The suite finds this package through its entry point (pyproject.toml):

    [project.entry-points."conformance.frameworks"]
    keras = "conformance_keras:FRAMEWORK"

`FRAMEWORK` names the adapters this package brings (one module per component, each
through Keras's own layers, losses and optimizers, differentiated by JAX through
Keras's stateless API) and the known issues it ships (known_issues.toml). This module
imports neither keras nor jax, so the suite can list the framework, and report it as
a skip with the install hint, where keras is missing.

Keras picks its backend once, when it is first imported, from KERAS_BACKEND: this
module sets KERAS_BACKEND=jax when it is imported before keras (the suite imports it
first), and reports keras as unavailable, with the reason, if keras was already
imported with another backend.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from conformance.frameworks.jax import Jax, enable_float64
from refimpl.smooth import NAMES as ACTIVATIONS  # each has a component "mlp_<name>", the MLP's adapter

BACKEND = "jax"
if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = BACKEND


def backend_mismatch() -> str | None:
    """Why keras cannot run here on the JAX backend (imported earlier with another), or None."""
    import keras

    found = keras.backend.backend()
    if found != BACKEND:
        return (
            f"keras: runs on its {found!r} backend in this process (imported before the"
            f" conformance plugin, KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r});"
            f" the keras adapters need KERAS_BACKEND={BACKEND}"
        )
    return None


class Keras(Jax):
    """JAX's devices, float64 switch and device context (conformance.frameworks.jax), Keras's
    adapters, known issues and version."""

    name = "keras"
    requires = ("keras", "jax")
    install = "pip install -e ./plugins/keras"
    order = 30

    def adapters(self) -> Mapping[str, str]:
        return {
            "mlp": "conformance_keras.mlp",
            **{f"mlp_{a}": "conformance_keras.mlp" for a in ACTIVATIONS},
            "mlp_bn": "conformance_keras.mlp_bn",
            "clip": "conformance_keras.clip",
            "rnn": "conformance_keras.rnn",
            "rnn_truncated": "conformance_keras.rnn",
            "rnn_varlen": "conformance_keras.rnn_varlen",
        }

    def known_issues(self) -> tuple[Path, ...]:
        return (Path(__file__).with_name("known_issues.toml"),)

    def version(self) -> str:
        import jax
        import keras

        return f"{keras.__version__} (backend jax {jax.__version__})"

    def device_unavailable(self, device: str) -> str | None:
        return backend_mismatch() or super().device_unavailable(device)


FRAMEWORK = Keras()

__all__ = ["BACKEND", "FRAMEWORK", "Keras", "backend_mismatch", "enable_float64"]
