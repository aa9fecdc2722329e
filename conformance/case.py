"""A conformance case: everything one property needs, self-contained and replayable.

A case is a component name, its spec (a frozen dataclass that serializes to
JSON), float64 master parameters, the inputs (batch, targets, upstream
cotangents, tangent directions), the state (running statistics) and the mode.
Backends cast the masters to the dtype under test, so float32 and float64 runs
see the same numbers. `save`/`load` write one `.npz` file holding the arrays and
the JSON metadata: that file is the reproducer a failure points to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]

_PREFIXES = ("params/", "inputs/", "state/")


def spec_classes() -> dict[str, Any]:
    """Component name -> spec class, for loading reproducers."""
    from conformance.components import all_components

    return {name: comp.spec_class for name, comp in all_components().items()}


@dataclass(frozen=True)
class Case:
    component: str  # a module of conformance.components
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

    def describe(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.inputs.items())
        return f"{self.component} {self.spec.to_json()} seed={self.seed} inputs: {shapes}"

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
            np.savez(fh, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        return path


def load_case(path: str | Path) -> tuple[Case, dict[str, Any]]:
    """Read a reproducer written by `Case.save`; returns the case and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"reproducer: expected an existing .npz file, received {str(path)!r}")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        groups: dict[str, Arrays] = {p: {} for p in _PREFIXES}
        for key in data.files:
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    groups[prefix][key[len(prefix) :]] = data[key]
    classes = spec_classes()
    if meta.get("component") not in classes:
        raise ValueError(
            f"reproducer component: expected one of {sorted(classes)},"
            f" received {meta.get('component')!r}"
        )
    spec = classes[meta["component"]].from_json(json.dumps(meta["spec"]))
    case = Case(
        component=meta["component"],
        spec=spec,
        params=groups["params/"],
        inputs=groups["inputs/"],
        state=groups["state/"],
        train=bool(meta["train"]),
        seed=int(meta["seed"]),
        meta=dict(meta.get("meta", {})),
    )
    return case, meta
