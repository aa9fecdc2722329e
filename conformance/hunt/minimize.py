"""Minimization: the smallest shapes and simplest values on which the same failure remains.

Greedy, as a shrinker does it: from the confirmed case, try the candidates of the
component's drawer (`conformance.hunt.populations`: fewer rows, steps, layers, units),
boldest first, and keep the first on which `confirm.check` reports the same failure (same
property, same kind of wrong); start again from it until no candidate is kept; then round
every value (`shrink.simpler_values`: ±1, halves, eighths, hundredths) and keep the
simplest rounding that still fails. Each try is one run of the property; the search stops
at `until` (a JAX shape compiles on its first run), keeping what it reached.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from conformance.case import Case
from conformance.hunt.confirm import Verdict, check
from conformance.hunt.populations import drawer_of
from conformance.hunt.shrink import simpler_values


@dataclass
class Minimized:
    case: Case
    verdict: Verdict
    steps: list[str] = field(default_factory=list)  # what was kept, in order
    tries: int = 0
    complete: bool = True  # False: stopped at the time limit


def describe_shape(case: Case) -> str:
    """ "sizes 3-8-2, N=4" for an MLP, "T=12 N=3 D=2 H=5 C=3" for an RNN, else the inputs' shapes."""
    X = case.inputs.get("X")
    if hasattr(case.spec, "sizes") and X is not None:
        return f"sizes {'-'.join(map(str, case.spec.sizes))}, N={X.shape[0]}"
    if hasattr(case.spec, "hidden_size") and X is not None:
        T, N, D = X.shape
        return f"T={T} N={N} D={D} H={case.spec.hidden_size} C={case.spec.output_size}"
    return ", ".join(f"{k}{tuple(v.shape)}" for k, v in case.inputs.items())


def minimize(case: Case, verdict: Verdict, framework: str, dtype: str, until: float) -> Minimized:
    result = Minimized(case, verdict)
    drawer = drawer_of(case.component)

    def keep(candidates: Iterator[Case]) -> Case | None:
        for candidate in candidates:
            if time.monotonic() >= until:
                result.complete = False
                return None
            result.tries += 1
            found = check(candidate, verdict.property, framework, dtype)
            if found is not None and found.same_failure(verdict):
                result.case, result.verdict = candidate, found
                return candidate
        return None

    while drawer is not None and (smaller := keep(drawer.shrink(result.case))) is not None:
        result.steps.append(describe_shape(smaller))
    for name, candidate in simpler_values(result.case):
        if keep(iter((candidate,))) is not None:
            result.steps.append(f"values {name}")
            break
        if not result.complete:
            break
    return result
