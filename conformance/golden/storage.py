"""The golden set on disk: the manifest, one .npz per component, and its cases (see the package)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from conformance.case import Arrays, Case
from conformance.tolerances import EPS

FORMAT_VERSION = 1
SEEDS = (0, 1, 2)  # per component; adding seeds adds cases, changing them needs --force
DTYPES = ("float32", "float64")
DEFAULT = "default"
DIR_ENV = "CONFORMANCE_GOLDEN_DIR"
DEFAULT_DIR = Path(__file__).parent
MANIFEST = "manifest.json"
REPRODUCE_FACTOR = 4.0
REPRODUCE_FLOOR = 8.0
KIND = {"outputs": "forward", "grads": "gradient", "state": "state"}


class GoldenDataError(ValueError):
    """The stored golden data is missing, of another format, or lacks what a check needs."""


def golden_dir() -> Path:
    return Path(os.environ.get(DIR_ENV, DEFAULT_DIR))


def variant_label(fixed: dict[str, Any]) -> str:
    """ "default" or "field=value,...": the spec fields a convention changes, as a key-safe name."""
    text = ",".join(f"{k}={v}" for k, v in sorted(fixed.items()))
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", text) or DEFAULT


def changed_fields(spec: Any, base: Any) -> dict[str, Any]:
    return {
        f.name: getattr(spec, f.name)
        for f in fields(spec)
        if f.name != "dtype" and getattr(spec, f.name) != getattr(base, f.name)
    }


def _prefixed(prefix: str, arrays: Arrays) -> Arrays:
    return {f"{prefix}{k}": np.asarray(v) for k, v in arrays.items()}


def _group(arrays: Arrays, prefix: str) -> Arrays:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def read_manifest(directory: Path | None = None) -> dict[str, Any]:
    path = (directory or golden_dir()) / MANIFEST
    if not path.is_file():
        return {"format_version": FORMAT_VERSION, "components": {}}
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise GoldenDataError(
            f"golden format_version: expected {FORMAT_VERSION}, received"
            f" {manifest.get('format_version')!r} in {path}; regenerate with"
            " python -m conformance golden --write --force"
        )
    return manifest


@cache
def _read_arrays(path: str, stamp: tuple[int, int]) -> Arrays:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_component(name: str, directory: Path | None = None) -> tuple[dict[str, Any], Arrays]:
    """The stored manifest entry and arrays of one component (GoldenDataError when absent)."""
    directory = directory or golden_dir()
    entry = read_manifest(directory)["components"].get(name)
    if entry is None:
        raise GoldenDataError(
            f"golden component: no stored data for {name!r} in {directory};"
            " run python -m conformance golden --write"
        )
    path = directory / entry["file"]
    stat = path.stat()
    return entry, _read_arrays(str(path), (stat.st_mtime_ns, stat.st_size))


def write_component(name: str, entry: dict[str, Any], arrays: Arrays, directory: Path | None = None) -> Path:
    """Write <name>.npz and the component's manifest entry (other components kept)."""
    directory = directory or golden_dir()
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory)
    path = directory / str(entry["file"])
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".npz", delete=False) as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # keys hold "/", never a keyword
    os.replace(fh.name, path)
    path.chmod(0o644)  # a temporary file is private; the data is not
    _read_arrays.cache_clear()
    manifest["components"][name] = entry
    manifest["components"] = dict(sorted(manifest["components"].items()))
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def cases(name: str, spec_class: type[Any], directory: Path | None = None) -> list[Case]:
    """The stored golden cases of a component, as the property suite's Case objects."""
    entry, arrays = read_component(name, directory)
    return [
        Case(
            name,
            spec_class.from_json(json.dumps(c["spec"])),
            _group(arrays, f"{c['id']}/params/"),
            _group(arrays, f"{c['id']}/inputs/"),
            _group(arrays, f"{c['id']}/state/"),
            bool(c["train"]),
            int(c["seed"]),
            dict(c["meta"]),
        )
        for c in entry["cases"]
    ]


def reproduce_allowed(r64: np.ndarray, r32: np.ndarray) -> float:
    """How far the float64 reference may move from its stored value (module docstring)."""
    r64, r32 = np.asarray(r64, np.float64), np.asarray(r32, np.float64)
    if not r64.size:
        return 0.0
    finite = np.isfinite(r64) & np.isfinite(r32)
    e32 = float(np.max(np.abs(r32 - r64)[finite], initial=0.0))
    scale = float(np.max(np.abs(r64)[finite], initial=0.0))
    eps = EPS["float64"]
    bound = REPRODUCE_FACTOR * eps / EPS["float32"] * e32 + REPRODUCE_FLOOR * eps * scale
    return max(bound, float(np.finfo(np.float64).tiny))


def worst(actual: np.ndarray, expected: np.ndarray, allowed: float) -> tuple[float, tuple[int, ...]]:
    """The largest |a - e| / allowed and where; NaN/inf count only where both sides differ."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        return float("inf"), ()
    if not a.size:
        return 0.0, ()
    same = (np.isnan(a) & np.isnan(e)) | (a == e)
    with np.errstate(invalid="ignore", over="ignore"):
        ratio = np.where(same, 0.0, np.abs(a - e) / allowed)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    flat = int(np.argmax(ratio))
    return float(ratio.reshape(-1)[flat]), tuple(int(i) for i in np.unravel_index(flat, a.shape))
