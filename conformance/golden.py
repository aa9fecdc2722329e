"""Golden cases: a fixed, versioned set of cases per component and the reference's answers to them.

The property suite draws fresh cases and compares implementations with each
other; the golden set pins the numbers down over time. For every component
discovered by `conformance.components` and every seed in SEEDS, the
component's `golden_case(seed)` is stored with the reference's outputs, state
and gradients, in float64 and float32, in `conformance/golden/`:

    manifest.json     format version; per component: the package and NumPy versions that
                      generated it, and per case its spec, mode, seed, metadata, variants
    <component>.npz   the arrays, under "<case>/params/<k>", "<case>/inputs/<k>",
                      "<case>/state/<k>", "<case>/cotangents/<set>/<output>" and
                      "<case>/reference/<variant>/<dtype>/{outputs,state}/<k>",
                      "<case>/reference/<variant>/<dtype>/grads/<set>/<k>"

Cotangent sets: "upstream" = {"Y": dY} where the case carries dY (else a
random cotangent on each declared output, drawn from the case's seed), and
"loss" = {"loss": 1} where the component has a loss; a set for which the
reference returns no gradient (nothing is differentiated) is not stored.

Conventions. Each framework's adapter fixes some spec fields (CONVENTIONS; see
checks.under_conventions), so the reference is compared with a framework under
that framework's convention. The golden set stores the reference's answers per
convention *variant*: "default" (the golden spec as drawn) and one variant per
distinct set of fields that some framework changes, labelled by those fields
("leaky_kink=one"); the manifest records which framework uses which variant.
The property "golden-agreement" recomputes the variant label from the spec it
is given (the golden spec under the framework's conventions) and compares with
that variant's stored values, so every variant is checked against stored data,
never against a fresh recomputation. Variants are generated for the frameworks
installed when `python -m conformance golden --write` runs.

Tolerances. A framework (and the reference's own float32 run, the numpy
float32 row) is held to the suite's table (conformance.tolerances), with the
stored float32 reference as its error estimate e32. The reference in float64
(the numpy float64 row) must reproduce its stored values far more tightly: the same
code on the same numbers differs only by BLAS kernels and summation order, i.e.
by about the float64 rounding estimate e32 · ε64/ε32; REPRODUCE_FACTOR times
that, plus REPRODUCE_FLOOR ulps of the tensor's largest entry, is allowed. A
change of one part in 10⁹ to any stored entry above ~10⁻⁶ of its tensor's
largest fails (tests/test_golden.py changes one and watches it fail).

Regeneration (`command`, `python -m conformance golden`) draws every case
again and compares: drawn data (spec, parameters, inputs, cotangents) must be
identical bit for bit, reference values must pass the checks above. New
components and new seeds are written by `--write`; changed or removed values
only with `--write --force`. The manifest's format_version guards the layout.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from conformance import record
from conformance.backends import FRAMEWORKS, Backend, Unsupported, get_backend, skip_reason
from conformance.case import Arrays, Case
from conformance.checks import prop
from conformance.compare import ConformanceFailure, Context, assert_agree, write_reproducer
from conformance.components import component, names
from conformance.tolerances import EPS, allowed_error

FORMAT_VERSION = 1
PROPERTY = "golden-agreement"
SEEDS = (0, 1, 2)  # per component; adding seeds adds cases, changing them needs --force
DTYPES = ("float32", "float64")
DEFAULT = "default"
DIR_ENV = "CONFORMANCE_GOLDEN_DIR"
DEFAULT_DIR = Path(__file__).with_name("golden")
MANIFEST = "manifest.json"
REPRODUCE_FACTOR = 4.0
REPRODUCE_FLOOR = 8.0
_KIND = {"outputs": "forward", "grads": "gradient", "state": "state"}


class GoldenDataError(ValueError):
    """The stored golden data is missing, of another format, or lacks what a check needs."""


def golden_dir() -> Path:
    return Path(os.environ.get(DIR_ENV, DEFAULT_DIR))


def variant_label(fixed: dict[str, Any]) -> str:
    """"default" or "field=value,...": the spec fields a convention changes, as a key-safe name."""
    text = ",".join(f"{k}={v}" for k, v in sorted(fixed.items()))
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", text) or DEFAULT


def _changed_fields(spec: Any, base: Any) -> dict[str, Any]:
    return {f.name: getattr(spec, f.name) for f in fields(spec)
            if f.name != "dtype" and getattr(spec, f.name) != getattr(base, f.name)}


def _framework_conventions(name: str) -> dict[str, dict[str, Any]]:
    """Framework -> the spec fields its adapter fixes, for the frameworks installed here."""
    found: dict[str, dict[str, Any]] = {}
    for framework in FRAMEWORKS:
        if skip_reason(framework) is None:
            try:
                found[framework] = get_backend(framework).conventions(name)
            except Unsupported:  # no adapter for this component
                continue
    return found


def _cotangent_sets(case: Case, outputs: Arrays) -> dict[str, Arrays]:
    comp = component(case.component)
    if "Y" in outputs and "dY" in case.inputs:
        upstream = {"Y": case.inputs["dY"]}
    else:
        rng = np.random.default_rng([case.seed, 0x601D])
        upstream = {k: rng.standard_normal(outputs[k].shape) for k in comp.outputs if k in outputs}
    sets = {"upstream": upstream}
    if "loss" in outputs:
        sets["loss"] = {"loss": np.ones(())}
    return {s: cot for s, cot in sets.items() if cot}


def _prefixed(prefix: str, arrays: Arrays) -> Arrays:
    return {f"{prefix}{k}": np.asarray(v) for k, v in arrays.items()}


def _group(arrays: Arrays, prefix: str) -> Arrays:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def generate_case(name: str, seed: int) -> tuple[dict[str, Any], Arrays]:
    """One golden case: its manifest entry and its arrays (keys relative to the case)."""
    comp = component(name)
    case = comp.golden_case(seed)
    variants: dict[str, dict[str, Any]] = {DEFAULT: {}}
    users: dict[str, str] = {}
    for framework, conventions in _framework_conventions(name).items():
        fixed = {k: v for k, v in conventions.items()
                 if hasattr(case.spec, k) and getattr(case.spec, k) != v}
        users[framework] = label = variant_label(fixed)
        variants[label] = fixed
    arrays = {**_prefixed("params/", case.params), **_prefixed("inputs/", case.inputs),
              **_prefixed("state/", case.state)}
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
    entry = {"id": f"seed{seed}", "seed": seed, "spec": json.loads(case.spec.to_json()),
             "train": case.train, "meta": case.meta, "cotangents": kept, "frameworks": users,
             "variants": {k: {f: _jsonable(v) for f, v in fx.items()} for k, fx in variants.items()}}
    return entry, arrays


def _jsonable(value: Any) -> Any:
    """The value if JSON holds it exactly (the manifest is for reading), else its repr."""
    try:
        return value if json.loads(json.dumps(value, allow_nan=False)) == value else repr(value)
    except (TypeError, ValueError):
        return repr(value)


def generate(name: str, seeds: tuple[int, ...] | None = None) -> tuple[dict[str, Any], Arrays]:
    """A component's manifest entry and arrays (keys "<case>/..."), for `seeds` (default SEEDS)."""
    cases, arrays = [], {}
    for seed in SEEDS if seeds is None else seeds:
        entry, case_arrays = generate_case(name, seed)
        cases.append(entry)
        arrays.update(_prefixed(f"{entry['id']}/", case_arrays))
    versions = {p: _version(p) for p in ("backprop-conformance", "numpy")}
    return {"file": f"{name}.npz", "generated_by": versions, "cases": cases}, arrays


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- storage


