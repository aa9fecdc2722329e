"""The golden set: the reference reproduces it, every framework matches it, regeneration guards it.

`test_golden_<component>` is one report row per (component, framework, dtype)
under the property "golden-agreement", generated for every component the suite
discovers: a component without stored golden data fails its rows with the
command that writes them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import frameworks
from conformance.backend import Unsupported
from conformance.compare import ConformanceFailure
from conformance.component import NotApplicable
from conformance.config import Run, RunConfig
from conformance.golden import regenerate, storage
from conformance.golden.property import GOLDEN_AGREEMENT
from conformance.registry import component, names
from conformance.runner import run_property


def golden_test(name: str) -> Callable[..., Any]:
    @pytest.mark.conformance(property=GOLDEN_AGREEMENT.id, component=name)
    def test(framework: str, dtype: str, conformance_run: Run) -> None:
        reason = frameworks.skip_reason(framework, conformance_run.config.device)
        if reason:
            pytest.skip(reason)
        try:
            stored = cases(name)
        except storage.GoldenDataError as err:
            pytest.fail(str(err))
        try:
            for case in stored:
                run_property(GOLDEN_AGREEMENT, case, framework, dtype, conformance_run)
        except (NotApplicable, Unsupported) as err:
            pytest.skip(str(err))

    test.__name__ = f"test_golden_{name}"
    return test


def cases(name: str, directory: Path | None = None) -> list[Any]:
    return storage.cases(name, component(name).spec_class, directory)


for _name in names():
    globals()[f"test_golden_{_name}"] = golden_test(_name)

STORED = sorted(storage.read_manifest()["components"])


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Failures provoked on purpose leave their reproducers in a temporary folder."""
    return Run(RunConfig(reproducer_dir=tmp_path / "reproducers"))


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the stored golden set, made the active one."""
    directory = tmp_path / "golden"
    shutil.copytree(storage.DEFAULT_DIR, directory)
    monkeypatch.setenv(storage.DIR_ENV, str(directory))
    return directory


def rewrite(directory: Path, name: str, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    entry, arrays = storage.read_component(name, directory)
    arrays = dict(arrays)
    change(arrays)
    storage.write_component(name, entry, arrays, directory)


def float64_tensors(name: str) -> list[str]:
    """The nonzero float64 reference tensors of the first case, default convention."""
    _, arrays = storage.read_component(name)
    keys = [k for k in arrays if k.startswith("seed0/reference/default/float64/")]
    return sorted(k for k in keys if np.max(np.abs(arrays[k]), initial=0.0) > 0)


def nudged(arrays: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    """A copy of `arrays` with the largest entry of arrays[key] changed by one part in 1e9."""
    value = arrays[key].copy()
    at = np.unravel_index(np.argmax(np.abs(value)), value.shape)
    value[at] *= 1 + 1e-9
    return {**arrays, key: value}


def named(key: str) -> str:
    """What a failure names for a stored key: "[upstream] W1" for .../grads/upstream/W1, "output Y"."""
    kind, rest = key.split("/", 5)[4:]  # seed0/reference/default/float64/<kind>/<rest>
    if kind == "grads":
        cotangents, name = rest.split("/", 1)
        return f"parameter [{cotangents}] {name}"
    return f"parameter {'output' if kind == 'outputs' else kind} {rest}"


@pytest.mark.parametrize("name", STORED)
def test_stored_set_is_what_the_components_generate_now(name: str) -> None:
    missing = [f for f in frameworks.names() if frameworks.skip_reason(f) is not None]
    if missing:
        pytest.skip(f"the convention variants of {missing} need them installed")
    changes = regenerate.compare(storage.read_component(name), regenerate.generate(name))
    assert not changes, f"{name}: {changes.summary()}; see python -m conformance golden"


@pytest.mark.parametrize("name", STORED)
def test_one_part_in_1e9_fails_the_float64_golden_test(name: str, copy: Path, run: Run) -> None:
    """In a copy of the stored files: one gradient entry times (1 + 1e-9) fails, restored passes."""
    (case, *_) = cases(name)
    keys = float64_tensors(name)
    key = next((k for k in keys if "/grads/" in k), keys[0])  # a gradient where there is one
    entry, arrays = storage.read_component(name, copy)
    storage.write_component(name, entry, nudged(arrays, key), copy)
    with pytest.raises(ConformanceFailure, match=r"golden-agreement.*numpy.*float64") as info:
        run_property(GOLDEN_AGREEMENT, case, "numpy", "float64", run)
    assert named(key) in str(info.value)
    assert "no longer reproduces its stored golden value" in str(info.value)
    storage.write_component(name, entry, dict(arrays), copy)
    run_property(GOLDEN_AGREEMENT, case, "numpy", "float64", run)


@pytest.mark.parametrize("name", STORED)
def test_every_stored_float64_tensor_is_guarded(name: str, monkeypatch: pytest.MonkeyPatch, run: Run) -> None:
    """The same change, in memory, to each float64 output, state and gradient tensor in turn."""
    (case, *_) = cases(name)
    _, arrays = storage.read_component(name)
    for key in float64_tensors(name):
        monkeypatch.setattr(storage, "_read_arrays", lambda path, stamp, key=key: nudged(arrays, key))
        with pytest.raises(ConformanceFailure, match="no longer reproduces") as info:
            run_property(GOLDEN_AGREEMENT, case, "numpy", "float64", run)
        assert named(key) in str(info.value), key
    monkeypatch.setattr(storage, "_read_arrays", lambda path, stamp: arrays)
    run_property(GOLDEN_AGREEMENT, case, "numpy", "float64", run)


def test_a_wrong_framework_gradient_fails_the_golden_test(monkeypatch: pytest.MonkeyPatch, run: Run) -> None:
    torch = pytest.importorskip("torch")
    from conformance.components.mlp import torch_adapter as torch_mlp

    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "tanh", lambda z, spec: torch.tanh(z * (1 + 1e-7)))
    case = next(c for c in cases("mlp") if "tanh" in c.spec.to_json())
    with pytest.raises(ConformanceFailure, match=r"golden-agreement.*torch.*float64") as info:
        run_property(GOLDEN_AGREEMENT, case, "torch", "float64", run)
    assert "parameter " in str(info.value)
    run_property(GOLDEN_AGREEMENT, case, "torch", "float32", run)  # 1e-7 is within float32 rounding


def test_regeneration_writes_new_then_reports_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert regenerate.command(write=False, force=False, only=["mlp"], directory=tmp_path) == 1
    assert "mlp: new" in capsys.readouterr().out
    assert regenerate.command(write=True, force=False, only=["mlp"], directory=tmp_path) == 0
    manifest = json.loads((tmp_path / storage.MANIFEST).read_text())
    assert manifest["format_version"] == storage.FORMAT_VERSION
    assert manifest["components"]["mlp"]["generated_by"]["backprop-conformance"]
    assert regenerate.command(write=False, force=False, only=["mlp"], directory=tmp_path) == 0
    assert "mlp: up to date" in capsys.readouterr().out


def test_changed_values_are_refused_without_force(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = "seed1/reference/default/float64/grads/upstream/W1"

    def tamper(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = arrays[key] * (1 + 1e-6)

    rewrite(copy, "mlp", tamper)
    tampered = storage.read_component("mlp", copy)[1][key].copy()
    assert regenerate.command(write=True, force=False, only=["mlp"], directory=copy) == 1
    out = capsys.readouterr().out
    assert "CHANGED" in out and key in out and "refused" in out and "--force" in out
    np.testing.assert_array_equal(storage.read_component("mlp", copy)[1][key], tampered)
    assert regenerate.command(write=True, force=True, only=["mlp"], directory=copy) == 0
    assert regenerate.command(write=False, force=False, only=["mlp"], directory=copy) == 0
    np.testing.assert_allclose(storage.read_component("mlp", copy)[1][key], tampered / (1 + 1e-6), rtol=1e-14)


def test_new_seeds_are_added_without_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regenerate, "SEEDS", (0,))
    assert regenerate.command(write=True, force=False, only=["clip"], directory=tmp_path) == 0
    monkeypatch.setattr(regenerate, "SEEDS", (0, 1))
    assert regenerate.command(write=True, force=False, only=["clip"], directory=tmp_path) == 0
    assert [c.seed for c in cases("clip", tmp_path)] == [0, 1]
    monkeypatch.setattr(regenerate, "SEEDS", (1,))
    assert regenerate.command(write=True, force=False, only=["clip"], directory=tmp_path) == 1


def test_another_format_version_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / storage.MANIFEST).read_text())
    (copy / storage.MANIFEST).write_text(json.dumps({**manifest, "format_version": 0}))
    with pytest.raises(storage.GoldenDataError, match="format_version"):
        cases("mlp")
    with pytest.raises(storage.GoldenDataError, match="format_version"):
        regenerate.command(write=True, force=False, only=["mlp"], directory=copy)
    assert regenerate.command(write=True, force=True, only=["mlp"], directory=copy) == 0
    assert len(cases("mlp")) == len(storage.SEEDS)


def test_bad_requests_name_the_field(tmp_path: Path, run: Run) -> None:
    with pytest.raises(ValueError, match="components"):
        regenerate.command(write=False, force=False, only=["no-such-component"], directory=tmp_path)
    with pytest.raises(storage.GoldenDataError, match="golden component"):
        cases("mlp", tmp_path)
    (case, *_) = cases("mlp")
    with pytest.raises(storage.GoldenDataError, match="golden seed"):
        run_property(GOLDEN_AGREEMENT, replace(case, seed=99), "numpy", "float64", run)
    with pytest.raises(storage.GoldenDataError, match="golden variant"):
        other = replace(case, spec=replace(case.spec, slope=0.5))
        run_property(GOLDEN_AGREEMENT, other, "numpy", "float64", run)
