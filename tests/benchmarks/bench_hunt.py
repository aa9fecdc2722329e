"""The hunt's fast lane, per component: one population per bucket through the reference (float64
and float32), torch and JAX (each in float32 and float64), and the screen.

A round runs BUCKETS buckets of the component (the first of its fixed set, each compiled and
warmed before timing), so `cases / time` is the throughput of the fast lane on one core,
every case checked in both frameworks and both dtypes against the reference. The stages'
shares of a round (reference, torch, jax, screen) say what bounds it; the summary prints
cases/s and the shares (`python -m tests.benchmarks --no-suite -- -k hunt`).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("flax")

from conformance import frameworks
from conformance.hunt.populations import Population, drawer_of
from conformance.hunt.reference import run_population
from conformance.hunt.screen import Expected, screen
from conformance.hunt.tasks import POPULATION, population_runner
from conformance.runner import under_conventions

BUCKETS = 6
DTYPES = ("float32", "float64")


def fast_round(populations: list[Population], split: Counter[str]) -> None:
    for population in populations:
        expected: dict[Any, Expected] = {}
        for framework in ("torch", "jax"):
            spec = under_conventions(population.cases[0], frameworks.backend(framework)).spec
            started = time.process_time()
            if spec not in expected:
                expected[spec] = Expected(
                    run_population(population, spec, "float64"), run_population(population, spec, "float32")
                )
            split["reference"] += time.process_time() - started
            for dtype in DTYPES:
                started = time.process_time()
                actual = population_runner(framework)(population, spec, dtype)
                split[framework] += time.process_time() - started
                started = time.process_time()
                screen(actual, expected[spec], dtype)
                split["screen"] += time.process_time() - started


@pytest.mark.parametrize("component", ["mlp", "mlp_bn", "rnn"])
def test_hunt_fast_lane(benchmark: Any, component: str) -> None:
    drawer = drawer_of(component)
    assert drawer is not None
    buckets = drawer.buckets(component)[:BUCKETS]
    populations = [drawer.population(b, range(POPULATION[component])) for b in buckets]
    started = time.perf_counter()
    fast_round(populations, Counter())  # compiles each bucket's programs (JAX), warms torch's vmap
    first = time.perf_counter() - started
    split: Counter[str] = Counter()
    benchmark.group = "hunt fast lane"
    benchmark(fast_round, populations, split)
    total = sum(split.values())
    benchmark.extra_info.update(
        hunt=component,
        cases=sum(len(p) for p in populations),
        first_round_s=first,
        split={k: v / total for k, v in split.items()},
    )
