"""JAX's side of conformance.layouts and conformance.paths, shared by the JAX adapters: an
input handed to a compiled program in a layout, and the op-by-op path. Imported by adapters
only (it imports jax).

JAX arrays have no strides a user sets: a layout is built inside the program, where XLA
chooses how to lay out and fuse it. The program receives the stored array (`stored`) and
takes the input from it (`unstored`: a strided slice, a transpose), so the derivative
flows through that operation too, and `from_stored` reads the input's gradient back out
of the stored array's.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import jax
import numpy as np

from conformance.case import Case

BUILT_LAYOUTS = ("contiguous", "strided", "transposed")


def _check(layout: str) -> None:
    if layout not in BUILT_LAYOUTS:
        raise ValueError(
            f"meta['layout']: JAX builds {list(BUILT_LAYOUTS)} from an array, received {layout!r}"
        )


def layout_of(case: Case) -> str:
    layout = str(case.meta.get("layout", "contiguous"))
    _check(layout)
    return layout


def stored(x: np.ndarray, layout: str) -> np.ndarray:
    """What the program receives: x, x twice as wide along its last axis with x in the even
    positions ("strided"), or x with its axes reversed ("transposed"); a 0-d x as it is."""
    _check(layout)
    if layout == "strided" and x.ndim:
        return np.repeat(x, 2, axis=-1)
    if layout == "transposed":
        return np.ascontiguousarray(x.transpose())
    return x


def unstored(a: jax.Array, layout: str) -> jax.Array:
    """Inside the program: the input taken from the stored array."""
    if layout == "strided" and a.ndim:
        return a[..., ::2]
    if layout == "transposed":
        return a.transpose()
    return a


def from_stored(d: np.ndarray, layout: str) -> np.ndarray:
    """The input's gradient from the stored array's (the odd positions of "strided" are unused)."""
    if layout == "strided" and d.ndim:
        return np.ascontiguousarray(d[..., ::2])
    if layout == "transposed":
        return np.ascontiguousarray(d.transpose())
    return d


def path_of(case: Case) -> str | None:
    """case.meta["path"]: None (the default, jitted) or "eager"; anything else a ValueError."""
    path = case.meta.get("path")
    if path not in (None, "eager"):
        raise ValueError(
            f"meta['path']: JAX adapters offer 'eager' beside their jitted default, received {path!r}"
        )
    return None if path is None else str(path)


def on_path(case: Case) -> AbstractContextManager[None]:
    """The context the adapter computes in: `jax.disable_jit()` for the path "eager" (every
    jitted function then runs op by op), nothing for the default."""
    if path_of(case) == "eager":
        return jax.disable_jit()
    return contextlib.nullcontext()


def paths(case: Case, device: object = None) -> tuple[str, ...]:
    """The capability `paths` of every JAX adapter that computes under `on_path`."""
    return ("eager",)
