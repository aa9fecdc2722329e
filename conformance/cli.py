"""`python -m conformance`: run the suite and print the matrix, replay a reproducer, hunt,
compare two reports, check the golden set.

  python -m conformance [run] [--frameworks LIST] [--dtypes LIST] [--device cpu|cuda]
                        [--allow-missing] [--profile ci|dev|thorough] [--max-examples N]
                        [--report PATH] [-- PYTEST ARGS]
  python -m conformance replay FILE [--framework F] [--dtype D] [--device D]
  python -m conformance hunt [--minutes M | --cases N] [--seed S] [--workers N] [--address A] [--out DIR]
  python -m conformance diff OLD.json NEW.json [--html PATH] [--factor F] [--floor R]
                             [--ignore-device] [--strict]
  python -m conformance golden [--write] [--force] [--components a,b]
  python -m conformance stress [--checks N] [--components a,b] [--frameworks ..] [--dtypes ..] [--jobs J]

Exit status:
  run     0: every row passed or is a known issue that reproduces; 1: a row failed or raised,
          or a known issue no longer reproduces; 4: a usage error (an option, or a framework
          or device asked for but missing); 2: no report was written for another reason
          (interrupted, internal error, no test selected), and no matrix is printed
  replay  0: the case passes; 1: the failure reproduced; 2: FILE is not a reproducer, or its
          framework or property cannot run here
  hunt    0: no new finding was written; 1: one or more were (conformance/hunt/); 2: a usage error
  diff    0: nothing regressed; 1: a row regressed, or NEW ran nothing; 2: a report is missing
          or malformed
  golden  0: the stored golden set is current (or was written); 1: it differs, or --write
          refused; 2: an unknown component or unreadable golden data
  stress  0: every boundary check agreed; 1: one failed (conformance/stress.py)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conformance import frameworks, registry
from conformance.framework import DEVICES
from conformance.report import paths, read_report, remove
from conformance.report.matrix import text

DEFAULT_REPORT = ".conformance/report.json"
USAGE = 2  # a usage error of the CLI's own commands; `run` answers as pytest does (4)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line and the command's own exit status."""

    status = USAGE
    commands: dict[str, Parser]

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(self.status, f"{self.prog}: {message} (see {self.prog} --help)\n")


def pytest_args(args: argparse.Namespace, report: str, profile: str) -> list[str]:
    given = {
        "frameworks": args.frameworks,
        "dtypes": args.dtypes,
        "device": args.device,
        "max-examples": args.max_examples,
    }
    return [
        "--pyargs",
        *registry.test_packages(),
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "-r",
        "fE",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",  # this process imported conformance first
        *[arg for name, value in given.items() if value for arg in (f"--conformance-{name}", value)],
        *(["--conformance-allow-missing"] if args.allow_missing else []),
        "--conformance-profile",
        profile,
        "--conformance-report",
        report,
        *args.pytest_args,
    ]


def check_suite_options(args: argparse.Namespace) -> str:
    """What is wrong with the options `run` passes on to pytest, or ''."""
    from conformance.dtypes import DTYPES
    from conformance.session import comma_list, whole_number

    try:
        if args.frameworks:
            comma_list(args.frameworks, frameworks.names(), "--frameworks")
        if args.dtypes:
            comma_list(args.dtypes, DTYPES, "--dtypes")
        if args.max_examples:
            whole_number(args.max_examples, "--max-examples")
    except pytest.UsageError as err:
        return str(err)
    return ""


def cmd_run(args: argparse.Namespace) -> int:
    remove(args.report)  # so that a matrix printed below is always this run's
    started = time.perf_counter()
    code = pytest.main(pytest_args(args, args.report, args.profile))
    elapsed = time.perf_counter() - started
    if not Path(args.report).is_file():
        if code == pytest.ExitCode.USAGE_ERROR:
            return int(code)  # pytest has said what was wrong, in one line
        print(
            f"python -m conformance: no report was written (pytest's exit status {int(code)}:"
            f" {pytest.ExitCode(code).name.lower().replace('_', ' ')}), so no matrix",
            file=sys.stderr,
        )
        return 2
    print()
    print(text(read_report(args.report), Path(args.report).parent))
    print(f"report: {', '.join(str(p) for p in paths(args.report))}; {elapsed:.1f} s")
    return 0 if code == pytest.ExitCode.OK else 1


def cmd_replay(args: argparse.Namespace) -> int:
    from conformance.replay import replay

    return replay(args.file, args.framework, args.dtype, args.device)


def cmd_hunt(args: argparse.Namespace) -> int:
    """A budgeted search (conformance.hunt): 0 when it wrote no new finding, 1 when it did,
    2 on a usage error. Ctrl-C ends it like the budget does, with the summary."""
    from conformance.hunt.command import run_hunt

    return run_hunt(args)


def cmd_diff(args: argparse.Namespace) -> int:
    from conformance.diff import run

    try:
        return run(
            args.old,
            args.new,
            factor=args.factor,
            floor=args.floor,
            ignore_device=args.ignore_device,
            strict=args.strict,
            html=args.html,
        )
    except ValueError as err:
        print(f"diff: {err}", file=sys.stderr)
        return USAGE


