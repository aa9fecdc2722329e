"""Hypothesis profiles of the suite: ci, dev, thorough (and hunt, for the hunt mode).

* ci: derandomized (the same examples every run, so a red CI is reproducible),
  bounded: few examples per property and shapes from a fixed catalog, so the
  whole suite stays within its time budget on 2 cores.
* dev: random, more examples, shapes drawn freely within bounds.
* thorough: at least 1,000 examples per property.
* hunt: fresh random seeds and free shapes; the property lane of `python -m conformance
  hunt` (conformance/hunt/) draws each check's cases under it, a few at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, settings


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int
    bounded_shapes: bool  # draw architectures from the fixed catalog
    derandomize: bool
    shrink: bool = True  # off: a failure is reported as first found (meta-tests, quick triage)

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


_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]

PROFILES = {
    "ci": Profile("ci", 12, True, True),
    "dev": Profile("dev", 60, False, False),
    "thorough": Profile("thorough", 1000, False, False),
    "hunt": Profile("hunt", 200, False, False),
}


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile: expected one of {list(PROFILES)}, received {name!r}")
    return PROFILES[name]
