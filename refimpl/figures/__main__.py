"""python -m refimpl.figures --out DIR [NAME ...]: draw the figures (refimpl/figures/__init__.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from refimpl.figures import FIGURES, MissingExtra, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refimpl.figures", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder to write <name>.png into")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"figures to draw (default: all): {', '.join(FIGURES)}"
    )
    args = parser.parse_args(argv)
    try:
        written = render(args.out, args.names or None)
    except (MissingExtra, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
