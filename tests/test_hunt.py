"""The hunt (conformance.hunt) as a user runs it: a budget that holds, Ctrl-C, usage errors, a
planted framework fault found, minimized and written as a standalone script, a crashing worker
survived, findings not repeated, and the same hunt on a two-worker Dask cluster.

Faults are planted in torch itself, in every process of the hunt, by tests/hunt_faults/
sitecustomize.py (HUNT_FAULT): nothing in the hunt knows about them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conformance import cli

FAULTS = Path(__file__).parent / "hunt_faults"
TORCH_MLP = ("--frameworks", "torch", "--dtypes", "float64", "--components", "mlp")
torch = pytest.importorskip("torch")


def hunt(out: Path, *options: str, fault: str = "", timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(FAULTS) if fault else "", "HUNT_FAULT": fault}
    return subprocess.run(
        [sys.executable, "-m", "conformance", "hunt", "--out", str(out), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def ledger(out: Path) -> list[dict]:
    return json.loads((out / "findings.json").read_text())


@pytest.mark.parametrize(
    "options",
    [
        ["--minutes", "0"],
        ["--minutes", "-1"],
        ["--cases", "0"],
        ["--cases", "-5"],
        ["--workers", "-1"],
        ["--dtypes", "float8"],
        ["--frameworks", "tensorflow"],
        ["--components", "lstm"],
    ],
)
def test_a_budget_of_nothing_is_a_usage_error(
    options: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["hunt", "--out", str(tmp_path), *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hunt: {options[0]}: expected"), err
    assert not (tmp_path / "findings.json").exists()


def test_a_hunt_of_the_reference_alone_runs_in_this_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--workers 0, NumPy only: the property lane (the fast lane needs torch or JAX), a --cases budget."""
    code = cli.main(
        [
            "hunt",
            "--out",
            str(tmp_path),
            "--cases",
            "12",
            "--seed",
            "1",
            "--frameworks",
            "numpy",
            "--workers",
            "0",
            "--components",
            "mlp",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "hunt ended (budget spent)" in out and "mlp numpy" in out
    assert (tmp_path / "findings.json").read_text().strip() == "[]"


def test_a_twenty_second_hunt_ends_within_thirty_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    # torch alone: a worker that imports torch, JAX and Keras on a loaded 2-core machine can spend
    # the 20 seconds starting, and the test is about the budget, not about what fits in it
    done = hunt(tmp_path, "--minutes", str(20 / 60), "--seed", "3", "--workers", "1", *TORCH_MLP)
    wall = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    assert wall <= 30, f"a 20-second hunt took {wall:.1f} s of wall time"
    assert "hunt ended (budget spent)" in done.stdout
    assert int(done.stdout.split("hunt ended")[1].split(" cases")[0].split()[-1].replace(",", "")) > 0


def test_ctrl_c_ends_the_hunt_with_its_summary(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance",
            "hunt",
            "--out",
            str(tmp_path),
            "--minutes",
            "5",
            "--seed",
            "4",
            "--frameworks",
            "torch",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(12)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode in (0, 1), err
    assert "hunt ended (interrupted)" in out
    assert "Traceback" not in out + err


def test_a_planted_fault_is_found_minimized_and_reproduced_standalone(tmp_path: Path) -> None:
    """torch.tanh's derivative wrong from 24 units up: the ci profile passes, the hunt finds it."""
    env = {**os.environ, "PYTHONPATH": str(FAULTS), "HUNT_FAULT": "wide-tanh"}
    ci = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "conformance/components/mlp/test_mlp.py",
            "--frameworks",
            "torch",
            "--dtypes",
            "float64",
            "-k",
            "test_gradient or test_loss_gradient",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert ci.returncode == 0, ci.stdout[-2000:]

    options = ["--cases", "520", "--seed", "26", *TORCH_MLP, "--minimize-seconds", "20"]
    first = hunt(tmp_path, *options, fault="wide-tanh")
    assert first.returncode == 1, first.stdout + first.stderr
    found = [f for f in ledger(tmp_path) if f["framework"] == "torch" and f["kind"] == "wrong-value"]
    assert found, first.stdout
    finding = found[0]
    assert "tanh" in finding["path"] and finding["property"] in (
        "gradient-agreement",
        "loss-gradient-agreement",
    )
    folder = tmp_path / finding["folder"]
    report = (tmp_path / "findings.md").read_text()
    assert finding["folder"] in report and "reproduce.py" in report

    with np.load(folder / "case.npz") as data:
        spec = json.loads(str(data["__meta__"]))["spec"]
    origin = finding["origin"]  # "sizes 1-12-48-24-64, N=3, seed ..."
    assert finding["shrink"] and sum(spec["sizes"]) < sum(
        map(int, origin.split(",")[0].split()[1].split("-"))
    ), (spec, origin)
    # the fault needs a tanh layer 24 wide, hidden or (drawn across vector widths) the output
    assert max(spec["sizes"][1:]) >= 24, spec

    script = folder / "reproduce.py"
    assert "conformance" not in script.read_text().split('"""')[2]  # no import of this project
    faulty = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, check=False
    )
    assert faulty.returncode == 1 and "WRONG" in faulty.stdout, faulty.stdout + faulty.stderr
    clean = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
        check=False,
    )
    assert clean.returncode == 0 and "every tensor agrees" in clean.stdout, clean.stdout + clean.stderr

    written = len(ledger(tmp_path))
    second = hunt(tmp_path, *options, fault="wide-tanh")
    assert second.returncode == 0, second.stdout + second.stderr
    seen = int(second.stdout.split("findings: 0 new, ")[1].split()[0])
    assert seen >= 1 and len(ledger(tmp_path)) == written, second.stdout
    again = next(f for f in ledger(tmp_path) if f["folder"] == finding["folder"])
    assert again["count"] > finding["count"]


def test_a_worker_that_a_framework_crashes_is_replaced_and_the_hunt_goes_on(tmp_path: Path) -> None:
    """torch.sigmoid on 12 features kills the process: seed 94's first fast task (task 1) draws
    the one bucket that has them; tasks 2 and 3 run on the worker that replaces it."""
    done = hunt(
        tmp_path, "--cases", "200", "--seed", "94", *TORCH_MLP, "--workers", "1", fault="segfault-sigmoid"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    crashes = [f for f in ledger(tmp_path) if f["kind"] == "crash"]
    assert crashes and crashes[0]["framework"] == "torch", ledger(tmp_path)
    log = (tmp_path / crashes[0]["folder"] / "log.txt").read_text()
    assert "Segmentation fault" in log or "Fatal Python error" in log, log[-2000:]
    assert "sigmoid" in log  # faulthandler's stack names the call that crashed
    tasks = int(done.stdout.split(" tasks")[0].split()[-1])
    assert tasks >= 2  # tasks 2 and 3 finished after the crash of task 1: the hunt went on


def test_a_dask_cluster_of_two_workers_runs_the_hunt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=True
    ) as cluster:
        code = cli.main(
            [
                "hunt",
                "--address",
                cluster.scheduler_address,
                "--out",
                str(tmp_path),
                "--cases",
                "600",
                "--seed",
                "7",
                "--frameworks",
                "numpy,torch",
                "--dtypes",
                "float64",
                "--components",
                "mlp",
            ]
        )
    out, err = capsys.readouterr()
    assert code in (0, 1), out + err
    workers = [line for line in out.splitlines() if "tasks per worker" in line]
    assert workers and workers[0].count("dask pid") == 2, out
    assert (tmp_path / "findings.json").is_file()
