"""The seed post's figures and the pitfalls' figures, drawn from the reference's own numbers.

`python -m refimpl.figures --out DIR` writes every figure of FIGURES as DIR/<name>.png;
matplotlib is the optional extra `figures` (pip install -e ".[figures]"), imported only
here, so refimpl itself never needs it. The output is deterministic: fixed seeds, sizes
and DPI, the Agg backend and no version or date in the PNG metadata, so docs/figures/
can be compared byte for byte with what the command draws now (tests/test_figures.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

FIGURES: dict[str, str] = {  # file stem -> module.function drawing it
    "chain-rule-graph": "refimpl.figures.basics:chain_rule_graph",
    "mlp-deltas": "refimpl.figures.basics:mlp_deltas",
    "vectorized-backward": "refimpl.figures.basics:vectorized_backward",
    "activation-derivatives": "refimpl.figures.extensions:activation_derivatives",
    "bptt-and-batchnorm": "refimpl.figures.extensions:bptt_and_batchnorm",
    "error-nudge": "refimpl.figures.extensions:error_nudge",
    "pitfall-depth": "refimpl.figures.pitfalls:depth_profiles",
    "pitfall-dying-relu": "refimpl.figures.pitfalls:dying_relus",
    "pitfall-aliasing-clip": "refimpl.figures.pitfalls:aliasing_clip",
    "pitfall-rnn-gradients": "refimpl.figures.pitfalls:rnn_gradients",
}
WIDTH_IN, HEIGHT_IN, DPI = 9.0, 5.0, 100  # every figure: 900 x 500 pixels


class MissingExtra(RuntimeError):
    """matplotlib is not installed."""


def _drawer(name: str) -> Callable[[Any], None]:
    import importlib

    module, function = FIGURES[name].split(":")
    drawer: Callable[[Any], None] = getattr(importlib.import_module(module), function)
    return drawer


def render(out: Path, names: list[str] | None = None) -> list[Path]:
    """Draw the named figures (all by default) into `out`; returns the files written."""
    try:
        import matplotlib
    except ImportError as err:
        raise MissingExtra(
            'python -m refimpl.figures needs matplotlib: pip install -e ".[figures]"') from err
    matplotlib.use("Agg")
    from refimpl.figures import style

    unknown = sorted(set(names or []) - set(FIGURES))
    if unknown:
        raise ValueError(f"figures: expected names among {sorted(FIGURES)}, received {unknown}")
    out.mkdir(parents=True, exist_ok=True)
    return [style.draw(_drawer(name), out / f"{name}.png") for name in names or list(FIGURES)]
