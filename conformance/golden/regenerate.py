"""Regenerating the golden set: draw every case again, compare with the stored set, write.

`command` is `python -m conformance golden`: drawn data (spec, parameters, inputs,
cotangents) must be identical bit for bit, reference values must pass the checks of
storage.reproduce_allowed and the tolerance table. New components and new cases are
written by --write; changed or removed values only with --write --force.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from conformance import frameworks, registry
from conformance.backend import Unsupported
from conformance.case import Arrays, Case
from conformance.golden.storage import (
    DEFAULT,
    DTYPES,
    FORMAT_VERSION,
    MANIFEST,
    SEEDS,
    GoldenDataError,
    _prefixed,
    changed_fields,
    golden_dir,
    read_component,
    read_manifest,
    reproduce_allowed,
    variant_label,
    worst,
    write_component,
)
from conformance.tolerances import allowed_error, sampled_bound


def _framework_conventions(name: str) -> dict[str, dict[str, Any]]:
    """Framework -> the spec fields its adapter fixes, for the frameworks installed here."""
    found: dict[str, dict[str, Any]] = {}
    for framework in frameworks.names():
        if frameworks.skip_reason(framework) is None:
            try:
                found[framework] = frameworks.backend(framework).conventions(name)
            except Unsupported:  # no adapter for this component
                continue
    return found


def _cotangent_sets(case: Case, outputs: Arrays) -> dict[str, Arrays]:
    comp = registry.component(case.component)
    if "Y" in outputs and "dY" in case.inputs:
        upstream = {"Y": case.inputs["dY"]}
    else:
        rng = np.random.default_rng([case.seed, 0x601D])
        upstream = {k: rng.standard_normal(outputs[k].shape) for k in comp.outputs if k in outputs}
    sets = {"upstream": upstream}
    if "loss" in outputs:
        sets["loss"] = {"loss": np.ones(())}
    return {s: cot for s, cot in sets.items() if cot}


def generate_case(
    name: str, seed: int, stored: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], Arrays]:
    """One golden case: its manifest entry and its arrays (keys relative to the case).

    Its variants: "default", every variant stored before (`stored`, label -> fields: the
    reference recomputes them whether or not the framework that asked for one is
    installed here) and those of the frameworks installed here."""
    comp = registry.component(name)
    case = comp.golden_case(seed)
    variants: dict[str, dict[str, Any]] = {DEFAULT: {}, **(stored or {})}
    for conventions in _framework_conventions(name).values():
        # the fields the conventions change in effect (a spec may ignore one: refimpl.mlp.MLPSpec
        # keeps the fields of activations it does not use at their defaults)
        spec = replace(case.spec, **{k: v for k, v in conventions.items() if hasattr(case.spec, k)})
        fixed = changed_fields(spec, case.spec)
        variants[variant_label(fixed)] = fixed
    variants = dict(sorted(variants.items()))
    arrays = {
        **_prefixed("params/", case.params),
        **_prefixed("inputs/", case.inputs),
        **_prefixed("state/", case.state),
    }
    sets = _cotangent_sets(case, comp.reference(case.with_dtype("float64"), None).outputs)
    kept: list[str] = []
    for label, fixed in variants.items():
        spec = replace(case.spec, **fixed)
        for dtype in DTYPES:
            run = replace(case, spec=replace(spec, dtype=dtype))
            plain = comp.reference(run, None)
            at = f"reference/{label}/{dtype}/"
            arrays.update(_prefixed(at + "outputs/", plain.outputs))
            arrays.update(_prefixed(at + "state/", plain.state))
            for s, cot in sets.items():
                grads = comp.reference(run, cot).grads
                if grads:
                    arrays.update(_prefixed(f"{at}grads/{s}/", grads))
                    kept += [s] if s not in kept else []
    for s in kept:
        arrays.update(_prefixed(f"cotangents/{s}/", sets[s]))
    entry = {
        "id": f"seed{seed}",
        "seed": seed,
        "spec": json.loads(case.spec.to_json()),
        "train": case.train,
        "meta": case.meta,
        "cotangents": kept,
        "variants": {k: {f: _jsonable(v) for f, v in fx.items()} for k, fx in variants.items()},
    }
    return entry, arrays


def _jsonable(value: Any) -> Any:
    """The value if JSON holds it exactly (the manifest is for reading), else its repr."""
    try:
        return value if json.loads(json.dumps(value, allow_nan=False)) == value else repr(value)
    except (TypeError, ValueError):
        return repr(value)


def stored_variants(name: str, directory: Path | None = None) -> dict[int, dict[str, dict[str, Any]]]:
    """seed -> the variants stored for that case of the component (none if nothing is stored)."""
    entry = read_manifest(directory)["components"].get(name, {"cases": []})
    return {int(c["seed"]): c["variants"] for c in entry["cases"]}


def generate(
    name: str,
    seeds: tuple[int, ...] | None = None,
    variants: dict[int, dict[str, dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], Arrays]:
    """A component's manifest entry and arrays (keys "<case>/..."), for `seeds` (default SEEDS),
    each case with its `variants` (seed -> stored variants; default: those of the golden set)."""
    variants = stored_variants(name) if variants is None else variants
    cases, arrays = [], {}
    for seed in SEEDS if seeds is None else seeds:
        entry, case_arrays = generate_case(name, seed, variants.get(seed))
        cases.append(entry)
        arrays.update(_prefixed(f"{entry['id']}/", case_arrays))
    versions = {p: _version(p) for p in ("backprop-conformance", "numpy")}
    return {"file": f"{name}.npz", "generated_by": versions, "cases": cases}, arrays


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Changes:
    added: list[str]
    removed: list[str]
    changed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self, limit: int = 3) -> str:
        return "; ".join(
            f"{len(items)} {title}: {items[:limit]}"
            for title, items in (("added", self.added), ("removed", self.removed), ("changed", self.changed))
            if items
        )


_REFERENCE = re.compile(
    r"^(?P<at>.*reference/[^/]+/)(?P<dtype>float32|float64)/(?P<what>outputs|state|grads)/"
)


def _value_change(key: str, old: np.ndarray, new: np.ndarray, stored: Arrays) -> str | None:
    """Why `new` does not reproduce the stored `old`, or None (the test's own criterion)."""
    m = _REFERENCE.match(key)
    if old.shape != new.shape or old.dtype != new.dtype:
        return f"{key}: {old.dtype}{list(old.shape)} -> {new.dtype}{list(new.shape)}"
    if m is None:  # spec data (parameters, inputs, cotangents) is drawn exactly: bit for bit
        same = np.array_equal(old, new, equal_nan=old.dtype.kind in "fc")
        return None if same else f"{key}: the drawn values differ"
    rest = key[m.end() :]
    r64 = stored[f"{m['at']}float64/{m['what']}/{rest}"]
    r32 = stored[f"{m['at']}float32/{m['what']}/{rest}"]
    if m["dtype"] == "float64":
        allowed = reproduce_allowed(r64, r32)
    else:
        bound = allowed_error("float32", sampled_bound("float32", r64, [r32])).total
        allowed = float(bound.reshape(-1)[0]) if r64.size else 0.0
    ratio, index = worst(new, r64, allowed)
    if ratio <= 1.0:
        return None
    return (
        f"{key}{list(index)}: stored {float(old[index])!r}, now {float(new[index])!r}"
        f" ({ratio:.3g} tolerances)"
    )


def compare(old: tuple[dict[str, Any], Arrays], new: tuple[dict[str, Any], Arrays]) -> Changes:
    """What regenerating a component would add, remove and change."""
    (old_entry, old_arrays), (new_entry, new_arrays) = old, new
    changes = Changes([], [], [])
    old_cases = {c["id"]: c for c in old_entry["cases"]}
    new_cases = {c["id"]: c for c in new_entry["cases"]}
    changes.added += [f"case {i}" for i in new_cases if i not in old_cases]
    changes.removed += [f"case {i}" for i in old_cases if i not in new_cases]
    for i in set(old_cases) & set(new_cases):
        for field, value in new_cases[i].items():
            if field == "variants":  # a variant is added or removed; a changed one is a change
                old_variants = old_cases[i].get(field, {})
                changes.added += [f"{i} variant {v}" for v in value if v not in old_variants]
                changes.removed += [f"{i} variant {v}" for v in old_variants if v not in value]
                changes.changed += [
                    f"{i} variant {v}: {old_variants[v]!r} -> {value[v]!r}"
                    for v in value
                    if v in old_variants and old_variants[v] != value[v]
                ]
            elif old_cases[i].get(field) != value:
                changes.changed.append(f"{i} {field}: {old_cases[i].get(field)!r} -> {value!r}")
        prefix = f"{i}/"
        for key in sorted(k for k in new_arrays.keys() - old_arrays.keys() if k.startswith(prefix)):
            changes.added.append(key)
        for key in sorted(k for k in old_arrays.keys() - new_arrays.keys() if k.startswith(prefix)):
            changes.removed.append(key)
        for key in sorted(k for k in old_arrays.keys() & new_arrays.keys() if k.startswith(prefix)):
            why = _value_change(key, old_arrays[key], new_arrays[key], old_arrays)
            changes.changed += [why] if why else []
    return changes


def _show(title: str, items: list[str], limit: int = 20) -> None:
    if items:
        print(f"    {len(items)} {title}:")
        for line in items[:limit]:
            print(f"      {line}")
        if len(items) > limit:
            print(f"      ... and {len(items) - limit} more")


def command(*, write: bool, force: bool, only: list[str] | None = None, directory: Path | None = None) -> int:
    """`python -m conformance golden`: regenerate, compare with the stored set, write if allowed.

    0: up to date (or written); 1: differences found without --write, changed or
    removed values refused without --force, or a component failed to generate.
    """
    directory = directory or golden_dir()
    try:
        manifest = read_manifest(directory)
    except GoldenDataError:
        if not (write and force):
            raise
        print(f"  the stored data has another format_version: replaced by format {FORMAT_VERSION} (--force)")
        (directory / MANIFEST).unlink()
        manifest = read_manifest(directory)
    stored = manifest["components"]
    wanted = list(only or registry.names())
    unknown = [n for n in wanted if n not in registry.names()]
    if unknown:
        raise ValueError(f"components: expected names among {list(registry.names())}, received {unknown}")
    print(f"golden data: {directory} (format {FORMAT_VERSION}, seeds {list(SEEDS)})")
    for framework in frameworks.names():
        if frameworks.skip_reason(framework) is not None:
            print(f"  note: {framework} is not installed here: its convention variants cannot be made")
    status, writes, refused = 0, [], []
    for name in [n for n in stored if n not in registry.names()] if only is None else []:
        print(f"  {name}: stored, but no such component any more")
        refused.append(name)
    for name in wanted:
        try:
            entry, arrays = generate(name, variants=stored_variants(name, directory))
        except Exception as err:  # a component under construction must not stop the others
            print(f"  {name}: cannot generate: {type(err).__name__}: {err}")
            status = 1
            continue
        if name not in stored:
            print(f"  {name}: new, {len(entry['cases'])} cases, {len(arrays)} arrays")
            writes.append((name, entry, arrays))
            continue
        old = read_component(name, directory)
        changes = compare(old, (entry, arrays))
        if not changes:
            print(f"  {name}: up to date, {len(entry['cases'])} cases")
            continue
        print(f"  {name}: differs from the stored set")
        _show("added", changes.added)
        _show("removed", changes.removed)
        _show("CHANGED", changes.changed)
        if changes.changed or changes.removed:
            refused.append(name)
        if not (changes.changed or changes.removed) or force:
            kept = {k: old[1][k] for k in old[1] if k in arrays} if not force else {}
            writes.append((name, entry, {**arrays, **kept}))
    if not write:
        return 1 if (writes or refused or status) else 0
    if refused and not force:
        print(
            f"refused: stored values of {refused} would change; nothing written."
            " Rerun with --force to overwrite them (and say why in the commit)."
        )
        return 1
    for name in [n for n in refused if n not in registry.names()]:
        (directory / stored[name]["file"]).unlink(missing_ok=True)
        manifest["components"].pop(name)
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    for name, entry, arrays in writes:
        print(f"wrote {write_component(name, entry, arrays, directory)}")
    return status