def cmd_golden(args: argparse.Namespace) -> int:
    from conformance.golden.regenerate import command
    from conformance.golden.storage import GoldenDataError

    only = [n.strip() for n in args.components.split(",") if n.strip()] if args.components else None
    try:
        return command(write=args.write, force=args.force, only=only)
    except (ValueError, GoldenDataError) as err:
        print(f"golden: {err}", file=sys.stderr)
        return USAGE


def cmd_stress(args: argparse.Namespace) -> int:
    from conformance.stress import command

    names = [n.strip() for n in args.components.split(",") if n.strip()] if args.components else []
    return command(
        names, args.checks, args.frameworks.split(","), args.dtypes.split(","), args.seed, args.out, args.jobs
    )


def parser() -> Parser:
    p = Parser(
        prog="python -m conformance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=Parser)

    def suite_options(q: Parser) -> None:
        names = ",".join(frameworks.names())
        q.add_argument(
            "--frameworks",
            metavar="LIST",
            help=f"comma list of {names}, each one required (default: every one installed)",
        )
        q.add_argument(
            "--dtypes",
            metavar="LIST",
            help="comma list of float32,float64,float16,bfloat16 (default: all four)",
        )
        q.add_argument("--device", choices=DEVICES, help="cpu (default) or cuda, required")
        q.add_argument(
            "--allow-missing",
            action="store_true",
            help="a framework or device asked for but missing: skipped rows, not an error",
        )
        q.add_argument("--max-examples", metavar="N", help="examples per test instead of the profile's")
        q.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")

    run = sub.add_parser("run", help="run the suite and print the matrix (the default command)")
    run.status = int(pytest.ExitCode.USAGE_ERROR)  # a run's usage errors read as pytest's
    suite_options(run)
    run.add_argument("--profile", default="ci", choices=("ci", "dev", "thorough"))
    run.add_argument(
        "--report",
        default=DEFAULT_REPORT,
        metavar="PATH",
        help=f"the JSON report, .md, .html and reproducers/ beside it ({DEFAULT_REPORT})",
    )
    replay = sub.add_parser("replay", help="rerun one stored reproducer")
    replay.add_argument("file")
    replay.add_argument("--framework", help=f"one of {', '.join(frameworks.names())} (default: the file's)")
    replay.add_argument("--dtype", choices=("float32", "float64", "float16", "bfloat16"))
    replay.add_argument("--device", choices=DEVICES)
    hunt = sub.add_parser("hunt", help="search for disagreements until a budget is spent (conformance.hunt)")
    from conformance.hunt.command import add_options

    add_options(hunt)
    diff = sub.add_parser("diff", help="compare two reports: changed status, moved worst error")
    diff.add_argument("old", help="the baseline report (JSON)")
    diff.add_argument("new", help="the report to judge (JSON)")
    diff.add_argument("--html", metavar="PATH", help="also draw the diff as a self-contained HTML page")
    diff.add_argument(
        "--factor",
        type=float,
        default=10.0,
        help="list a row whose worst error moved by this factor or more (default 10)",
    )
    diff.add_argument(
        "--floor",
        type=float,
        default=1e-3,
        help="worst errors below this many tolerances count as this (default 1e-3)",
    )
    diff.add_argument(
        "--ignore-device",
        action="store_true",
        help="match rows across devices (automatic when each report has one device)",
    )
    diff.add_argument(
        "--strict",
        action="store_true",
        help="also fail on removed rows, rows that stopped running and worse moves",
    )
    golden = sub.add_parser("golden", help="regenerate the golden set and compare it with the stored one")
    golden.add_argument("--write", action="store_true", help="write new components and cases")
    golden.add_argument("--force", action="store_true", help="with --write: overwrite changed values")
    golden.add_argument("--components", help="comma list of components (default: all)")
    stress = sub.add_parser("stress", help="boundary cases per component against the tolerance table")
    stress.add_argument("--checks", type=int, default=20_000, help="checks per component (default 20000)")
    stress.add_argument("--components", help="comma list (default: every component with boundary cases)")
    stress.add_argument("--frameworks", default=",".join(frameworks.names()), metavar="LIST")
    stress.add_argument("--dtypes", default="float32,float64")
    stress.add_argument("--seed", type=int, default=0)
    stress.add_argument("--jobs", type=int, default=2, help="worker processes (a component each at a time)")
    stress.add_argument("--out", default=".conformance/stress")
    p.commands = {
        "run": run,
        "replay": replay,
        "hunt": hunt,
        "diff": diff,
        "golden": golden,
        "stress": stress,
    }
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra:
        top.commands.get(args.command, top).error(
            f"unrecognized arguments: {' '.join(extra)} (pytest's own go after --)"
        )
    if args.command == "run" and (wrong := check_suite_options(args)):  # the hunt checks its own
        top.commands[args.command].error(wrong)
    commands = {
        "run": cmd_run,
        "replay": cmd_replay,
        "hunt": cmd_hunt,
        "diff": cmd_diff,
        "golden": cmd_golden,
        "stress": cmd_stress,
    }
    return commands[args.command](args)
