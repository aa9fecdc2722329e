"""The benchmark run: every case and implementation, the summary, then the suite's own time.

    python -m tests.benchmarks [--threads N|default] [--timer cpu|wall] [--no-suite] [-- PYTEST ARGS]

From the repository root. By default every library computes on one thread
(OpenBLAS under NumPy, torch's OpenMP and MKL, XLA) and each round is timed in
CPU time of the process, so a machine busy with other work stretches no
measurement: a multi-threaded BLAS whose threads wait for a descheduled peer
loses ten times its speed on a loaded 2-core machine, and a wall-clock minimum
of a 10 ms step rarely escapes preemption there. `--threads default --timer
wall` measures the libraries' own thread counts on an idle machine.

It runs pytest-benchmark on tests/benchmarks/bench_*.py (the default `pytest`
run never collects them), which prints the summary (summary.py), then times
the conformance suite's ci profile in a subprocess with the caller's own
environment (suite_time.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .suite_time import measure, render

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TIMERS = {"cpu": "time.process_time", "wall": "time.perf_counter"}


def thread_environment(threads: str) -> dict[str, str]:
    """The variables that set each library's thread count, read when the library loads."""
    if threads == "default":
        return {}
    n = int(threads)
    xla = f"--xla_cpu_multi_thread_eigen={'false' if n == 1 else 'true'} intra_op_parallelism_threads={n}"
    return {
        "OPENBLAS_NUM_THREADS": str(n),
        "OMP_NUM_THREADS": str(n),
        "MKL_NUM_THREADS": str(n),
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {xla}".strip(),
    }


def pytest_command(timer: str, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(HERE),
        "-o",
        "python_files=bench_*.py",
        "--benchmark-only",
        "-p",
        "no:randomly",
        f"--benchmark-timer={TIMERS[timer]}",
        "--benchmark-columns=min,median,rounds",
        "--benchmark-sort=name",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1", help="threads per library, or 'default' (default: 1)")
    parser.add_argument(
        "--timer",
        choices=sorted(TIMERS),
        default="cpu",
        help="cpu: CPU time of the process (one thread only); wall: elapsed time",
    )
    parser.add_argument("--no-suite", action="store_true", help="skip timing the conformance suite")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    if args.timer == "cpu" and args.threads != "1":
        parser.error("--timer cpu adds up the CPU time of every thread: use it with --threads 1")
    command = pytest_command(args.timer, args.pytest_args)
    print("+", " ".join(f"{k}={v!r}" for k, v in thread_environment(args.threads).items()), *command[1:])
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **thread_environment(args.threads)}, check=False
    )
    if args.no_suite:
        return done.returncode
    timing = measure()
    print(render(timing.as_dict()))
    return done.returncode or (0 if timing.exit_code == 0 else 1)


if __name__ == "__main__":
    raise SystemExit(main())