def read_manifest(directory: Path | None = None) -> dict[str, Any]:
    path = (directory or golden_dir()) / MANIFEST
    if not path.is_file():
        return {"format_version": FORMAT_VERSION, "components": {}}
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise GoldenDataError(
            f"golden format_version: expected {FORMAT_VERSION}, received"
            f" {manifest.get('format_version')!r} in {path}; regenerate with"
            " python -m conformance golden --write --force")
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
            " run python -m conformance golden --write")
    path = directory / entry["file"]
    stat = path.stat()
    return entry, _read_arrays(str(path), (stat.st_mtime_ns, stat.st_size))


def write_component(name: str, entry: dict[str, Any], arrays: Arrays,
                    directory: Path | None = None) -> Path:
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


def cases(name: str, directory: Path | None = None) -> list[Case]:
    """The stored golden cases of a component, as the property suite's Case objects."""
    entry, arrays = read_component(name, directory)
    spec_class = component(name).spec_class
    return [
        Case(name, spec_class.from_json(json.dumps(c["spec"])), _group(arrays, f"{c['id']}/params/"),
             _group(arrays, f"{c['id']}/inputs/"), _group(arrays, f"{c['id']}/state/"),
             bool(c["train"]), int(c["seed"]), dict(c["meta"]))
        for c in entry["cases"]
    ]


