"""`python -m conformance`: run the suite and print the matrix; replay a reproducer; hunt.

  python -m conformance [run] [--frameworks ..] [--dtypes ..] [--device cpu|cuda]
                        [--profile ci|dev|thorough] [--report PATH] [-- PYTEST ARGS]
  python -m conformance replay FILE [--framework F] [--dtype D] [--device D]
  python -m conformance hunt [--minutes M] [--out DIR] [--frameworks ..]
  python -m conformance diff OLD.json NEW.json [--factor F] [--floor R] [--ignore-device] [--strict]
  python -m conformance golden [--write] [--force] [--components a,b]

Exit status: 0 when every row passed (or carries a known issue), 1 when a
property failed or a known issue no longer reproduces, 2 on a usage error.
diff: 0 when nothing regressed, 1 when something did (conformance/diff.py).
golden: 0 when the stored golden set is up to date (or was written), 1 when it
differs or a write was refused (conformance/golden/regenerate.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conformance import frameworks, registry
from conformance.framework import DEVICES
from conformance.report import read_report
from conformance.report.matrix import text

DEFAULT_REPORT = ".conformance/report.json"


def pytest_args(args: argparse.Namespace, report: str, profile: str) -> list[str]:
    return [
        "--pyargs", *registry.test_packages(),
        "-p", "no:cacheprovider",
        "-q", "--no-header", "-r", "fE",
        "-W", "ignore:`torch.jit.script` is deprecated:DeprecationWarning",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",  # this process imported conformance first
        "--frameworks", args.frameworks,
        "--dtypes", args.dtypes,
        "--device", args.device,
        "--conformance-profile", profile,
        "--conformance-report", report,
        *args.pytest_args,
    ]


def cmd_run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    code = pytest.main(pytest_args(args, args.report, args.profile))
    elapsed = time.perf_counter() - started
    if not Path(args.report).is_file():
        return int(code) or 2
    print()
    print(text(read_report(args.report), Path(args.report).parent))
    print(f"report: {args.report} (and {Path(args.report).with_suffix('.md')}); {elapsed:.1f} s")
    return 0 if code == pytest.ExitCode.OK else 1


def cmd_replay(args: argparse.Namespace) -> int:
    from conformance.compare import ConformanceFailure
    from conformance.component import NotApplicable
    from conformance.config import Run, RunConfig
    from conformance.replay import find_property, load_case
    from conformance.runner import run_property

    case, meta = load_case(args.file)
    framework = args.framework or meta.get("framework", "numpy")
    dtype = args.dtype or meta.get("dtype", "float64")
    device = args.device or meta.get("device", "cpu")
    prop = find_property(case.component, str(meta.get("property")))
    print(f"replaying {prop.id} on {framework} {dtype} {device}: {case.describe()}")
    try:
        run_property(prop, case, framework, dtype, Run(RunConfig(device=device, reproducer_dir=None)))
    except ConformanceFailure as failure:
        print(failure)
        return 1
    except NotApplicable as err:
        print(f"not applicable: {err}")
        return 2
    print("passed: the implementations agree on this case")
    return 0


def cmd_hunt(args: argparse.Namespace) -> int:
    """Rounds of the hunt profile (fresh random seeds, free shapes) until the time is spent.

    Each round is its own process: a framework that crashes (a segmentation fault in a
    compiler, say) ends that round, is reported with the round's log, and the hunt goes on.
    """
    out = Path(args.out)
    deadline = time.monotonic() + 60 * args.minutes
    failures: set[str] = set()
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        folder = out / f"round-{rounds:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        report = str(folder / "report.json")
        log = folder / "log.txt"
        with log.open("w") as fh:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", *pytest_args(args, report, "hunt")],
                stdout=fh, stderr=subprocess.STDOUT, check=False,
            )
        if done.returncode < 0:  # killed by a signal: the framework crashed the process
            failures.add(f"round {rounds}: the process died with signal {-done.returncode}: {log}")
        if Path(report).is_file():
            for row in read_report(report)["rows"]:
                if row["status"] == "failed":
                    failures.add(f"{row['component']} {row['property']} {row['framework']}"
                                 f" {row['dtype']}: {row['reproducer'] or 'see report'}")
    print(f"hunt: {rounds} rounds in {args.minutes} min; {len(failures)} failing rows")
    for line in sorted(failures):
        print("  " + line)
    return 1 if failures else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from conformance.diff import run

    try:
        return run(args.old, args.new, factor=args.factor, floor=args.floor,
                   ignore_device=args.ignore_device, strict=args.strict, html=args.html)
    except ValueError as err:
        print(f"diff: {err}", file=sys.stderr)
        return 2


def cmd_golden(args: argparse.Namespace) -> int:
    from conformance.golden.regenerate import command
    from conformance.golden.storage import GoldenDataError

    only = [n.strip() for n in args.components.split(",") if n.strip()] if args.components else None
    try:
        return command(write=args.write, force=args.force, only=only)
    except (ValueError, GoldenDataError) as err:
        print(f"golden: {err}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")

    def suite_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("--frameworks", default=",".join(frameworks.names()))
        q.add_argument("--dtypes", default="float32,float64")
        q.add_argument("--device", default="cpu", choices=DEVICES)
        q.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")

    run = sub.add_parser("run", help="run the suite and print the matrix (the default)")
    suite_options(run)
    run.add_argument("--profile", default="ci", choices=("ci", "dev", "thorough"))
    run.add_argument("--report", default=DEFAULT_REPORT)
    replay = sub.add_parser("replay", help="rerun one stored reproducer")
    replay.add_argument("file")
    replay.add_argument("--framework", choices=frameworks.names())
    replay.add_argument("--dtype", choices=("float32", "float64"))
    replay.add_argument("--device", choices=DEVICES)
    hunt = sub.add_parser("hunt", help="search with fresh random cases until the time is spent")
    suite_options(hunt)
    hunt.add_argument("--minutes", type=float, default=10.0)
    hunt.add_argument("--out", default=".conformance/hunt")
    diff = sub.add_parser("diff", help="compare two reports: changed status, moved worst error")
    diff.add_argument("old", help="the baseline report (JSON)")
    diff.add_argument("new", help="the report to judge (JSON)")
    diff.add_argument("--html", metavar="PATH", help="also draw the diff as a self-contained HTML page")
    diff.add_argument("--factor", type=float, default=10.0,
                      help="list a row whose worst error moved by this factor or more (default 10)")
    diff.add_argument("--floor", type=float, default=1e-3,
                      help="worst errors below this many tolerances count as this (default 1e-3)")
    diff.add_argument("--ignore-device", action="store_true",
                      help="match rows across devices (automatic when each report has one device)")
    diff.add_argument("--strict", action="store_true",
                      help="also fail on removed rows, rows that stopped running and worse moves")
    golden = sub.add_parser("golden", help="regenerate the golden set and compare it with the stored one")
    golden.add_argument("--write", action="store_true", help="write new components and cases")
    golden.add_argument("--force", action="store_true", help="with --write: overwrite changed values")
    golden.add_argument("--components", help="comma list of components (default: all)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv = ["run", *argv]
    args = parser().parse_args(argv)
    commands = {"run": cmd_run, "replay": cmd_replay, "hunt": cmd_hunt, "diff": cmd_diff,
                "golden": cmd_golden}
    return commands[args.command](args)
