"""The keras plugin as the suite sees it: found through its entry point, its rows in the
matrix, its known issues loaded, and nothing of it inside the suite's own package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import conformance
from conformance import frameworks, known_issues
from conformance_keras import FRAMEWORK

SUITE = Path(conformance.__file__).parent


def test_no_file_of_the_suite_names_the_plugin_framework() -> None:
    """Every file under conformance/ (sources, TOML, the golden manifest and the npz archives,
    whose member names are stored uncompressed) is free of the word, in any case."""
    files = [p for p in SUITE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) > 50  # the package itself, not an empty folder
    naming = [str(p.relative_to(SUITE)) for p in files if b"keras" in p.read_bytes().lower()]
    assert naming == []


def test_the_plugin_is_found_through_its_entry_point() -> None:
    assert frameworks.plugins()["keras"] is FRAMEWORK
    assert frameworks.names()[-1] == "keras"  # order 30: after torch (10) and jax (20)
    assert frameworks.skip_reason("keras") is None


def test_its_known_issues_load_and_name_only_keras() -> None:
    (path,) = FRAMEWORK.known_issues()
    issues = known_issues.load(path)
    assert issues and {i.framework for i in issues} == {"keras"}
    assert {i.package for i in issues} == {"keras"}


def test_the_keras_rows_appear_in_the_matrix(tmp_path: Path) -> None:
    """`python -m conformance` over one cheap component: a keras column with passing rows."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "--frameworks",
            "numpy,keras",
            "--dtypes",
            "float32",
            "--report",
            str(report),
            "--",
            "-k",
            "test_clip and (test_agreement or test_norm_bound)",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    keras_rows = [r for r in rows if r["framework"] == "keras"]
    assert {(r["component"], r["property"], r["status"]) for r in keras_rows} == {
        ("clip", "clip-agreement", "passed"),
        ("clip", "clip-norm-bound", "passed"),
    }
    assert "keras" in done.stdout


def test_a_keras_imported_with_another_backend_is_a_skip_with_the_reason() -> None:
    code = (
        "import os; os.environ['KERAS_BACKEND'] = 'numpy'; import keras; "
        "from conformance import frameworks; print(frameworks.skip_reason('keras'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "KERAS_BACKEND=jax" in done.stdout and "'numpy' backend" in done.stdout


@pytest.mark.parametrize("device", ["cuda"])
def test_a_missing_device_is_a_skip(device: str) -> None:
    import jax

    try:
        jax.devices("gpu")
    except RuntimeError:
        assert frameworks.skip_reason("keras", device) == f"jax: no {device} device is available"
    else:
        assert frameworks.skip_reason("keras", device) is None


def test_the_scoped_entries_reach_tanh_networks_in_float64_only() -> None:
    """keras-simplernn-float64-scan-carry and the kink rows of keras-float64-computed-in-float32
    hold where Keras's tanh runs in float64 (conformance_keras/scopes.py), and nowhere else."""
    from conformance.case import Case
    from conformance_keras.scopes import (
        mlp_tanh_float64,
        mse_float64,
        mse_float64_gradient,
        simplernn_tanh_float64,
    )
    from refimpl.mlp import MLPSpec
    from refimpl.rnn import RNNSpec

    def case(spec: object) -> Case:
        return Case("x", spec, {}, {}, seed=0)

    assert simplernn_tanh_float64(case(RNNSpec(2, 3, 2, "tanh", dtype="float64")))
    assert not simplernn_tanh_float64(case(RNNSpec(2, 3, 2, "relu", dtype="float64")))
    assert not simplernn_tanh_float64(case(RNNSpec(2, 3, 2, "tanh", dtype="float32")))
    assert mlp_tanh_float64(case(MLPSpec((2, 3, 1), "relu", "tanh", "mse", dtype="float64")))
    assert not mlp_tanh_float64(case(MLPSpec((2, 3, 1), "relu", "sigmoid", "mse", dtype="float64")))
    assert not mlp_tanh_float64(case(MLPSpec((2, 3, 1), "tanh", "tanh", "mse", dtype="float32")))
    relu_mse = RNNSpec(2, 3, 2, "relu", dtype="float64")
    relu_ce = RNNSpec(2, 3, 2, "relu", loss="cross_entropy", dtype="float64")
    assert mse_float64(case(relu_mse)) and not mse_float64(case(relu_ce))
    assert mse_float64_gradient(case(relu_mse)) is None and mse_float64_gradient(case(relu_ce)) is False
    scoped = [i for i in known_issues.load(FRAMEWORK.known_issues()[0]) if i.reached]
    assert {i.reached.rsplit(":", 1)[1] for i in scoped} >= {"simplernn_tanh_float64", "mlp_tanh_float64"}