# ---------------------------------------------------------------- comparison


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


def _assert_reproduces(ctx: Context, actual: Arrays, r64: Arrays, r32: Arrays, label: str) -> None:
    """The float64 reference against its stored values, under the tight bound."""
    __tracebackhide__ = True
    rec = record.current()
    for name, expected in r64.items():
        if name not in actual:
            raise ConformanceFailure(f"{ctx.header()}: {label}{name} missing from the reference")
        allowed = reproduce_allowed(expected, r32[name])
        ratio, index = worst(actual[name], expected, allowed)
        a = np.asarray(actual[name], np.float64)
        got = float(a[index]) if a.shape == expected.shape else float("nan")
        stored = float(expected[index]) if expected.size else 0.0
        if rec is not None:
            rec.observe(record.Worst(ratio, label + name, index, got, stored), ctx.case)
        if not ratio <= 1.0:
            path = write_reproducer(ctx)
            raise ConformanceFailure(
                f"conformance failure: {ctx.header()}\n  parameter {label}{name}: the reference no"
                f" longer reproduces its stored golden value at {list(index)}: now {got!r}, stored"
                f" {stored!r}; |difference| = {abs(got - stored):.3g} = {ratio:.3g} tolerances"
                f" (allowed {allowed:.3g}, golden float64)\n  case: {ctx.case.describe()}\n"
                f"  replay: python -m conformance replay {path}")


def _stored_for(case: Case) -> tuple[Arrays, str, list[str]]:
    """(the case's stored arrays, the variant label of case.spec, cotangent sets)."""
    entry, arrays = read_component(case.component)
    found = [c for c in entry["cases"] if c["seed"] == case.seed]
    if not found:
        raise GoldenDataError(f"golden seed: expected one of {[c['seed'] for c in entry['cases']]},"
                              f" received {case.seed} for component {case.component!r}")
    stored = _group(arrays, f"{found[0]['id']}/")
    for k, v in {**_prefixed("params/", case.params), **_prefixed("inputs/", case.inputs)}.items():
        if k not in stored or not np.array_equal(stored[k], v):
            raise GoldenDataError(f"golden case {k}: the case is not the stored golden case {found[0]['id']}")
    base = component(case.component).spec_class.from_json(json.dumps(found[0]["spec"]))
    label = variant_label(_changed_fields(case.spec, base))
    if label not in found[0]["variants"]:
        raise GoldenDataError(
            f"golden variant: expected one of {sorted(found[0]['variants'])}, received {label!r}"
            f" for {case.component} {found[0]['id']}; regenerate with the framework installed:"
            " python -m conformance golden --write")
    return stored, label, list(found[0]["cotangents"])


