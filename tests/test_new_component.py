"""A new component is one folder, one registry line and its README rows: a throw-away one,
built in a temporary folder, shows up in the matrix of `python -m conformance`.

The folder is a package outside this repository (as a third party would write it); its
registry line is the entry point `[conformance.components] scale = scale_component`, in a
`.dist-info` folder beside it, which is how an installed package announces it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RECORD = '''
"""Elementwise scaling Y = X ⊙ w with a mean-squared-error loss: a component in one folder."""
import json
from dataclasses import asdict, dataclass

import numpy as np
from hypothesis import strategies as st

from conformance import properties as p
from conformance.backend import Outcome, as_float64, cast_floats
from conformance.case import Case
from conformance.component import Check, Component
from conformance.strategies import seeds


@dataclass(frozen=True)
class ScaleSpec:
    width: int
    dtype: str = "float64"

    def to_json(self):
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls(**json.loads(text))


def reference(case, cotangents=None):
    x = cast_floats({**case.params, **case.inputs}, case.spec.dtype)
    Y = x["X"] * x["w"]
    residual = Y - x["targets"]
    outputs = {"Y": Y, "loss": np.asarray(np.mean(residual**2))}
    grads = {}
    if cotangents:
        dY = 2 * residual / residual.size * float(cotangents.get("loss", 0.0))
        dY = dY + cotangents.get("Y", 0.0)
        grads = {"w": (dY * x["X"]).sum(axis=0), "X": dY * x["w"]}
    return Outcome(as_float64(outputs), as_float64(grads), {})


def case(width, seed):
    rng = np.random.default_rng(seed)
    shape = (4, width)
    inputs = {k: rng.standard_normal(shape) for k in ("X", "targets", "dY", "dY2")}
    return Case("scale", ScaleSpec(width), {"w": rng.standard_normal(width)}, inputs, seed=seed)


@st.composite
def cases(draw, profile):
    return case(draw(st.sampled_from((1, 3))), draw(seeds()))


SCALE = Component(
    "scale", ScaleSpec, ("X",), ("Y", "loss"), reference, lambda seed: case(3, seed),
    checks=(Check(p.UPSTREAM_LINEARITY, cases), Check(p.FINITE_DIFFERENCES, cases)),
)
COMPONENTS = (SCALE,)
'''

TESTS = """from conformance.testing import component_tests

globals().update(component_tests("scale"))
"""


def test_a_component_in_a_temporary_folder_appears_in_the_matrix(tmp_path: Path) -> None:
    package = tmp_path / "scale_component"
    package.mkdir()
    (package / "__init__.py").write_text(RECORD)
    (package / "test_scale.py").write_text(TESTS)
    info = tmp_path / "scale_component-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: scale-component\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[conformance.components]\nscale = scale_component\n")

    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "--frameworks",
            "numpy",
            "--dtypes",
            "float64",
            "--report",
            str(report),
            "--",
            "-k",
            "scale and not mlp_bn",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {(r["component"], r["property"], r["status"]) for r in json.loads(report.read_text())["rows"]}
    assert rows == {("scale", "upstream-linearity", "passed"), ("scale", "finite-differences", "passed")}
    matrix = [line.split() for line in done.stdout.splitlines()]
    assert matrix[[m[:1] for m in matrix].index(["scale"])][:3] == ["scale", "finite-differences", "ok"]
