"""The hunt's loop: a schedule of tasks, a pool that runs them, a budget that holds.

The schedule alternates the two lanes and walks each one's units round-robin in an
order shuffled by the seed: every (component, bucket) of the fast lane and every
(component, check, framework, dtype) of the property lane comes round regularly, so a
long hunt covers everything the suite can check. Task k's cases follow from (seed, k).

The budget: no task starts past the deadline (`--minutes`) or once `--cases` cases ran;
tasks stop themselves at the deadline between cases; what is still running `grace`
seconds later is stopped. Ctrl-C ends the hunt the same way. Results are merged as they
come: findings already in the folder's ledger are counted, new ones written at once.
"""

from __future__ import annotations

import math
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from conformance import frameworks, registry
from conformance.case import Case
from conformance.dtypes import rounded_case
from conformance.hunt.findings import Finding, Ledger, path_of
from conformance.hunt.populations import drawer_of
from conformance.hunt.tasks import FAST_FRAMEWORKS, POPULATION, Task, TaskResult, population_of
from conformance.hunt.workers import Crash, InlinePool, ProcessPool
from conformance.hunt.writer import write_new, write_report
from conformance.replay import load_case

ROUNDS = 64  # populations per fast task: a few seconds, against the first visit's compile
EXAMPLES = 6  # examples per property-lane task


class KnownIssueLike(Protocol):
    id: str

    def applies(self, property_id: str, component: str, framework: str, dtype: str) -> bool: ...

    def reaches(self, case: Case) -> bool | None: ...

    def describes(self, exception: str | None) -> bool: ...


@dataclass(frozen=True)
class HuntConfig:
    out: Path
    seed: int
    minutes: float | None = None
    cases: int | None = None
    workers: int = 1
    address: str | None = None
    frameworks: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("float32", "float64")
    components: tuple[str, ...] = ()
    minimize_seconds: float = 30.0
    grace: float = 5.0
    known_issues: tuple[Any, ...] = ()  # conformance.known_issues.KnownIssue, loaded by the caller


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    drawn: Counter[str] = field(default_factory=Counter)  # cases, by component
    cases: Counter[tuple[str, str, str]] = field(
        default_factory=Counter
    )  # checks: component, framework, dtype
    lanes: Counter[str] = field(default_factory=Counter)
    microseconds: Counter[str] = field(default_factory=Counter)
    new: list[Finding] = field(default_factory=list)
    seen_again: int = 0
    suspects: int = 0
    unconfirmed: int = 0
    crashes: int = 0
    tasks: int = 0
    errors: list[str] = field(default_factory=list)
    workers: Counter[str] = field(default_factory=Counter)  # tasks finished, by worker
    unconfirmed_notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    ended: float | None = None

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def total(self) -> int:
        """Cases drawn (each checked in every framework and dtype of its task)."""
        return sum(self.drawn.values())


