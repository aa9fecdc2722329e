"""python -m refimpl.figures: every figure drawn, non-blank and of the fixed size; docs/figures/ is
what the command draws now; without matplotlib the command says which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refimpl.figures import DPI, FIGURES, HEIGHT_IN, WIDTH_IN

DOCS = Path(__file__).resolve().parent.parent / "docs" / "figures"
SHAPE = (round(HEIGHT_IN * DPI), round(WIDTH_IN * DPI))  # rows, columns: 500 x 900


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("matplotlib", reason='the figures need the extra: pip install -e ".[figures]"')
    out = tmp_path_factory.mktemp("figures")
    result = subprocess.run(
        [sys.executable, "-m", "refimpl.figures", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(str(out / f"{name}.png") for name in FIGURES)
    return out


def pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return np.asarray(imread(path))


def difference(old: np.ndarray, new: np.ndarray) -> float:
    """The largest per-channel difference of two drawings, in [0, 1]; 1 for different sizes."""
    return float(np.max(np.abs(old - new))) if old.shape == new.shape else 1.0


def test_the_pixel_comparison_sees_a_changed_label(drawn: Path) -> None:
    """One figure with one number written over: the comparison's bound of 2/255 is exceeded."""
    from matplotlib.figure import Figure

    from refimpl.figures import style
    from refimpl.figures.basics import chain_rule_graph

    def changed(fig: Figure) -> None:
        chain_rule_graph(fig)
        fig.texts.clear()
        fig.axes[0].texts[-1].set_text(fig.axes[0].texts[-1].get_text().replace("red", "rad"))

    style.draw(changed, drawn / "changed.png")
    assert difference(pixels(drawn / "chain-rule-graph.png"), pixels(drawn / "changed.png")) > 0.25
    (drawn / "changed.png").unlink()


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_is_a_non_blank_image_of_the_fixed_size(drawn: Path, name: str) -> None:
    image = pixels(drawn / f"{name}.png")
    assert image.shape[:2] == SHAPE
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, "nearly one colour"
    packed = (np.round(rgb * 255).astype(np.int64) * [65536, 256, 1]).sum(axis=1)
    assert len(np.unique(packed)) > 50, "too few colours for text, lines and fills"
    ink = np.any(rgb < 0.9, axis=1).mean()  # share of pixels that are not (nearly) white
    assert 0.01 < ink < 0.6


@pytest.mark.parametrize("name", list(FIGURES))
def test_docs_figures_are_what_the_command_draws_now(drawn: Path, name: str) -> None:
    """Byte for byte where the rendering stack is the pinned one (matplotlib 3.11.2 and its bundled
    FreeType; fixed seeds, size, DPI, no metadata). Elsewhere the PNG encoder may differ while
    the pixels do not, so the pixels are compared: a BLAS that rounds the last bit of a number
    differently moves an antialiased edge by far less than one level of 255, while a changed
    label, line or colour changes some pixel by many levels, hence the bound of 2/255."""
    committed, now = DOCS / f"{name}.png", drawn / f"{name}.png"
    assert committed.is_file(), f"{committed} missing: python -m refimpl.figures --out docs/figures"
    if committed.read_bytes() == now.read_bytes():
        return
    worst = difference(pixels(committed), pixels(now))
    assert worst <= 2 / 255, (
        f"{committed} differs from the command's drawing by up to"
        f" {worst * 255:.0f}/255: python -m refimpl.figures --out docs/figures"
    )


def test_without_matplotlib_the_command_names_the_extra(tmp_path: Path) -> None:
    """refimpl and its pitfalls import without matplotlib; the command fails in one line naming
    the extra."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import refimpl, refimpl.pitfalls.depth, refimpl.figures\n"
        "from refimpl.figures.__main__ import main\n"
        f"sys.exit(main(['--out', {str(tmp_path)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert 'pip install -e ".[figures]"' in result.stderr and "matplotlib" in result.stderr
    assert not list(tmp_path.iterdir())


def test_an_unknown_figure_is_named(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from refimpl.figures.__main__ import main

    assert main(["--out", str(tmp_path), "no-such-figure"]) == 2


def test_batchnorm_terms_sum_to_the_reference_gradient() -> None:
    """The figure's three terms are refimpl.batchnorm's [1] [2] [3]: they add up to its ∂L/∂X,
    the mean term is the same for every example, and Σ_n ∂L/∂X_n = 0."""
    pytest.importorskip("matplotlib")
    from refimpl.figures.extensions import batchnorm_terms

    bn = batchnorm_terms()
    terms = list(bn["terms"].values())
    np.testing.assert_allclose(sum(terms), bn["dX"], rtol=1e-12, atol=1e-15)
    assert np.ptp(terms[1]) == 0.0
    assert abs(bn["dX"].sum()) < 1e-12


def test_the_chain_rule_product_is_the_reference_gradient() -> None:
    pytest.importorskip("matplotlib")
    from refimpl.figures.basics import neuron_numbers

    n = neuron_numbers()
    assert n["dL_dw"] == pytest.approx(n["dL_da"] * n["da_dz"] * 1.0 * n["x"], rel=1e-14)
    assert n["da_dz"] == pytest.approx(n["a"] * (1 - n["a"]), rel=1e-14)
