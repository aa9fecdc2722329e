"""Figures four to six of "Backpropagation Unlocked": σ' and tanh', BPTT with batch norm's backward terms, and
the "error nudge" (refimpl's numbers; matplotlib imported lazily, by refimpl.figures only)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from refimpl import activations, batchnorm
from refimpl.figures.style import BACKWARD, FORWARD, MUTED, SERIES, canvas
from refimpl.mlp import MLPSpec, init_params, loss_and_grads, mlp_forward
from refimpl.pitfalls import recurrent

VANISHING = 0.05  # f'(x) below this: marked as the vanishing regime


def derivative(name: str, x: Any) -> Any:
    """f'(x) from refimpl.activations (the backward pass's own formula)."""
    return activations.activation_derivative(activations.activation_forward(name, x)[1])


def activation_derivatives(fig: Figure) -> None:
    x = np.linspace(-8.0, 8.0, 801)
    ax = fig.add_axes((0.08, 0.12, 0.55, 0.75))
    edges = {}
    for name, color in (("sigmoid", SERIES[0]), ("tanh", SERIES[1])):
        d = derivative(name, x)
        ax.plot(x, d, color=color, lw=2, label=f"{name}'(x), max {d.max():.2f}")
        edges[name] = float(x[d >= VANISHING].max())
    both = max(edges.values())
    ax.axvspan(-8, -both, color=MUTED, alpha=0.15, lw=0)
    ax.axvspan(both, 8, color=MUTED, alpha=0.15, lw=0, label=f"both f' < {VANISHING}")
    ax.axhline(VANISHING, color=MUTED, lw=0.8, ls="--")
    ax.text(-7.8, VANISHING + 0.015, f"f' = {VANISHING}", fontsize=8.5, color=MUTED)
    ax.set_xlim(-8, 8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("pre-activation x")
    ax.set_ylabel("f'(x)")
    ax.set_title(
        f"vanishing regime: f' < {VANISHING} for |x| > {edges['tanh']:.1f} (tanh),"
        f" |x| > {edges['sigmoid']:.1f} (sigmoid)",
        loc="left",
        fontsize=10,
    )
    ax.legend(loc="upper left")
    side = fig.add_axes((0.72, 0.12, 0.25, 0.75))
    depth = np.arange(1, 21)
    for name, peak, color in (("sigmoid", 0.25, SERIES[0]), ("tanh", 1.0, SERIES[1])):
        side.semilogy(depth, peak**depth, color=color, lw=2, label=f"({peak:g})ᴸ: {name} at x = 0")
    side.semilogy(
        depth,
        float(derivative("tanh", np.array(2.0))) ** depth,
        color=SERIES[1],
        ls="--",
        lw=1.5,
        label="tanh at x = 2",
    )
    side.set_xlabel("layers L")
    side.set_title("best case: ∏ f' over L layers", loc="left", fontsize=10)
    side.set_ylim(1e-13, 3)
    side.legend(loc="lower left", fontsize=8.5)
    fig.text(
        0.08,
        0.93,
        "σ'(x) = σ(1 − σ) ≤ 1/4 and tanh'(x) = 1 − tanh² ≤ 1: each layer multiplies the gradient by one",
        fontsize=12,
    )


def batchnorm_terms(seed: int = 4) -> dict[str, Any]:
    """One feature of a batch of 8: the three terms of ∂L/∂X (refimpl/batchnorm.py's [1] [2] [3]),
    each with its factor γ s/N, and refimpl's ∂L/∂X, which is their sum."""
    rng = np.random.default_rng(seed)
    X = rng.normal(1.0, 2.0, size=(8, 1))
    gamma, beta = np.array([1.5]), np.array([0.2])
    _, cache = batchnorm.batchnorm_train_forward(X, gamma, beta)
    dY = rng.standard_normal((8, 1))
    dX = batchnorm.batchnorm_train_backward(dY, cache).dX
    N, scale = 8, gamma * cache.inv_std / 8
    dxhat = dY * gamma
    terms = {
        "[1] through x̂": scale / gamma * N * dxhat,
        "[2] through μ": np.broadcast_to(-scale / gamma * dxhat.sum(axis=0), (N, 1)),
        "[3] through σ²": -scale / gamma * cache.xhat * (dxhat * cache.xhat).sum(axis=0),
    }
    return {"terms": {k: v[:, 0] for k, v in terms.items()}, "dX": dX[:, 0]}


def bptt_and_batchnorm(fig: Figure) -> None:
    case = recurrent.recurrent_case(0.9, 0.3, T=48, readout="every")
    full, truncated = recurrent.profile(case), recurrent.truncated_profile(case, 8)
    t = np.arange(1, 49)
    ax = fig.add_axes((0.09, 0.13, 0.44, 0.7))
    ax.bar(t, full, width=0.8, color=FORWARD, alpha=0.35, label="full BPTT")
    ax.set_ylim(0, 1.3 * max(full.max(), truncated.max()))
    ax.plot(t, truncated, "o-", ms=3, color=BACKWARD, lw=1.2, label="truncated, k = 8")
    for boundary in range(8, 48, 8):
        ax.axvline(boundary + 0.5, color=MUTED, lw=0.8, ls=":")
    ax.set_xlabel("step t (chunk boundaries dotted)")
    ax.set_ylabel("‖∂L/∂hₜ‖")
    ax.set_title("BPTT unrolled, T = 48: the gradient reaching each hₜ", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=9, ncol=2)
    bn = batchnorm_terms()
    bx = fig.add_axes((0.62, 0.13, 0.36, 0.7))
    n = np.arange(8)
    for i, (name, values) in enumerate(bn["terms"].items()):
        bx.bar(n + (i - 1) * 0.25, values, width=0.25, color=SERIES[i + 2], label=name)
    bx.plot(n, bn["dX"], "k_", ms=14, mew=2.5, label="sum = ∂L/∂X (refimpl)")
    bx.axhline(0, color="black", lw=0.6)
    bx.set_xlabel("example n (one feature)")
    bx.set_title("batch norm: ∂L/∂X = γs/N (N δx̂ − Σδx̂ − x̂ Σδx̂x̂)", loc="left", fontsize=10)
    top = max(float(np.abs(v).max()) for v in [*bn["terms"].values(), bn["dX"]])
    bx.set_ylim(-1.1 * top, 1.9 * top)
    bx.legend(loc="upper left", fontsize=8, ncol=2)
    fig.text(
        0.02,
        0.92,
        "Truncated BPTT drops paths longer than its window; batch norm's backward also runs through μ and σ²",
        fontsize=12,
    )


def error_nudge(fig: Figure) -> None:
    """A 3-5-4-2 tanh MLP, one example: each weight coloured by its share |∂L/∂w| / Σ|∂L/∂w|."""
    spec = MLPSpec((3, 5, 4, 2), "tanh", "identity", "mse")
    rng = np.random.default_rng(7)
    params = init_params(spec, rng)
    x, t = np.array([[0.8, -1.2, 0.5]]), np.array([[1.0, -1.0]])
    Y, _ = mlp_forward(spec, params, x)
    _, grads = loss_and_grads(spec, params, x, t)
    total = sum(float(np.abs(grads[f"W{l}"]).sum()) for l in range(1, 4))
    share = {l: np.abs(grads[f"W{l}"]) / total for l in range(1, 4)}
    top = max(float(s.max()) for s in share.values())
    cmap, norm = colormaps["magma_r"], Normalize(0.0, top)
    ax = canvas(fig)
    xs = [0.12, 0.34, 0.56, 0.78]
    nodes = [
        [(x0, y) for y in np.linspace(0.86, 0.22, n + 2)[1:-1]] for x0, n in zip(xs, spec.sizes, strict=True)
    ]
    for l in range(1, 4):
        for j, (bx, by) in enumerate(nodes[l]):
            for i, (ax0, ay) in enumerate(nodes[l - 1]):
                s = float(share[l][j, i])
                ax.plot([ax0, bx], [ay, by], color=cmap(norm(s)), lw=0.6 + 9 * s / top, zorder=1)
    for layer in nodes:
        for px, py in layer:
            ax.add_patch(_circle(px, py))
    for (px, py), value in zip(nodes[0], x[0], strict=True):
        ax.text(px - 0.03, py, f"x = {value:+.1f}", ha="right", va="center", fontsize=9, color=FORWARD)
    for (px, py), y, target in zip(nodes[-1], Y[0], t[0], strict=True):
        ax.annotate(
            "",
            (px + 0.025, py),
            (px + 0.11, py),
            arrowprops={"arrowstyle": "-|>", "color": BACKWARD, "lw": 1.2 + 2 * abs(y - target)},
        )
        ax.text(
            px + 0.12,
            py,
            f"ŷ = {y:+.2f}\nt = {target:+.0f}\nerror {y - target:+.2f}",
            va="center",
            fontsize=9,
            color=BACKWARD,
        )
    colorbar = fig.colorbar(
        _mappable(cmap, norm), ax=ax, cax=fig.add_axes((0.1, 0.12, 0.5, 0.025)), orientation="horizontal"
    )
    colorbar.set_label("share of the gradient, |∂L/∂w| / Σ|∂L/∂w|")
    layer_share = ", ".join(f"W{l} {share[l].sum():.0%}" for l in range(1, 4))
    ax.text(
        0.02,
        0.95,
        f"Error nudges: each weight's share of the gradient (per layer: {layer_share})",
        fontsize=12,
        va="top",
    )


def _circle(x: float, y: float) -> Any:
    from matplotlib.patches import Ellipse

    return Ellipse((x, y), 0.035, 0.063, facecolor="white", edgecolor=FORWARD, lw=1.3, zorder=2)


def _mappable(cmap: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)
