"""Wall time of the conformance suite's ci profile, and each component's share.

    python -m tests.benchmarks.suite_time [--workers N] [-- PYTEST ARGS]

Runs `pytest --pyargs conformance.components` (the ci profile, every framework
and dtype) in a subprocess from the repository root, with a JUnit XML report,
and sums the per-test times (setup + call + teardown) by component: the test
module conformance/components/<component>/test_<component>.py. What the wall time holds
beyond the tests' sum is start-up: importing torch, jax and flax, collection.
The CPU time (user + system) is reported too: on a machine busy with other
work the wall time stretches, the CPU time much less.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SLOWEST = 8


@dataclass
class SuiteTiming:
    wall_s: float
    cpu_s: float  # user + system time of the run: its wall time on an otherwise idle machine, or less
    exit_code: int
    workers: int
    tests_s: float = 0.0  # Σ of every test's time
    components: dict[str, float] = field(default_factory=dict)  # component -> Σ of its tests' times
    frameworks: dict[str, float] = field(default_factory=dict)  # numpy, torch, jax -> Σ of its rows' times
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # component -> outcome -> count
    slowest: list[tuple[str, float]] = field(default_factory=list)  # (test, seconds), the longest first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _component(classname: str) -> str:
    module = classname.rsplit(".", 1)[-1]
    return module.removeprefix("test_")


def _framework(name: str) -> str:
    """ "test_forward[jax-float64]" -> "jax"."""
    return name.partition("[")[2].partition("-")[0] or "other"


def _outcome(testcase: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if testcase.find(tag) is not None:
            return tag
    return "passed"


def parse_junit(path: Path) -> SuiteTiming:
    """Per-component sums, outcome counts and the slowest tests of a JUnit XML report."""
    timing = SuiteTiming(0.0, 0.0, 0, 0)
    seconds: dict[str, float] = defaultdict(float)
    by_framework: dict[str, float] = defaultdict(float)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    tests = []
    for testcase in ET.parse(path).getroot().iter("testcase"):
        component = _component(testcase.get("classname", "?"))
        took = float(testcase.get("time", 0.0))
        seconds[component] += took
        by_framework[_framework(testcase.get("name", ""))] += took
        counts[component][_outcome(testcase)] += 1
        tests.append((f"{component}::{testcase.get('name', '?')}", took))
    timing.components = dict(seconds)
    timing.frameworks = dict(by_framework)
    timing.counts = {name: dict(c) for name, c in counts.items()}
    timing.slowest = sorted(tests, key=lambda t: -t[1])[:SLOWEST]
    timing.tests_s = sum(seconds.values())
    return timing


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(workers: int = 0, extra: tuple[str, ...] = ()) -> SuiteTiming:
    """Runs the ci profile once (serially when workers == 0, else under pytest-xdist)."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance.components",
            "--conformance-profile",
            "ci",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            "-o",
            "junit_family=xunit2",
            "-o",
            "junit_duration_report=total",
            *(["-n", str(workers)] if workers else []),
            *extra,
        ]
        before, started = _children_cpu(), time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        wall, cpu = time.perf_counter() - started, _children_cpu() - before
        if not junit.is_file():
            raise RuntimeError(
                f"the suite wrote no report (exit {done.returncode}):\n{done.stdout[-2000:]}"
                f"\n{done.stderr[-2000:]}"
            )
        timing = parse_junit(junit)
    timing.wall_s, timing.cpu_s, timing.exit_code, timing.workers = wall, cpu, done.returncode, workers
    return timing


def render(timing: dict[str, Any]) -> str:
    mode = f"-n {timing['workers']}" if timing["workers"] else "serial"
    rest = timing["wall_s"] - timing["tests_s"]
    lines = [
        f"conformance ci profile ({mode}): {timing['wall_s']:.1f} s wall, {timing['cpu_s']:.1f} s CPU,"
        f" exit code "
        f"{timing['exit_code']}; tests {timing['tests_s']:.1f} s, "
        + (f"start-up and collection {rest:.1f} s" if not timing["workers"] else "across workers")
    ]
    total = timing["tests_s"] or 1.0
    for name, seconds in sorted(timing["components"].items(), key=lambda kv: -kv[1]):
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(timing["counts"][name].items()))
        lines.append(f"  {name:<12} {seconds:7.1f} s  {100 * seconds / total:5.1f}%  ({counts})")
    frameworks = sorted(timing["frameworks"].items(), key=lambda kv: -kv[1])
    lines.append("  by framework: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in frameworks))
    lines.append("  slowest tests:")
    lines += [f"    {seconds:6.1f} s  {name}" for name, seconds in timing["slowest"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="pytest-xdist workers (0: serial)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    timing = measure(args.workers, tuple(args.pytest_args))
    print(render(timing.as_dict()))
    return 0 if timing.exit_code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