class Schedule:
    def __init__(self, config: HuntConfig) -> None:
        rng = np.random.default_rng([config.seed, 1])
        fast = [
            (c, b)
            for c in config.components
            if (d := drawer_of(c)) is not None
            for b in range(len(d.buckets(c)))
        ]
        fast_frameworks = tuple(f for f in config.frameworks if f in FAST_FRAMEWORKS)
        checks = [
            (c, j, f, d)
            for c in config.components
            for j, check in enumerate(registry.component(c).checks)
            for f in config.frameworks
            for d in config.dtypes
            if not check.property.not_applicable(f, d)
        ]  # numpy: no property compares it with itself
        self.fast = [fast[i] for i in rng.permutation(len(fast))] if fast_frameworks else []
        self.checks = [checks[i] for i in rng.permutation(len(checks))]
        self.config, self.fast_frameworks, self.number = config, fast_frameworks, 0

    def __iter__(self) -> Iterator[Task]:
        return self

    def __next__(self) -> Task:
        self.number += 1
        k, config = self.number, self.config
        seed = int(np.random.default_rng([config.seed, 2, k]).integers(0, 2**32 - 1))
        use_fast = self.fast and (k % 2 == 1 or not self.checks)
        if use_fast:
            component, bucket = self.fast[(k // 2) % len(self.fast)]
            return Task(
                k,
                "fast",
                component,
                seed,
                self.fast_frameworks,
                config.dtypes,
                bucket,
                POPULATION[component],
                ROUNDS,
                minimize_seconds=config.minimize_seconds,
            )
        component, check, framework, dtype = self.checks[(k // 2) % len(self.checks)]
        return Task(
            k,
            "property",
            component,
            seed,
            (framework,),
            (dtype,),
            check,
            EXAMPLES,
            minimize_seconds=config.minimize_seconds,
        )


class Display(Protocol):
    def update(self, stats: Stats) -> None: ...

    def stop(self, stats: Stats) -> None: ...


def make_pool(config: HuntConfig) -> Any:
    if config.address:
        from conformance.hunt.cluster import DaskPool

        return DaskPool(config.address, config.out)
    if config.workers == 0:
        return InlinePool(config.out)
    return ProcessPool(config.workers, config.out)


def crash_finding(crash: Crash) -> Finding:
    """A worker that died: the stage it noted, the case in flight (or its population's first), its log."""
    task, stage = crash.task, crash.stage
    framework = str(stage.get("framework") or task.frameworks[0])
    dtype = str(stage.get("dtype") or task.dtypes[0])
    case = None
    if crash.case_file:
        case = load_case(crash.case_file)[0]
    elif task.lane == "fast" and "round" in stage:
        population = population_of(task, int(stage["round"]))
        case = population.cases[int(stage.get("member", 0))]
    prop = str(
        stage.get("property")
        or (
            "(population run)"
            if task.lane == "fast"
            else registry.component(task.component).checks[task.index].property.id
        )
    )
    try:
        version = frameworks.backend(framework).version()
    except Exception:  # the framework itself may be what fails to load
        version = "?"
    signal = -crash.exitcode if crash.exitcode is not None and crash.exitcode < 0 else None
    how = f"signal {signal}" if signal else f"exit status {crash.exitcode}"
    return Finding(
        task.component,
        prop,
        framework,
        version,
        dtype,
        path_of(case) if case else "",
        "",
        "crash",
        message=f"worker {crash.worker} died ({how}) at stage {stage or 'unknown'}"
        f" of task {task.number} ({task.lane} lane)",
        lane=task.lane,
        origin=f"task {task.number}, stage {stage.get('stage', '?')}",
        log=crash.log,
        case=case,
        minimized=False,
    )


def _stop(signum: int, frame: object) -> None:
    """Ctrl-C and SIGTERM end the hunt as its budget does (even where SIGINT came in ignored,
    as in a job started with `&`)."""
    raise KeyboardInterrupt


class Hunt:
    def __init__(self, config: HuntConfig, display: Display) -> None:
        self.config, self.display = config, display
        self.ledger = Ledger(config.out)
        self.stats = Stats()

    def known_issue(self, finding: Finding) -> str:
        for issue in self.config.known_issues:
            if not issue.applies(finding.property, finding.component, finding.framework, finding.dtype):
                continue
            # an issue scoped to the cases that reach it (conformance.scopes) matches those only
            case = None if finding.case is None else rounded_case(finding.case.with_dtype(finding.dtype))
            raised = finding.parameter if finding.kind == "exception" else None  # the exception's name
            if (case is None or issue.reaches(case) is not False) and issue.describes(raised):
                return f"{issue.id} ({issue.kind}: {issue.link})"
        return ""

    def absorb(self, result: TaskResult | Crash) -> None:
        stats = self.stats
        if isinstance(result, Crash):
            stats.crashes += 1
            findings = [crash_finding(result)]
        else:
            stats.tasks += 1
            stats.workers[result.worker] += 1
            stats.cases.update(result.cases)
            stats.drawn[result.task.component] += result.drawn
            stats.lanes[result.task.lane] += result.drawn
            stats.microseconds.update(result.microseconds)
            stats.suspects += result.suspects
            stats.unconfirmed += result.unconfirmed
            stats.unconfirmed_notes += result.unconfirmed_notes[: 20 - len(stats.unconfirmed_notes)]
            if result.error:
                stats.errors.append(result.error)
            findings = result.findings
        for finding in findings:
            known = self.ledger.find(finding.signature())
            if known is not None:
                known.count += finding.count
                known.aliases += [a for a in finding.aliases if a not in known.aliases]
                stats.seen_again += finding.count
                continue
            if finding.case is None and finding.kind != "crash":
                continue  # known to the task when it ran, but not written yet: the writer's finding counts
            finding.known_issue = self.known_issue(finding)
            write_new(self.ledger, finding)
            stats.new.append(finding)

    def spent(self, deadline: float) -> bool:
        cases = self.config.cases
        return time.time() >= deadline or (cases is not None and self.stats.total() >= cases)

    def run(self) -> Stats:
        config = self.config
        deadline = time.time() + 60 * config.minutes if config.minutes else math.inf
        pool = make_pool(config)
        schedule = Schedule(config)
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.spent(deadline):
                while pool.idle() and not self.spent(deadline):
                    task = next(schedule)
                    changes: dict[str, Any] = {"deadline": deadline, "known": self.ledger.signatures()}
                    if config.cases is not None and task.lane == "fast":  # no task far past the budget
                        left = config.cases - self.stats.total()
                        changes["rounds"] = max(1, min(task.rounds, math.ceil(left / task.size)))
                    pool.submit(Task(**{**task.__dict__, **changes}))
                for result in pool.wait(0.25):
                    self.absorb(result)
                self.display.update(self.stats)
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            budget = 60 * config.minutes if config.minutes else math.inf
            grace = 1.0 if self.stats.interrupted else min(config.grace, max(1.0, budget / 10))
            for result in pool.close(grace):
                self.absorb(result)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stats.ended = time.monotonic()
            self.ledger.save()
            write_report(self.ledger)
            self.display.stop(self.stats)
        return self.stats
