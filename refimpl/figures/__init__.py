"""The figures of the post "Backpropagation Unlocked" and of the pitfalls, from the reference's numbers.

`python -m refimpl.figures --out DIR` writes every figure of FIGURES as DIR/<name>.png;
matplotlib is the optional extra `figures` (pip install -e ".[figures]"), imported only
here, so refimpl itself never needs it. The output is deterministic: fixed seeds, sizes
and DPI, the Agg backend and no version or date in the PNG metadata, so docs/figures/
can be compared byte for byte with what the command draws now (tests/test_figures.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from refimpl._validate import describe
from refimpl.figures.size import DPI, HEIGHT_IN, WIDTH_IN

FIGURES: dict[str, tuple[str, str]] = {  # file stem -> (module of refimpl.figures, function drawing it)
    "chain-rule-graph": ("basics", "chain_rule_graph"),
    "mlp-deltas": ("basics", "mlp_deltas"),
    "vectorized-backward": ("basics", "vectorized_backward"),
    "activation-derivatives": ("extensions", "activation_derivatives"),
    "bptt-and-batchnorm": ("extensions", "bptt_and_batchnorm"),
    "error-nudge": ("extensions", "error_nudge"),
    "pitfall-depth": ("pitfalls", "depth_profiles"),
    "pitfall-dying-relu": ("pitfalls", "dying_relus"),
    "pitfall-aliasing-clip": ("pitfalls", "aliasing_clip"),
    "pitfall-rnn-gradients": ("pitfalls", "rnn_gradients"),
}
__all__ = ["DPI", "FIGURES", "HEIGHT_IN", "WIDTH_IN", "MissingExtra", "render"]


class MissingExtra(RuntimeError):
    """matplotlib is not installed."""


def _drawers() -> dict[str, Callable[[Any], None]]:
    """Name -> drawing function; imports matplotlib (the modules below do, at their top)."""
    from refimpl.figures import basics, extensions, pitfalls

    modules = {"basics": basics, "extensions": extensions, "pitfalls": pitfalls}
    return {name: getattr(modules[module], function) for name, (module, function) in FIGURES.items()}


def render(out: Path, names: list[str] | None = None) -> list[Path]:
    """Draw the named figures (all by default) into `out`; returns the files written."""
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"out: expected a folder path, received {describe(out)}")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise TypeError(f"names: expected a list of figure names or None, received {describe(names)}")
    out = Path(out)
    try:
        import matplotlib
    except ImportError as err:
        raise MissingExtra('python -m refimpl.figures needs matplotlib: pip install -e ".[figures]"') from err
    matplotlib.use("Agg")
    from refimpl.figures import style

    unknown = sorted(set(names or []) - set(FIGURES))
    if unknown:
        raise ValueError(f"figures: expected names among {sorted(FIGURES)}, received {unknown}")
    out.mkdir(parents=True, exist_ok=True)
    drawers = _drawers()
    return [style.draw(drawers[name], out / f"{name}.png") for name in names or list(FIGURES)]
