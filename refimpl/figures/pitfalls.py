"""The pitfalls' figures (docs/pitfalls.md), from refimpl.pitfalls' measurements."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from refimpl.figures.style import MUTED, SERIES
from refimpl.pitfalls import clipping, depth, dying, recurrent

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")


def depth_profiles(fig: Figure) -> None:
    layers = np.arange(1, depth.DEPTH + 1)
    left = fig.add_axes((0.08, 0.12, 0.4, 0.72))
    right = fig.add_axes((0.57, 0.12, 0.4, 0.72), sharey=left)
    for color, activation in zip(SERIES, ACTIVATIONS, strict=False):
        norms = depth.gradient_profile(depth.depth_case(activation, depth.DEPTH))
        left.semilogy(layers, norms / norms[-1], "o-", ms=3.5, color=color, label=activation)
    cases = [
        ("relu", "he", "relu, He: g = √2"),
        ("relu", "2he", "relu, g = 2√2"),
        ("tanh", "lecun", "tanh, LeCun: g = 1"),
        ("tanh", "2he", "tanh, g = 2√2"),
        ("sigmoid", "2he", "sigmoid, g = 2√2"),
    ]
    for color, (activation, gain, label) in zip(SERIES[2:] + SERIES[:2], cases, strict=False):
        norms = depth.gradient_profile(depth.depth_case(activation, depth.DEPTH, gain=depth.GAINS[gain]))
        right.semilogy(layers, norms / norms[-1], "s--", ms=3.5, color=color, label=label)
    for ax, title in ((left, "torch's nn.Linear init, g² = 1/3"), (right, "the init scaled")):
        ax.axhline(1.0, color=MUTED, lw=0.8)
        ax.set_xlabel("layer l (1 = input side)")
        ax.set_title(title, loc="left", fontsize=10)
        ax.legend(loc="lower right", fontsize=8.5)
    left.set_ylabel("‖∂L/∂bˡ‖ / ‖∂L/∂bᴸ‖")
    fig.text(
        0.08,
        0.92,
        f"Gradient norm per layer of a {depth.DEPTH}-layer, width-64 MLP at initialization"
        " (weights of variance g²/64)",
        fontsize=12,
    )


def dying_relus(fig: Figure) -> None:
    runs = {a: dying.dying_run(dying.dying_case(a)) for a in ("relu", "leaky_relu")}
    steps = np.arange(len(runs["relu"].off))
    left = fig.add_axes((0.08, 0.12, 0.4, 0.72))
    right = fig.add_axes((0.57, 0.12, 0.4, 0.72))
    for color, (name, run) in zip(SERIES[2:], runs.items(), strict=False):
        left.plot(steps, run.off, color=color, lw=2, label=f"{name}: off on every example")
        left.plot(steps, run.dead, color=color, lw=1.5, ls="--", label=f"{name}: zero gradient (dead)")
        right.semilogy(steps, run.losses, color=color, lw=2, label=name)
    for ax in (left, right):
        ax.axvspan(0, dying.LARGE_STEPS, color=MUTED, alpha=0.15, lw=0)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel(
            f"SGD step ({dying.LARGE_STEPS} steps of η = {dying.LARGE_LR} shaded, then η = {dying.SMALL_LR})"
        )
    left.set_ylim(0, 1.05)
    left.set_ylabel("fraction of the 64 hidden units")
    left.legend(loc="center right", fontsize=8.5)
    right.set_ylabel("training loss (mse)")
    right.legend(loc="upper right", fontsize=9)
    fig.text(
        0.08,
        0.92,
        "Dying ReLUs: three large steps switch most units off; ReLU's get zero gradient for good",
        fontsize=12,
    )


def aliasing_clip(fig: Figure) -> None:
    case = clipping.clip_case()
    runs = clipping.clip_runs(case)
    steps = np.arange(case.steps)
    ax = fig.add_axes((0.08, 0.12, 0.55, 0.72))
    labels = {"correct": "correct clip: θ ← θ − η ĝ", "aliasing": "aliasing clip: θ ← ĝ − η g"}
    for color, (name, run) in zip(SERIES, runs.items(), strict=False):
        ax.plot(steps, run.losses, color=color, lw=2, label=labels[name])
    ax.axhline(float(np.mean(case.targets**2)), color=MUTED, ls=":", lw=1, label="loss of θ = 0")
    ax.set_xlabel(f"SGD step (η = {case.lr}, clipped at M = ‖g₀‖/4 = {case.max_norm:.3f})")
    ax.set_ylabel("training loss (mse)")
    ax.legend(loc="center right", fontsize=9)
    side = fig.add_axes((0.72, 0.12, 0.25, 0.72))
    for color, (name, run) in zip(SERIES, runs.items(), strict=False):
        side.semilogy(steps, run.norms, color=color, lw=2, label=name)
    side.axhline(case.max_norm, color=MUTED, ls=":", lw=1, label="M")
    side.set_xlabel("SGD step")
    side.set_title("pre-clip ‖g‖", loc="left", fontsize=10)
    side.legend(loc="upper right", fontsize=8.5)
    fig.text(
        0.08,
        0.92,
        "A clip whose flat buffer becomes the parameters (vector_to_parameters): training stalls",
        fontsize=12,
    )


def rnn_gradients(fig: Figure) -> None:
    left = fig.add_axes((0.08, 0.12, 0.42, 0.72))
    t = np.arange(1, 33)
    for color, (rho, scale) in zip(SERIES, [(0.9, 0.01), (1.1, 0.01), (0.9, 1.0), (1.1, 1.0)], strict=False):
        norms = recurrent.profile(recurrent.recurrent_case(rho, scale))
        left.semilogy(
            t,
            norms / norms[-1],
            "o-" if scale < 1 else "s--",
            ms=3,
            color=color,
            label=f"‖W_hh‖ = {rho}, inputs × {scale}",
        )
    left.set_xlabel("step t (loss on h₃₂)")
    left.set_ylabel("‖∂L/∂hₜ‖ / ‖∂L/∂h₃₂‖")
    left.set_title("tanh RNN, W_hh = ρQ (Q orthogonal)", loc="left", fontsize=10)
    left.legend(loc="lower right", fontsize=8.5)
    case = recurrent.clipping_case()
    runs = recurrent.clipping_runs(case)
    right = fig.add_axes((0.6, 0.12, 0.37, 0.72))
    for color, (name, run) in zip(SERIES[2:], runs.items(), strict=False):
        right.semilogy(np.arange(len(run.losses)), run.losses, "o-", color=color, lw=2, label=name)
    right.set_xlabel(f"SGD step (η = {recurrent.CLIP_LR}, M = {recurrent.CLIP_MAX_NORM})")
    right.set_ylabel("training loss")
    right.set_title(
        f"training the ρ = {recurrent.CLIP_RHO} RNN, first ‖g‖ = {runs['clipped'].norms[0]:.0f}",
        loc="left",
        fontsize=10,
    )
    right.legend(loc="upper left", fontsize=9)
    fig.text(
        0.08,
        0.92,
        "‖∂L/∂hₜ‖ vanishes for ‖W_hh‖ < 1 and can explode above 1; clipping keeps training finite",
        fontsize=12,
    )
