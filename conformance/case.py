"""A conformance case: everything one property needs, self-contained and replayable.

A case is a component name, its spec (a frozen dataclass that serializes to
JSON), float64 master parameters, the inputs (batch, targets, upstream
cotangents, tangent directions), the state (running statistics) and the mode.
Backends cast the masters to the dtype under test, so float32 and float64 runs
see the same numbers. `save` writes one `.npz` file holding the arrays and the
JSON metadata: that file is the reproducer a failure points to (conformance.replay
reads it back).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Case:
    component: str  # a component's name (conformance.registry)
    spec: Any  # the component's spec dataclass
    params: Arrays  # float64 masters, keyed by the reference's names
    inputs: Arrays  # "X", "targets", cotangents "dY", tangents "tangent/<name>", ...
    state: Arrays = field(default_factory=dict)  # running statistics, float64
    train: bool = True
    seed: int = 0  # the numpy seed the arrays were drawn from
    meta: dict[str, Any] = field(default_factory=dict)  # property-specific settings

    def with_dtype(self, dtype: str) -> Case:
        """The same case with the spec's dtype set (the masters stay float64)."""
        return replace(self, spec=replace(self.spec, dtype=dtype))

    def __repr__(self) -> str:
        """One line (hypothesis prints a failing example with it): the arrays are in `save`'s file."""
        return f"Case({self.describe()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The same line for hypothesis's pretty printer, which would list every field."""
        printer.text(repr(self))

    def describe(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.inputs.items())
        mode = "" if self.train else " eval"
        return f"{self.component} {self.spec.to_json()}{mode} seed={self.seed} inputs: {shapes}"

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write the case (and `extra` JSON metadata: property, framework, dtype) to `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "component": self.component,
            "spec": json.loads(self.spec.to_json()),
            "train": self.train,
            "seed": self.seed,
            "meta": self.meta,
            **extra,
        }
        arrays = {f"params/{k}": v for k, v in self.params.items()}
        arrays.update({f"inputs/{k}": v for k, v in self.inputs.items()})
        arrays.update({f"state/{k}": v for k, v in self.state.items()})
        with path.open("wb") as fh:
            arrays["__meta__"] = np.array(json.dumps(meta, sort_keys=True))
            savez: Callable[..., None] = np.savez  # typed with allow_pickle beside **arrays
            savez(fh, **arrays)
        return path
