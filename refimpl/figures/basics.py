"""The first three figures of "Backpropagation Unlocked": the chain rule on a graph, the two-layer MLP's δ
equations with numbers, and the vectorized backward pass as a flow of shapes."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

from refimpl import activations, losses
from refimpl.figures.style import BACKWARD, FORWARD, MUTED, canvas
from refimpl.linear import linear_backward, linear_forward
from refimpl.mlp import MLPSpec, init_params, loss_backward, loss_forward, mlp_backward_deltas, mlp_forward


def _arrow(
    ax: Any, start: tuple[float, float], end: tuple[float, float], color: str = "black", shrink: float = 22.0
) -> None:
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=12,
            color=color,
            shrinkA=shrink,
            shrinkB=shrink,
            lw=1.2,
        )
    )


def _node(ax: Any, xy: tuple[float, float], label: str, leaf: bool = False) -> None:
    """A circle on the 9:5 canvas (an ellipse in data units), the operation or name inside."""
    ax.add_patch(
        Ellipse(xy, 0.07, 0.07 * 9 / 5, facecolor="#eef3f8" if leaf else "white", edgecolor=FORWARD, lw=1.5)
    )
    ax.text(*xy, label, ha="center", va="center", fontsize=13)


def _edge_label(ax: Any, xy: tuple[float, float], label: str) -> None:
    ax.text(
        *xy,
        label,
        ha="center",
        va="center",
        fontsize=8.5,
        linespacing=1.1,
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "#cccccc"},
    )


def neuron_numbers() -> dict[str, float]:
    """z = w x + b, a = σ(z), L = (a - t)², forward and backward through the reference's layers."""
    x, w, b, t = np.array([[1.5]]), np.array([[0.8]]), np.array([-0.5]), np.array([[1.0]])
    z, lin = linear_forward(x, w, b)
    a, act = activations.activation_forward("sigmoid", z)
    loss, lcache = losses.mse_forward(a, t)
    dL_da = losses.mse_backward(1.0, lcache)
    da_dz = activations.activation_derivative(act)
    dL_dz = activations.activation_backward(dL_da, act)
    g = linear_backward(dL_dz, lin)
    return {
        "x": 1.5,
        "w": 0.8,
        "b": -0.5,
        "t": 1.0,
        "u": 1.2,
        "z": float(z[0, 0]),
        "a": float(a[0, 0]),
        "L": loss,
        "dL_da": float(dL_da[0, 0]),
        "da_dz": float(da_dz[0, 0]),
        "dL_dz": float(dL_dz[0, 0]),
        "dL_dw": float(g.dW[0, 0]),
        "dL_db": float(g.db[0]),
        "dL_dx": float(g.dX[0, 0]),
    }


