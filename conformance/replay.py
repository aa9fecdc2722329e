"""Reading a reproducer back and running its property again (`python -m conformance replay`).

A reproducer is the `.npz` file `Case.save` writes: the case's arrays under
"params/", "inputs/", "state/" and its JSON metadata (component, spec, mode, seed,
and the property, framework, dtype and device it failed under).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from conformance import registry
from conformance.case import Arrays, Case
from conformance.component import Property
from conformance.golden.property import GOLDEN_AGREEMENT

PREFIXES = ("params/", "inputs/", "state/")


def load_case(path: str | Path) -> tuple[Case, dict[str, Any]]:
    """Read a reproducer written by `Case.save`; returns the case and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"reproducer: expected an existing .npz file, received {str(path)!r}")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        groups: dict[str, Arrays] = {p: {} for p in PREFIXES}
        for key in data.files:
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    groups[prefix][key[len(prefix) :]] = data[key]
    names = registry.names()
    if meta.get("component") not in names:
        raise ValueError(f"reproducer component: expected one of {list(names)},"
                         f" received {meta.get('component')!r}")
    spec = registry.component(meta["component"]).spec_class.from_json(json.dumps(meta["spec"]))
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


def find_property(component: str, property_id: str) -> Property:
    """A property of the component's record, or golden-agreement (bound to every component)."""
    if property_id == GOLDEN_AGREEMENT.id:
        return GOLDEN_AGREEMENT
    return registry.component(component).property(property_id)
