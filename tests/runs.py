"""The run the meta-tests call conformance tests under: the ci profile, failures' reproducers
in a temporary folder of their own (never in the working tree)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from conformance.config import Run, RunConfig

META_RUN = Run(RunConfig(reproducer_dir=Path(tempfile.mkdtemp(prefix="conformance-meta-"))))