def chain_rule_graph(fig: Figure) -> None:
    n = neuron_numbers()
    ax = canvas(fig)
    ax.text(
        0.02,
        0.95,
        "One neuron as a computational graph: every edge carries its local derivative,"
        " backprop multiplies them",
        fontsize=12,
        va="top",
    )
    pos = {
        "x": (0.14, 0.72),
        "w": (0.14, 0.42),
        "×": (0.32, 0.57),
        "b": (0.32, 0.25),
        "+": (0.50, 0.57),
        "σ": (0.68, 0.57),
        "t": (0.86, 0.25),
        "L": (0.86, 0.57),
    }
    edges = [
        ("x", "×", f"∂u/∂x = w\n= {n['w']:.2f}"),
        ("w", "×", f"∂u/∂w = x\n= {n['x']:.2f}"),
        ("×", "+", "∂z/∂u\n= 1"),
        ("b", "+", "∂z/∂b = 1"),
        ("+", "σ", f"∂a/∂z\n= a(1−a)\n= {n['da_dz']:.4f}"),
        ("σ", "L", f"∂L/∂a\n= 2(a−t)\n= {n['dL_da']:.4f}"),
        ("t", "L", ""),
    ]
    for start, end, label in edges:
        _arrow(ax, pos[start], pos[end])
        if label:
            _edge_label(ax, ((pos[start][0] + pos[end][0]) / 2, (pos[start][1] + pos[end][1]) / 2), label)
    _arrow(ax, pos["L"], (0.98, 0.57), shrink=20.0)
    for name, xy in pos.items():
        _node(ax, xy, name, leaf=name in "xwbt")
    above = {
        "×": f"u = w·x = {n['u']:.2f}",
        "+": f"z = u + b = {n['z']:.2f}",
        "σ": f"a = σ(z) = {n['a']:.4f}",
        "L": f"L = (a−t)² = {n['L']:.4f}",
        "b": f"b = {n['b']:.2f}",
    }
    for name, label in above.items():
        ax.text(pos[name][0], pos[name][1] + 0.1, label, color=FORWARD, ha="center", fontsize=10)
    for name in "xwt":
        ax.text(
            pos[name][0] - 0.05,
            pos[name][1],
            f"{name} = {n[name]:.2f}",
            color=FORWARD,
            ha="right",
            va="center",
            fontsize=10,
        )
    below = {
        "×": f"∂L/∂u = {n['dL_dz']:.4f}",
        "+": f"∂L/∂z = {n['dL_dz']:.4f}",
        "σ": f"∂L/∂a = {n['dL_da']:.4f}",
        "w": f"∂L/∂w = {n['dL_dw']:.4f}",
    }
    for name, label in below.items():
        ax.text(pos[name][0], pos[name][1] - 0.1, label, color=BACKWARD, ha="center", va="top", fontsize=10)
    ax.text(pos["b"][0] + 0.05, pos["b"][1], f"∂L/∂b = {n['dL_db']:.4f}", color=BACKWARD, va="center")
    ax.text(pos["L"][0] + 0.012, pos["L"][1] - 0.1, "∂L/∂L = 1", color=BACKWARD, va="top")
    ax.text(
        0.02,
        0.1,
        "chain rule:  ∂L/∂w = ∂L/∂a · ∂a/∂z · ∂z/∂u · ∂u/∂w"
        f" = ({n['dL_da']:.4f}) · {n['da_dz']:.4f} · 1 · {n['x']:.2f} = {n['dL_dw']:.4f}",
        fontsize=11,
        color=BACKWARD,
    )
    ax.text(
        0.02,
        0.035,
        "blue: forward values, red: gradients, both computed by refimpl's layers"
        " (linear, activations, losses), forward and backward",
        fontsize=9,
        color=MUTED,
    )


def _two_layer() -> dict[str, Any]:
    """A 3-4-2 MLP (sigmoid hidden, identity output, mse) on one example, through refimpl.mlp."""
    spec = MLPSpec((3, 4, 2), "sigmoid", "identity", "mse")
    rng = np.random.default_rng(3)
    params = init_params(spec, rng)
    x, t = np.array([[1.0, -0.5, 2.0]]), np.array([[1.0, 0.0]])
    Y, cache = mlp_forward(spec, params, x)
    _, lcache = loss_forward(spec, Y, t)
    dY = loss_backward(spec, lcache)
    grads, (d1, d2) = mlp_backward_deltas(spec, dY, cache)
    a1 = cache.layers[0].activation.kept
    return {
        "x": x[0],
        "t": t[0],
        "z1": cache.layers[1].linear.X,
        "a1": a1[0],
        "y": Y[0],
        "dY": dY[0],
        "d1": d1[0],
        "d2": d2[0],
        "W2": params["W2"],
        "grads": grads,
        "sig": (a1 * (1 - a1))[0],
    }


def _vec(v: Any, digits: int = 3) -> str:
    return "[" + ", ".join(f"{e:+.{digits}f}" for e in np.ravel(v)) + "]"


