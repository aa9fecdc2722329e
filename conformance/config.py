"""One run's configuration, built once by the pytest plugin (or the CLI) and passed down.

`RunConfig` is the session: which frameworks and dtypes, the device, the hypothesis
profile, where failing cases are written. `Run` is one test's view of it: the
config and the record of the report row the test fills. Nothing of a run lives in
module state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.compare import DEFAULT_REPRODUCER_DIR
from conformance.profiles import PROFILES, Profile
from conformance.record import Record

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class RunConfig:
    frameworks: tuple[str, ...] = ()  # empty: every framework installed
    dtypes: tuple[str, ...] = DTYPES
    device: str = "cpu"
    profile: Profile = field(default_factory=lambda: PROFILES["ci"])
    reproducer_dir: Path | None = DEFAULT_REPRODUCER_DIR  # None: failures write no reproducer


@dataclass(frozen=True)
class Run:
    """What one conformance test runs under: the session's config and its own record."""

    config: RunConfig = field(default_factory=RunConfig)
    record: Record | None = None
