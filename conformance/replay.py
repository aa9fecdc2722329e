"""Reading a reproducer back and running its property again (`python -m conformance replay`).

A reproducer is the `.npz` file `Case.save` writes: the case's arrays under
"params/", "inputs/", "state/" and its JSON metadata (component, spec, mode, seed,
and the property, framework, dtype and device it failed under). A file that is not
one (missing, truncated, text, another program's archive) is a ValueError naming the
file and what it lacks. Replaying writes nothing.
"""

from __future__ import annotations

import json
import sys
import traceback
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from conformance import frameworks, registry
from conformance.backend import Unsupported
from conformance.case import Arrays, Case
from conformance.compare import ConformanceFailure
from conformance.component import NotApplicable, Property
from conformance.config import Run, RunConfig
from conformance.golden.property import GOLDEN_AGREEMENT
from conformance.runner import arbitrate, run_property

PREFIXES = ("params/", "inputs/", "state/")
META = ("component", "spec", "train", "seed", "property")


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Arrays]]:
    expected = "expected a reproducer written by the suite (an .npz archive)"
    if not path.is_file():
        raise ValueError(f"{path}: {expected}, no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: {expected}, which it is not (not a zip archive, or a truncated one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                raise ValueError(
                    f"{path}: {expected}; this archive has no __meta__ entry"
                    f" (it holds {sorted(data.files)[:6]})"
                )
            meta = json.loads(str(data["__meta__"]))
            groups: dict[str, Arrays] = {p: {} for p in PREFIXES}
            for key in data.files:
                for prefix in PREFIXES:
                    if key.startswith(prefix):
                        groups[prefix][key[len(prefix) :]] = data[key]
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} __meta__: expected JSON, received something else ({err})") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, ValueError) as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {expected}, which it is not ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or any(k not in meta for k in META):
        raise ValueError(f"{path} __meta__: expected the fields {list(META)}, received {meta!r:.200}")
    return meta, groups


def load_case(path: str | Path) -> tuple[Case, dict[str, Any]]:
    """Read a reproducer written by `Case.save`; returns the case and its metadata."""
    path = Path(path)
    meta, groups = _read(path)
    names = registry.names()
    if meta["component"] not in names:
        raise ValueError(f"{path} component: expected one of {list(names)}, received {meta['component']!r}")
    try:
        spec = registry.component(meta["component"]).spec_class.from_json(json.dumps(meta["spec"]))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} spec: {err}") from None
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


def replay(path: str, framework: str | None, dtype: str | None, device: str | None) -> int:
    """Run a reproducer's property again: 0 it passes, 1 the failure reproduced, 2 it cannot run."""
    try:
        case, meta = load_case(path)
        framework = framework or str(meta.get("framework", frameworks.REFERENCE.name))
        frameworks.check_name(framework)
        prop = find_property(case.component, str(meta["property"]))
    except (ValueError, Unsupported) as err:
        print(f"replay: {err}", file=sys.stderr)
        return 2
    dtype = dtype or str(meta.get("dtype", "float64"))
    device = device or str(meta.get("device", "cpu"))
    print(f"replaying {prop.id} on {framework} {dtype} {device}: {case.describe()}")
    run = Run(RunConfig(device=device, reproducer_dir=None))  # no reproducer folder: no new copy
    try:
        run_property(prop, case, framework, dtype, run)
    except ConformanceFailure as failure:
        print(arbitrate(prop, failure, run))  # "rounding" or "disagreement" first, as in the test
        return 1
    except (NotApplicable, Unsupported) as err:
        print(f"replay: {path} cannot run here: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the row was an error (the check raised): so it is again
        where = traceback.extract_tb(err.__traceback__)[-1]
        print(f"the check raised {type(err).__name__}: {err} (at {where.filename}:{where.lineno})")
        return 1
    print("passed: the implementations agree on this case")
    return 0