def mlp_deltas(fig: Figure) -> None:
    v = _two_layer()
    ax = canvas(fig)
    ax.text(
        0.02,
        0.95,
        "Two-layer MLP, one example: the δ equations with the reference's numbers",
        fontsize=12,
        va="top",
    )
    layers = [(0.08, v["x"], "x"), (0.24, v["a1"], "a¹"), (0.40, v["y"], "ŷ")]
    centers = []
    for x0, values, _ in layers:
        ys = np.linspace(0.75, 0.2, len(values) + 2)[1:-1]
        centers.append([(x0, y) for y in ys])
    for left, right in itertools.pairwise(centers):
        for a in left:
            for b in right:
                ax.plot([a[0], b[0]], [a[1], b[1]], color="#c8c8c8", lw=0.8, zorder=1)
    for (x0, values, name), points in zip(layers, centers, strict=True):
        for (px, py), val in zip(points, values, strict=True):
            ax.add_patch(
                Ellipse((px, py), 0.05, 0.09, facecolor="white", edgecolor=FORWARD, lw=1.3, zorder=2)
            )
            ax.text(px, py, f"{val:.2f}", ha="center", va="center", fontsize=8, color=FORWARD, zorder=3)
        ax.text(x0, 0.84, name, ha="center", fontsize=11, color=FORWARD)
    for points, deltas, name in ((centers[1], v["d1"], "δ¹"), (centers[2], v["d2"], "δ²")):
        for (px, py), d in zip(points, deltas, strict=True):
            ax.text(px + 0.032, py - 0.045, f"{d:+.3f}", fontsize=8, color=BACKWARD)
        ax.text(points[0][0] + 0.035, 0.84, name, fontsize=11, color=BACKWARD)
    g = v["grads"]
    lines = [
        (FORWARD, "forward:  z¹ = W¹x + b¹,  a¹ = σ(z¹),  ŷ = W²a¹ + b²,  L = ‖ŷ − t‖² / 2"),
        (FORWARD, f"   a¹ = {_vec(v['a1'])}"),
        (FORWARD, f"   ŷ = {_vec(v['y'])},   t = {_vec(v['t'])}"),
        (BACKWARD, "δ² = ∂L/∂ŷ ∘ f'(z²) = (ŷ − t) ∘ 1"),
        (BACKWARD, f"   = {_vec(v['d2'])}"),
        (BACKWARD, "∇W² = δ² a¹ᵀ  (2×4),   ∇b² = δ²"),
        (BACKWARD, f"   ∇W² row 1 = {_vec(g['W2'][0])}"),
        (BACKWARD, "δ¹ = (W²ᵀ δ²) ∘ σ'(z¹),   σ'(z¹) = a¹(1 − a¹)"),
        (BACKWARD, f"   = {_vec(v['W2'].T @ v['d2'], 2)} ∘ {_vec(v['sig'], 2)}"),
        (BACKWARD, f"   = {_vec(v['d1'])}"),
        (BACKWARD, "∇W¹ = δ¹ xᵀ  (4×3),   ∇b¹ = δ¹"),
        (BACKWARD, f"   ∇W¹ column 1 = δ¹ x₁ = {_vec(g['W1'][:, 0])}"),
    ]
    for i, (color, line) in enumerate(lines):
        ax.text(0.48, 0.84 - i * 0.062, line, fontsize=9.5, color=color, va="top")
    ax.text(
        0.02,
        0.035,
        "refimpl.mlp on MLPSpec((3, 4, 2), 'sigmoid', 'identity', 'mse'): mse is the mean"
        " over the C = 2 outputs, so ∂L/∂ŷ = 2(ŷ − t)/2",
        fontsize=9,
        color=MUTED,
    )


