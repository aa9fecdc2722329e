"""One run's configuration, built once by the pytest plugin (or the CLI) and passed down.

`RunConfig` is the session: which frameworks and dtypes, the device, the hypothesis
profile, where failing cases are written. `Run` is one test's view of it: the
config and the record of the report row the test fills. Nothing of a run lives in
module state.

A report row keeps at most one reproducer, named by the row's key
(`reproducer_name`): a failure writes its case there, and the row's next run
replaces or removes it, so the folder never holds more files than the suite has rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from conformance.dtypes import DTYPES
from conformance.profiles import PROFILES, Profile
from conformance.record import Record

DEFAULT_REPRODUCER_DIR = Path(".conformance/reproducers")


def reproducer_name(component: str, property_id: str, framework: str, dtype: str, device: str) -> str:
    """The file of one report row's reproducer: `mlp.gradient-agreement.torch.float64.cpu.npz`."""
    return f"{component}.{property_id}.{framework}.{dtype}.{device}.npz"


@dataclass(frozen=True)
class RunConfig:
    frameworks: tuple[str, ...] = ()  # empty: every framework installed
    dtypes: tuple[str, ...] = DTYPES
    device: str = "cpu"
    profile: Profile = field(default_factory=lambda: PROFILES["ci"])
    reproducer_dir: Path | None = DEFAULT_REPRODUCER_DIR  # None: failures write no reproducer

    def reproducer_path(self, component: str, property_id: str, framework: str, dtype: str) -> Path | None:
        """Where the row (component, property, framework, dtype, this device) keeps its case."""
        if self.reproducer_dir is None:
            return None
        return self.reproducer_dir / reproducer_name(component, property_id, framework, dtype, self.device)


@dataclass(frozen=True)
class Run:
    """What one conformance test runs under: the session's config and its own record."""

    config: RunConfig = field(default_factory=RunConfig)
    record: Record | None = None
