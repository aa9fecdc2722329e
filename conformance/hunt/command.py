"""`python -m conformance hunt`: its options, their checks, and the run.

  --minutes M | --cases N   the budget (default 10 minutes); both: whichever ends first
  --seed S                  the hunt's cases follow from it (default: drawn, and printed)
  --workers N               worker processes (default 1; 0 runs in this process)
  --address ADDR            a Dask scheduler: the tasks run on its cluster instead
  --frameworks, --dtypes, --components   what to hunt (default: everything installed)
  --out DIR                 findings, their scripts and the JAX compilation cache
  --minimize-seconds S      time for minimizing one new finding (default 30)

Exit status: 0 when the hunt wrote no new finding, 1 when it wrote one or more,
2 on a usage error (one line on stderr). Ctrl-C ends it like the budget does.
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import sys
from pathlib import Path

from conformance import frameworks, known_issues, registry
from conformance.dtypes import DTYPES
from conformance.hunt.engine import Hunt, HuntConfig
from conformance.hunt.progress import display, summary

DEFAULT_OUT = ".conformance/hunt"


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, help="wall-clock budget in minutes (default 10 without --cases)")
    p.add_argument("--cases", type=int, help="stop after this many cases")
    p.add_argument("--seed", type=int, help="makes the hunt's cases reproducible (default: drawn)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1; 0: this process)")
    p.add_argument("--address", help="a Dask scheduler's address (pip install '.[hunt]')")
    p.add_argument("--frameworks", default=",".join(frameworks.names()))
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--components", default=None, help="comma list (default: every registered one)")
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--minimize-seconds", type=float, default=30.0)


def _choices(value: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    chosen = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise ValueError(f"{option}: expected a comma list of {list(allowed)}, received {value!r}")
    return chosen


def _installed(framework: str) -> bool:
    """Whether a framework's modules are there, without importing them: the workers import
    them, and the budget's clock is already running when they do."""
    plugin = frameworks.plugins().get(framework)
    if not isinstance(plugin, frameworks.Framework):
        return False
    return all(importlib.util.find_spec(module) is not None for module in plugin.requires)


def config_of(args: argparse.Namespace) -> HuntConfig:
    """The hunt's configuration, or ValueError naming the option, expected and received."""
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"--minutes: expected a number of minutes > 0, received {args.minutes:g}")
    if args.cases is not None and args.cases <= 0:
        raise ValueError(f"--cases: expected a number of cases > 0, received {args.cases}")
    if args.workers < 0:
        raise ValueError(f"--workers: expected 0 or more worker processes, received {args.workers}")
    if not args.minimize_seconds >= 0:
        raise ValueError(f"--minimize-seconds: expected a number >= 0, received {args.minimize_seconds}")
    minutes = args.minutes if args.minutes is not None or args.cases is not None else 10.0
    chosen = _choices(args.frameworks, frameworks.names(), "--frameworks")
    installed = tuple(f for f in chosen if _installed(f))
    if not installed:
        raise ValueError(f"--frameworks: none of {list(chosen)} is installed here")
    components = _choices(args.components or ",".join(registry.names()), registry.names(), "--components")
    issues = list(known_issues.load())
    for plugin in frameworks.plugins().values():
        if isinstance(plugin, frameworks.Framework):
            for path in plugin.known_issues():
                issues.extend(known_issues.load(path))
    return HuntConfig(
        out=Path(args.out),
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31),
        minutes=minutes,
        cases=args.cases,
        workers=args.workers,
        address=args.address,
        frameworks=installed,
        dtypes=_choices(args.dtypes, DTYPES, "--dtypes"),
        components=components,
        minimize_seconds=args.minimize_seconds,
        known_issues=tuple(issues),
    )


def run_hunt(args: argparse.Namespace) -> int:
    try:
        config = config_of(args)
    except ValueError as err:
        print(f"hunt: {err}", file=sys.stderr)
        return 2
    budget = " and ".join(
        ([f"{config.minutes:g} min"] if config.minutes else [])
        + ([f"{config.cases:,} cases"] if config.cases else [])
    )
    where = config.address or (
        f"{config.workers} worker process{'es' if config.workers != 1 else ''}"
        if config.workers
        else "this process"
    )
    print(
        f"hunt: seed {config.seed}, budget {budget}, {where}; frameworks {','.join(config.frameworks)},"
        f" dtypes {','.join(config.dtypes)}; findings in {config.out}/",
        flush=True,
    )
    try:
        stats = Hunt(config, display()).run()
    except ValueError as err:  # an unreachable --address, a malformed findings.json
        print(f"hunt: {err}", file=sys.stderr)
        return 2
    print(summary(stats, str(config.out), config.seed), flush=True)
    return 1 if stats.new else 0
