"""`python -m conformance stress`: many boundary cases per component, against the tolerance table.

For each component with a `Boundary` (its folder's boundary.py: 1-element tensors, width
1, H = 1, N = 1..4, vanished gradients, deep batch-norm chains), the shapes take turns,
a new seed each round, until the component has run its checks: a few dozen shapes, so
each compiled function serves hundreds of seeds. Every case runs the boundary's
agreement properties in every framework and dtype chosen. A check is one
property on one case in one framework and dtype. The command prints, per component, the
checks run, those that could not run (a framework that refuses the case: torch's batch of
one in training), the failures, and the worst errors in tolerances (median, 99th
percentile, largest, per dtype); every failure is arbitrated ("rounding" or
"disagreement") and leaves a reproducer. It exits 1 when a check failed.

Components run one after the other in worker processes (`--jobs`), each component's
checks in one process.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conformance import frameworks, registry
from conformance.backend import Unsupported
from conformance.compare import ConformanceFailure
from conformance.component import NotApplicable
from conformance.config import Run, RunConfig
from conformance.record import Record
from conformance.runner import arbitrate, run_property


@dataclass
class Tally:
    """One component's counts and worst errors (tolerances) per dtype."""

    component: str
    checks: int = 0
    not_run: dict[str, int] = field(default_factory=dict)  # reason -> count
    not_applicable: int = 0  # checks whose property is not about the case (eval mode, say)
    failures: list[str] = field(default_factory=list)  # first lines of the arbitrated messages
    ratios: dict[str, list[float]] = field(default_factory=dict)  # dtype -> worst of each check
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        quantiles = {
            dtype: {
                "median": float(np.median(r)),
                "p99": float(np.quantile(r, 0.99)),
                "max": float(np.max(r)),
            }
            for dtype, r in self.ratios.items()
            if r
        }
        return {
            "component": self.component,
            "checks": self.checks,
            "not_run": self.not_run,
            "not_applicable": self.not_applicable,
            "failures": self.failures,
            "worst_ratio": quantiles,
            "seconds": round(self.seconds, 1),
        }


def stress_component(
    name: str, checks: int, fws: Sequence[str], dtypes: Sequence[str], seed: int, out: str
) -> dict[str, Any]:
    """Run one component's boundary cases: at least `checks` checks (if none are skipped)."""
    component = registry.component(name)
    tally = Tally(name)
    boundary = component.boundary
    if boundary is None:
        tally.not_run["no boundary cases"] = 1
        return tally.summary()
    started = time.perf_counter()
    config = RunConfig(frameworks=tuple(fws), dtypes=tuple(dtypes), reproducer_dir=Path(out) / "reproducers")
    rounds = 0
    while tally.checks < checks and rounds < 10 * checks:  # every shape in turn, a new seed each round
        for s, shape in enumerate(boundary.shapes):
            case = boundary.case(shape, seed * 1_000_003 + s * 10_007 + rounds)
            for prop in boundary.properties:
                for framework in fws:
                    for dtype in dtypes:
                        check(tally, prop, case, framework, dtype, config)
        rounds += 1
        if rounds % 20 == 0:
            print(
                f"  ... {name}: {tally.checks} checks, {len(tally.failures)} failed,"
                f" {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    tally.seconds = time.perf_counter() - started
    return tally.summary()


def check(tally: Tally, prop: Any, case: Any, framework: str, dtype: str, config: RunConfig) -> None:
    record = Record(prop.id, case.component, framework, dtype, config.device)
    run = Run(config, record)
    try:
        run_property(prop, case, framework, dtype, run)
    except NotApplicable:  # the property is not about this case (eval-agreement on a training case)
        tally.not_applicable += 1
        return
    except (Unsupported, ValueError) as err:  # ValueError: a framework refusing the case
        reason = f"{framework} {type(err).__name__}: {str(err).splitlines()[0][:70]}"
        tally.not_run[reason] = tally.not_run.get(reason, 0) + 1
        return
    except ConformanceFailure as failure:
        message = str(arbitrate(prop, failure, Run(config)))
        tally.failures.append(
            message.splitlines()[0] + f" [{prop.id}, {framework} {dtype}, {failure.reproducer}]"
        )
    except Exception as err:  # a crash is a failure of its own, and the other checks go on
        tally.failures.append(
            f"raised {type(err).__name__}: {str(err)[:200]} [{prop.id}, {framework}"
            f" {dtype}, {case.describe()}]"
        )
    tally.checks += 1
    if record.worst is not None:
        tally.ratios.setdefault(dtype, []).append(record.worst.ratio)


def command(
    components: Sequence[str],
    checks: int,
    fws: Sequence[str],
    dtypes: Sequence[str],
    seed: int,
    out: str,
    jobs: int,
) -> int:
    names = list(components) or [n for n in registry.names() if registry.component(n).boundary]
    usable = [f for f in fws if f != frameworks.REFERENCE.name and frameworks.skip_reason(f) is None]
    Path(out).mkdir(parents=True, exist_ok=True)
    print(f"stress: {', '.join(names)}; {checks} checks each over {', '.join(usable)} x {', '.join(dtypes)}")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(stress_component, n, checks, usable, dtypes, seed, out) for n in names]
        results = [f.result() for f in futures]
    total = sum(r["checks"] for r in results)
    failures = sum(len(r["failures"]) for r in results)
    for r in results:
        worst = "; ".join(
            f"{d} median {q['median']:.2g} p99 {q['p99']:.2g} max {q['max']:.2g}"
            for d, q in r["worst_ratio"].items()
        )
        skipped = sum(r["not_run"].values())
        print(
            f"  {r['component']:<14} {r['checks']:>7} checks, {len(r['failures'])} failed,"
            f" {skipped} not run, {r['seconds']:.0f} s; worst (tolerances): {worst}"
        )
        for reason, n in r["not_run"].items():
            print(f"      not run {n}x: {reason}")
        for line in r["failures"][:20]:
            print(f"      FAILED {line}")
    (Path(out) / "stress.json").write_text(json.dumps({"seed": seed, "results": results}, indent=1))
    print(
        f"stress: {total} checks, {failures} failed, {time.perf_counter() - started:.0f} s;"
        f" {Path(out) / 'stress.json'}"
    )
    return 1 if failures else 0