def _box(ax: Any, xy: tuple[float, float], title: str, shape: tuple[int, ...], color: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (xy[0] - 0.065, xy[1] - 0.055),
            0.13,
            0.11,
            boxstyle="round,pad=0.01",
            facecolor="white",
            edgecolor=color,
            lw=1.4,
        )
    )
    ax.text(xy[0], xy[1] + 0.018, title, ha="center", va="center", fontsize=9.5, color=color)
    ax.text(
        xy[0],
        xy[1] - 0.027,
        "(" + " × ".join(str(s) for s in shape) + ")",
        ha="center",
        va="center",
        fontsize=9,
        color=MUTED,
    )


def vectorized_backward(fig: Figure) -> None:
    """The shapes of refimpl.mlp's arrays for a 784-256-128-10 MLP on a batch of 64."""
    spec = MLPSpec((784, 256, 128, 10), "relu", "identity", "cross_entropy")
    rng = np.random.default_rng(0)
    params = init_params(spec, rng)
    X, labels = rng.standard_normal((64, 784)), rng.integers(0, 10, size=64)
    Y, cache = mlp_forward(spec, params, X)
    _, lcache = loss_forward(spec, Y, labels)
    grads, deltas = mlp_backward_deltas(spec, loss_backward(spec, lcache), cache)
    acts = [X] + [layer.activation.kept for layer in cache.layers]  # relu keeps Zˡ: same shape as Aˡ
    ax = canvas(fig)
    ax.text(
        0.02,
        0.95,
        "The vectorized backward pass: a batch of 64 through a 784-256-128-10 MLP, every array's shape",
        fontsize=12,
        va="top",
    )
    xs = [0.1, 0.33, 0.56, 0.79]
    names = ["X", "A¹ = relu(Z¹)", "A² = relu(Z²)", "Y = Z³ (logits)"]
    for i, (x0, name) in enumerate(zip(xs, names, strict=True)):
        _box(ax, (x0, 0.76), name, acts[i].shape, FORWARD)
        if i:
            _arrow(ax, (xs[i - 1], 0.76), (x0, 0.76), FORWARD, shrink=46)
            step = f"A W{i}ᵀ + b{i}" + (", relu" if i < 3 else "")
            ax.text((xs[i - 1] + x0) / 2, 0.84, step, ha="center", fontsize=9, color=FORWARD)
    for l in range(3, 0, -1):
        x0 = xs[l]
        _box(ax, (x0, 0.47), "δ³ = (p − y)/N" if l == 3 else "δ" + "¹²"[l - 1], deltas[l - 1].shape, BACKWARD)
        _box(ax, (x0, 0.18), f"∂L/∂W{l} = δ{'¹²³'[l - 1]}ᵀ A{'⁰¹²'[l - 1]}", grads[f"W{l}"].shape, BACKWARD)
        _arrow(ax, (x0, 0.47), (x0, 0.18), BACKWARD, shrink=32)
        if l > 1:
            _arrow(ax, (x0, 0.47), (xs[l - 1], 0.47), BACKWARD, shrink=46)
            ax.text(
                (xs[l - 1] + x0) / 2,
                0.555,
                f"(δ W{l}) ⊙ relu'(Z{l - 1})",
                ha="center",
                fontsize=9,
                color=BACKWARD,
            )
    _box(ax, (xs[0], 0.47), "∂L/∂X = δ¹ W¹", grads["X"].shape, BACKWARD)
    _arrow(ax, (xs[1], 0.47), (xs[0], 0.47), BACKWARD, shrink=46)
    largest = max(a.size for a in [*acts, *deltas, *grads.values()])
    jacobian = Y.size * X.size
    ax.text(
        0.02,
        0.045,
        f"Largest array formed: {largest:,} numbers (∂L/∂W1). The Jacobian ∂Y/∂X alone"
        f" would hold {Y.size:,} × {X.size:,} = {jacobian:,}.",
        fontsize=9.5,
    )
    ax.text(
        0.03,
        0.3,
        "p = softmax(Y)\ny = one-hot labels\nN = 64, the batch\n(cross-entropy's mean)",
        fontsize=9,
        color=MUTED,
        va="top",
    )
