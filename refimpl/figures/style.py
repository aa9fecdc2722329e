"""One look for every figure, and a deterministic PNG writer (matplotlib; imported lazily)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from refimpl.figures.size import DPI, HEIGHT_IN, WIDTH_IN

FORWARD, BACKWARD, MUTED = "#1f4e79", "#c0392b", "#7f7f7f"  # values, gradients, annotations
SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

RC: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "mathtext.fontset": "dejavusans",
    "savefig.dpi": DPI,
    "path.simplify": False,
}


def draw(drawer: Callable[[Figure], None], path: Path) -> Path:
    """A WIDTH_IN x HEIGHT_IN figure at DPI drawn by `drawer` under RC (no pyplot, so no global
    state), written as a PNG without software, date or version metadata: its bytes depend on
    the pixels only."""
    with mpl.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        drawer(fig)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def canvas(fig: Figure) -> Any:
    """Axes over the whole figure in data units 0..1 with nothing drawn: for diagrams."""
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return ax