@prop(PROPERTY)
def golden_agreement(ctx: Context, backend: Backend) -> None:
    """Outputs, state and every stored gradient set against the stored reference."""
    stored, label, sets = _stored_for(ctx.case)
    r64 = _group(stored, f"reference/{label}/float64/")
    r32 = _group(stored, f"reference/{label}/float32/")
    tight = ctx.framework == "numpy" and ctx.dtype == "float64"
    plain = backend.run(ctx.case)
    checks: list[tuple[str, Arrays, str]] = [("outputs/", plain.outputs, "output "),
                                             ("state/", plain.state, "state ")]
    for s in sets:
        cot = _group(stored, f"cotangents/{s}/")
        checks.append((f"grads/{s}/", backend.run(ctx.case, cot).grads, f"[{s}] "))
    for prefix, actual, text in checks:
        ref64, ref32 = _group(r64, prefix), _group(r32, prefix)
        if tight:
            _assert_reproduces(ctx, actual, ref64, ref32, text)
        elif ref64:
            assert_agree(ctx, actual, ref64, ref32, kind=_KIND[prefix.split("/")[0]], label=text)


# ---------------------------------------------------------------- regeneration


@dataclass
class Changes:
    added: list[str]
    removed: list[str]
    changed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self, limit: int = 3) -> str:
        return "; ".join(f"{len(items)} {title}: {items[:limit]}" for title, items in
                         (("added", self.added), ("removed", self.removed), ("changed", self.changed))
                         if items)


_REFERENCE = re.compile(
    r"^(?P<at>.*reference/[^/]+/)(?P<dtype>float32|float64)/(?P<what>outputs|state|grads)/")


def _value_change(key: str, old: np.ndarray, new: np.ndarray, stored: Arrays) -> str | None:
    """Why `new` does not reproduce the stored `old`, or None (the test's own criterion)."""
    m = _REFERENCE.match(key)
    if old.shape != new.shape or old.dtype != new.dtype:
        return f"{key}: {old.dtype}{list(old.shape)} -> {new.dtype}{list(new.shape)}"
    if m is None:  # spec data (parameters, inputs, cotangents) is drawn exactly: bit for bit
        same = np.array_equal(old, new, equal_nan=old.dtype.kind in "fc")
        return None if same else f"{key}: the drawn values differ"
    rest = key[m.end():]
    r64 = stored[f"{m['at']}float64/{m['what']}/{rest}"]
    r32 = stored[f"{m['at']}float32/{m['what']}/{rest}"]
    if m["dtype"] == "float64":
        allowed = reproduce_allowed(r64, r32)
    else:
        bound = allowed_error("float32", _KIND[m["what"]], r64, r32)
        allowed = float(bound.reshape(-1)[0]) if r64.size else 0.0
    ratio, index = worst(new, r64, allowed)
    if ratio <= 1.0:
        return None
    return (f"{key}{list(index)}: stored {float(old[index])!r}, now {float(new[index])!r}"
            f" ({ratio:.3g} tolerances)")


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
            if old_cases[i].get(field) != value:
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


def command(*, write: bool, force: bool, only: list[str] | None = None,
            directory: Path | None = None) -> int:
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
    wanted = list(only or names())
    unknown = [n for n in wanted if n not in names()]
    if unknown:
        raise ValueError(f"components: expected names among {list(names())}, received {unknown}")
    print(f"golden data: {directory} (format {FORMAT_VERSION}, seeds {list(SEEDS)})")
    for framework in FRAMEWORKS:
        if skip_reason(framework) is not None:
            print(f"  note: {framework} is not installed here: its convention variants cannot be made")
    status, writes, refused = 0, [], []
    for name in [n for n in stored if n not in names()] if only is None else []:
        print(f"  {name}: stored, but no such component any more")
        refused.append(name)
    for name in wanted:
        try:
            entry, arrays = generate(name)
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
        print(f"refused: stored values of {refused} would change; nothing written."
              " Rerun with --force to overwrite them (and say why in the commit).")
        return 1
    for name in [n for n in refused if n not in names()]:
        (directory / stored[name]["file"]).unlink(missing_ok=True)
        manifest["components"].pop(name)
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    for name, entry, arrays in writes:
        print(f"wrote {write_component(name, entry, arrays, directory)}")
    return status
