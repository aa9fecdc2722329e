"""Clipping in Keras: an optimizer's `global_clipnorm` and `clipvalue`, as a training step applies them.

Keras clips inside `Optimizer.apply` (`_clip_gradients`, keras/src/optimizers/
base_optimizer.py): `global_clipnorm=M` -> `clip_by_global_norm`, TensorFlow's formula
s = M · min(1/n, 1/M) + (n - n), g <- g · s; `clipvalue=v` -> `ops.clip(g, -v, v)`.
To read the clipped gradient exactly, the adapter builds `keras.optimizers.SGD(
learning_rate=1.0, ...)` over variables that are exactly 0 and takes one step through
the stateless API (`optimizer.stateless_apply`): θ' = 0 - 1 · clip(g), so clip(g) = -θ'
bit for bit. The optimizer does not return the norm: the adapter reports
`base_optimizer.global_norm(grads)`, the function `clip_by_global_norm` itself calls.
Compiled once per layout, dtype, kind and threshold (the threshold is a constructor
argument of the optimizer, so it is static).

Keras reads a threshold of 0 as "no clipping" (`if self.global_clipnorm and
self.global_clipnorm > 0`), and `clipnorm` (each variable clipped by its own norm,
tf.clip_by_norm: g · M / max(n, M)) has no kind in the clip component, whose properties
assume one coefficient for all tensors: plugins/keras/tests/test_clipnorm.py checks it
against refimpl.clip.clip_by_norm through the same step (kind "norm").
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jax
import keras
import numpy as np
from keras.src.optimizers import base_optimizer

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.clip.reference import ClipCaseSpec
from conformance_keras import enable_float64

enable_float64()

CONVENTIONS: dict[str, object] = {
    "convention": "tensorflow",  # global_clipnorm: M · min(1/n, 1/M) + (n - n), always multiplied
    "norm_type": 2.0,  # L2 only
    "error_if_nonfinite": False,  # no error mode: a non-finite norm makes every entry NaN
}

# kind -> the optimizer's argument; "norm" (each variable by its own norm) is Keras's clipnorm,
# which the clip component does not draw (plugins/keras/tests/test_clipnorm.py checks it)
OPTIONS = {"global_norm": "global_clipnorm", "value": "clipvalue", "norm": "clipnorm"}


@cache
def _step(layout: tuple[tuple[str, tuple[int, ...]], ...], dtype: str, kind: str, threshold: float) -> Any:
    """The compiled step: (gradients) -> (clipped gradients, global norm)."""
    names = [name for name, _ in layout]
    variables = [
        keras.Variable(np.zeros(shape, dtype), dtype=dtype, name=f"v{i}")
        for i, (_, shape) in enumerate(layout)
    ]
    optimizer = keras.optimizers.SGD(learning_rate=1.0, **{OPTIONS[kind]: threshold})
    optimizer.build(variables)
    zeros = jax.device_put([np.zeros(shape, dtype) for _, shape in layout])  # jnp.zeros: a program each
    state = [v.value for v in optimizer.variables]

    @jax.jit
    def step(grads: dict[str, Any]) -> Any:
        ordered = [grads[n] for n in names]
        updated, _ = optimizer.stateless_apply(state, ordered, zeros)
        return {n: -u for n, u in zip(names, updated, strict=True)}, base_optimizer.global_norm(ordered)

    return step


def clipped(grads: Arrays, kind: str, threshold: float) -> tuple[Arrays, float]:
    """(the gradients as one SGD step with lr 1 clips them, their global norm), in their dtype."""
    dtype = str(next(iter(grads.values())).dtype)
    layout = tuple((k, tuple(v.shape)) for k, v in grads.items())
    result, norm = _step(layout, dtype, kind, threshold)(jax.device_put(grads))
    return {k: np.asarray(v, np.float64) for k, v in result.items()}, float(norm)


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    spec: ClipCaseSpec = case.spec
    if spec.convention != "tensorflow" or spec.norm_type != 2.0 or spec.error_if_nonfinite:
        raise ValueError(
            "convention: keras implements convention 'tensorflow', norm_type 2.0 and no error mode,"
            f" received {spec.convention!r}, {spec.norm_type}, {spec.error_if_nonfinite}"
        )
    grads = cast_floats(case.inputs, spec.dtype)
    result, norm = clipped(grads, spec.kind, spec.threshold)
    outputs = {f"clipped/{k}": v for k, v in result.items()}
    if spec.kind == "global_norm":
        outputs["norm"] = np.asarray(norm, np.float64)
    outputs["nonfinite_error"] = np.zeros(())
    outputs.update({f"unclipped/{k}": np.asarray(v, np.float64) for k, v in grads.items()})
    return Outcome(outputs, {}, {})
