"""One unit of hunting, as a worker runs it: a few populations of one bucket (the fast lane) or
a few examples of one check (the property lane); confirmed failures come back minimized.

A task is plain data (it travels to worker processes and Dask workers) and deterministic:
its cases follow from its seed, so a hunt's `--seed` fixes every task it runs. A task stops
early at its deadline (wall-clock time), never in the middle of a case.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import HypothesisException

from conformance import frameworks, registry
from conformance.case import Case
from conformance.components.activations.strategies import component_name
from conformance.hunt import confirm
from conformance.hunt.findings import Finding
from conformance.hunt.minimize import describe_shape, minimize
from conformance.hunt.populations import REGIMES, Population, drawer_of
from conformance.hunt.reference import Results, run_population
from conformance.hunt.screen import Expected, screen
from conformance.profiles import PROFILES
from conformance.runner import under_conventions
from refimpl.smooth import NAMES as SMOOTH

FAST_FRAMEWORKS = ("torch", "jax")  # frameworks with a population runner (population_runner)
POPULATION = {
    "mlp": 64,
    "mlp_bn": 32,
    "rnn": 16,
    "rnn_truncated": 16,  # members per population
    **{component_name(a): 64 for a in SMOOTH},
}
Mark = Callable[..., None]  # the worker's note of what it is about to run (read after a crash)


@dataclass(frozen=True)
class Task:
    number: int
    lane: str  # "fast" or "property"
    component: str
    seed: int
    frameworks: tuple[str, ...]
    dtypes: tuple[str, ...]
    index: int  # fast: the bucket; property: the check of the component's record
    size: int  # fast: members per population; property: examples
    rounds: int = 1  # fast: populations
    deadline: float = math.inf  # time.time() past which the task stops
    minimize_seconds: float = 30.0
    known: frozenset[str] = frozenset()  # signatures already written: counted, not minimized


@dataclass
class TaskResult:
    task: Task
    drawn: int = 0  # cases: population members, or examples of the property lane
    cases: Counter[tuple[str, str, str]] = field(
        default_factory=Counter
    )  # checks: (component, framework, dtype)
    findings: list[Finding] = field(default_factory=list)
    suspects: int = 0  # screened members sent to confirmation
    unconfirmed: int = 0  # of which the property passed on the member alone
    # time spent in the reference, the framework, the screen, confirming, minimizing
    microseconds: Counter[str] = field(default_factory=Counter)
    worker: str = ""
    error: str = ""  # a population runner that failed where the single case did not
    unconfirmed_notes: list[str] = field(default_factory=list)  # what the screen flagged in vain


def population_runner(framework: str) -> Callable[[Population, object, str], Results]:
    if framework == "torch":
        from conformance.hunt import torch_populations

        return torch_populations.run
    from conformance.hunt import jax_populations

    return jax_populations.run


def _fast_frameworks(task: Task) -> list[str]:
    return [f for f in task.frameworks if f in FAST_FRAMEWORKS and frameworks.skip_reason(f) is None]


def population_of(task: Task, round_: int) -> Population:
    """The population of round `round_` of a fast task (drawn again after a crash)."""
    drawer = drawer_of(task.component)
    assert drawer is not None
    rng = np.random.default_rng([task.seed, round_])
    seeds = [int(s) for s in rng.integers(0, 2**32 - 1, task.size)]
    regime = list(REGIMES)[round_ % len(REGIMES)]  # the value regimes in turn, "standard" first
    return drawer.population(drawer.buckets(task.component)[task.index], seeds, regime)


def run_task(task: Task, mark: Mark = lambda **stage: None) -> TaskResult:
    result = TaskResult(task)
    if task.lane == "fast":
        _fast(task, result, mark)
    else:
        _property(task, result, mark)
    return result


def _timed(result: TaskResult, what: str, started: float) -> None:
    result.microseconds[what] += round((time.perf_counter() - started) * 1e6)


def _fast(task: Task, result: TaskResult, mark: Mark) -> None:
    for round_ in range(task.rounds):
        if time.time() >= task.deadline:
            return
        population = population_of(task, round_)
        result.drawn += len(population)
        references: dict[object, Expected] = {}
        for framework in _fast_frameworks(task):
            spec = under_conventions(population.cases[0], frameworks.backend(framework)).spec
            if spec not in references:
                started = time.perf_counter()
                mark(stage="reference", round=round_)
                references[spec] = Expected(
                    run_population(population, spec, "float64"), run_population(population, spec, "float32")
                )
                _timed(result, "reference", started)
            expected = references[spec]
            for dtype in task.dtypes:
                mark(stage="population", framework=framework, dtype=dtype, round=round_)
                started = time.perf_counter()
                try:
                    actual = population_runner(framework)(population, spec, dtype)
                except Exception as err:  # the single case decides whether it is the framework's
                    _timed(result, "framework", started)
                    suspects, notes = [(0, "gradient-agreement")], {}
                    result.error = f"{framework} {dtype} population of {population.bucket.label()}: {err!r}"
                else:
                    _timed(result, "framework", started)
                    started = time.perf_counter()
                    flagged = screen(actual, expected, dtype)
                    suspects = [(s.member, s.property) for s in flagged]
                    notes = {s.member: f"{s.group} {s.parameter} {s.ratio:.3g}" for s in flagged}
                    _timed(result, "screen", started)
                result.cases[(task.component, framework, dtype)] += len(population)
                for member, property_id in suspects:
                    result.suspects += 1
                    case = population.cases[member]
                    mark(stage="confirm", framework=framework, dtype=dtype, round=round_, member=member)
                    started = time.perf_counter()
                    verdict = confirm.check(case, property_id, framework, dtype)
                    _timed(result, "confirm", started)
                    if verdict is None:
                        result.unconfirmed += 1
                        where = f"{framework} {dtype} {population.bucket.label()} member {member}"
                        result.unconfirmed_notes.append(f"{where}: {notes.get(member)}")
                    else:
                        _report(task, result, case, verdict, framework, dtype, "fast")


def _property(task: Task, result: TaskResult, mark: Mark) -> None:
    component = registry.component(task.component)
    prop = component.checks[task.index].property
    framework, dtype = task.frameworks[0], task.dtypes[0]
    if frameworks.skip_reason(framework) or prop.not_applicable(framework, dtype):
        return
    found: list[tuple[Case, confirm.Verdict]] = []

    @settings(
        max_examples=task.size,
        phases=[Phase.generate],
        derandomize=False,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(task.seed)
    @given(case=component.checks[task.index].cases(PROFILES["hunt"].for_dtype(dtype)))
    def examples(case: Case) -> None:
        if time.time() >= task.deadline:
            return
        mark(stage="property", framework=framework, dtype=dtype, property=prop.id, case=case)
        started = time.perf_counter()
        verdict = confirm.check(case, prop.id, framework, dtype)
        _timed(result, "property", started)
        result.drawn += 1
        result.cases[(task.component, framework, dtype)] += 1
        if verdict is not None:
            found.append((case, verdict))

    with contextlib.suppress(HypothesisException):  # every example rejected: nothing found
        examples()
    for case, verdict in found:
        _report(task, result, case, verdict, framework, dtype, "property")


def _report(
    task: Task,
    result: TaskResult,
    case: Case,
    verdict: confirm.Verdict,
    framework: str,
    dtype: str,
    lane: str,
) -> None:
    """A confirmed failure: counted if its signature is known (here or before), else minimized.
    A wrong value arbitrated as rounding is noted, not reported (conformance.hunt.confirm)."""
    if verdict.rounding:
        result.unconfirmed_notes.append(
            f"{framework} {dtype} {case.component} seed {case.seed}: {verdict.message.splitlines()[0]}"
        )
        return
    version = frameworks.backend(framework).version()
    finding = Finding.of(
        case,
        verdict,
        framework,
        version,
        dtype,
        lane=lane,
        origin=f"{describe_shape(case)}, seed {case.seed}",
    )
    signature = finding.signature()
    for seen in result.findings:
        if signature == seen.signature() or signature in seen.aliases:
            seen.count += 1
            return
    if signature in task.known:
        finding.case = None  # met before: counted by the hunt, not written again
        result.findings.append(finding)
        return
    started = time.perf_counter()
    until = time.monotonic() + max(0.0, min(task.minimize_seconds, task.deadline - time.time()))
    small = minimize(case, verdict, framework, dtype, until)
    _timed(result, "minimize", started)
    minimized = Finding.of(
        small.case,
        small.verdict,
        framework,
        version,
        dtype,
        lane=lane,
        origin=finding.origin,
        shrink=small.steps,
        minimized=small.complete,
        aliases=[signature],
    )
    for seen in result.findings:
        if minimized.signature() == seen.signature():
            seen.count += 1
            seen.aliases.append(signature)
            return
    if minimized.signature() in task.known:
        minimized.case = None
    result.findings.append(minimized)
