"""Hypothesis profiles of the suite: ci, dev, thorough (and hunt, for the hunt mode).

* ci: derandomized (the same examples every run, so a red CI is reproducible),
  bounded: few examples per property and shapes from a fixed catalog, so the
  whole suite stays within its time budget on 2 cores.
* dev: random, more examples, shapes drawn freely within bounds.
* thorough: at least 1,000 examples per property.
* hunt: fresh random seeds and free shapes; the property lane of `python -m conformance
  hunt` (conformance/hunt/) draws each check's cases under it, a few at a time.
Shrinking a failure is bounded per failing test (`shrink_seconds`, `shrink_steps`):
hypothesis stops at whichever comes first and reports the smallest failing case found
so far (its own limits, 300 s and 500 steps, once made one thorough test take 20
minutes, most of it shrinking).

A test runs its profile for its dtype (`for_dtype`): strategies read `dtype` to draw
magnitudes across that dtype's range (tiny, subnormal, near overflow), and the float16 and
bfloat16 rows of a bounded profile draw `low_precision_examples` cases (each dtype is a new
XLA compilation of every shape it meets). The failing example prints as the case's one-line
description (Case.__repr__: spec, shapes, seed); the arrays are in its reproducer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, Phase, reporting, settings
from hypothesis.internal.conjecture import engine

from conformance.dtypes import LOW_PRECISION


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    bounded_shapes: bool  # draw architectures from the fixed catalog
    derandomize: bool
    shrink: bool = True  # off: a failure is reported as first found (meta-tests, quick triage)
    shrink_seconds: float = 60.0  # per failing test: shrinking stops after this long ...
    shrink_steps: int = 100  # ... or after this many successful shrinks
    dtype: str = "float64"  # the dtype of the test drawing: extreme values are drawn from its range
    low_precision_examples: int | None = None  # float16, bfloat16 rows: at most this many examples

    def for_dtype(self, dtype: str) -> Profile:
        """This profile for a test in `dtype`: its range for the strategies, its examples."""
        examples = self.max_examples
        if dtype in LOW_PRECISION and self.low_precision_examples is not None:
            examples = min(examples, self.low_precision_examples)
        return replace(self, dtype=dtype, max_examples=examples)

    def hypothesis_settings(self) -> settings:
        """The hypothesis settings of a test run under this profile."""
        phases = [p for p in Phase if self.shrink or p is not Phase.shrink]
        return settings(
            max_examples=self.max_examples,
            phases=phases,
            derandomize=self.derandomize,
            deadline=None,  # the first call of a new shape compiles; time is measured in benchmarks
            suppress_health_check=_SUPPRESSED,
            print_blob=True,
            database=None,
        )

    @contextmanager
    def shrink_budget(self) -> Iterator[None]:
        """Within: hypothesis shrinks for at most shrink_seconds and shrink_steps (its engine's
        MAX_SHRINKING_SECONDS and MAX_SHRINKS, module constants it keeps for this purpose),
        and says so in these words instead of its own (which name five minutes)."""
        saved = engine.MAX_SHRINKING_SECONDS, engine.MAX_SHRINKS
        engine.MAX_SHRINKING_SECONDS = self.shrink_seconds  # type: ignore[assignment]  # int in its stub
        engine.MAX_SHRINKS = self.shrink_steps
        report = reporting.current_reporter()

        def reporter(text: object) -> None:
            if "working to shrink a failing test case" in str(text):
                text = (
                    f"shrinking stopped at the {self.name} profile's budget ({self.shrink_seconds:g} s"
                    f" or {self.shrink_steps} shrinks): the smallest failing example found follows"
                )
            report(text)

        try:
            with reporting.with_reporter(reporter):
                yield
        finally:
            engine.MAX_SHRINKING_SECONDS, engine.MAX_SHRINKS = saved


_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]

PROFILES = {
    "ci": Profile("ci", 12, True, True, shrink_seconds=30.0, shrink_steps=50, low_precision_examples=4),
    "dev": Profile("dev", 60, False, False, shrink_seconds=60.0, shrink_steps=100),
    "thorough": Profile("thorough", 1000, False, False, shrink_seconds=120.0, shrink_steps=200),
    "hunt": Profile("hunt", 200, False, False, shrink_seconds=60.0, shrink_steps=100),
}


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile: expected one of {list(PROFILES)}, received {name!r}")
    return PROFILES[name]
