"""Prints the benchmark summary at the end of a benchmark run; adds the environment to its JSON.

The benchmark modules are named bench_*.py, so the default `pytest` run (which
collects test_*.py) never imports torch or jax for them; the README's command
selects them with `-o python_files=bench_*.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

from .summary import environment, render


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["backprop_conformance"] = environment()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if b.has_error is False and b.stats]
    if not benchmarks:
        return
    rows = [b.as_dict(include_data=False) for b in benchmarks]
    terminalreporter.write_line(render(rows, environment()))
