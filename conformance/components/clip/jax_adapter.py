"""Clipping in JAX: `optax.clip_by_global_norm(M)` and `optax.clip(v)`, through `update`.

The gradients are the `updates` pytree and the parameters its `params`, as an
optimizer chain passes them. optax's transformation does not return the norm:
the adapter reports `optax.tree.norm(updates)`, the function clip_by_global_norm
itself calls. Compiled per pytree structure, shapes and dtype (jit's cache), both
transformations at once; the threshold is a traced Python float, weakly typed as optax receives
it from user code, so float32 updates stay float32.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import numpy as np
import optax

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.clip.reference import ClipCaseSpec
from conformance.frameworks.jax import enable_float64
from conformance.frameworks.jax_paths import layout_of, on_path, stored, unstored
from conformance.frameworks.jax_paths import paths as paths

enable_float64()  # float64 cases need jax_enable_x64; float32 ones stay float32 (explicit dtypes)

CONVENTIONS: dict[str, object] = {
    "convention": "optax",  # g if n < M else (g / n) · M; no eps
    "norm_type": 2.0,  # clip_by_global_norm clips by the L2 norm only
    "error_if_nonfinite": False,  # optax has no error mode: non-finite norms go through arithmetic
}

TRANSFORMS: dict[str, Any] = {"global_norm": optax.clip_by_global_norm, "value": optax.clip}


@partial(jax.jit, static_argnums=0)
def _clip(layout: str, updates: Any, params: Any, threshold: Any) -> Any:
    """Both transformations in one compiled function: XLA's compile time, not the run, dominates.
    The updates come stored in `layout` (conformance.frameworks.jax_paths)."""
    updates = {k: unstored(v, layout) for k, v in updates.items()}
    clipped = {}
    for kind, transform in TRANSFORMS.items():
        tx = transform(threshold)
        clipped[kind], _ = tx.update(updates, tx.init(params), params)
    return clipped, optax.tree.norm(updates)


def layouts(case: Case, device: Any = None) -> tuple[str, ...]:
    """The updates stored contiguous, strided or transposed, taken out inside the program."""
    return ("contiguous", "strided", "transposed")


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    spec: ClipCaseSpec = case.spec
    if spec.convention != "optax" or spec.norm_type != 2.0 or spec.error_if_nonfinite:
        raise ValueError(
            "convention: optax implements convention 'optax', norm_type 2.0 and no error mode,"
            f" received {spec.convention!r}, {spec.norm_type}, {spec.error_if_nonfinite}"
        )
    layout = layout_of(case)
    # the caller's arrays on the device (jax.device_put: an eager jnp.asarray compiles a program per shape)
    updates = jax.device_put(cast_floats(case.inputs, spec.dtype))
    params = jax.device_put(cast_floats(case.params, spec.dtype))
    threshold = spec.max_norm if spec.kind == "global_norm" else spec.clip_value
    with on_path(case):
        both, norm = _clip(
            layout, {k: stored(np.asarray(v), layout) for k, v in updates.items()}, params, threshold
        )
    outputs = {f"clipped/{k}": np.asarray(v, np.float64) for k, v in both[spec.kind].items()}
    if spec.kind == "global_norm":
        outputs["norm"] = np.asarray(norm, np.float64)
    outputs["nonfinite_error"] = np.zeros(())
    for k in updates:  # the caller's arrays, read after the call
        outputs[f"unclipped/{k}"] = np.asarray(updates[k], np.float64)
        outputs[f"param/{k}"] = np.asarray(params[k], np.float64)
    return Outcome(outputs, {}, {})
