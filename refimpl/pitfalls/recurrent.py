"""Gradients through time: ‖∂L/∂h_t‖ for ‖W_hh‖ below and above 1, truncated BPTT, clipping.

With a readout on h_T only, BPTT carries g_t = ∂L/∂h_t back as (refimpl/rnn.py)

    g_{t-1} = (d_t ⊙ g_t) W_hh,        d_t = tanh'(z_t) = 1 - h_t²  ∈ (0, 1].

With W_hh = ρ Q, Q orthogonal (so ‖W_hh‖₂ = ρ and ‖x W_hh‖ = ρ ‖x‖ for every row x),

    ρ · min(d_t) · ‖g_t‖  <=  ‖g_{t-1}‖  <=  ρ · ‖g_t‖

at every step: ρ < 1 makes the gradient vanish at least as fast as ρ^{T-t}, whatever
the inputs; ρ > 1 lets it explode as ρ^{T-t} while the states stay small (d_t ≈ 1), and
saturation (d_t → 0) can still stop it. Clipping by global norm bounds each update to
η M, so an exploding gradient cannot throw the weights away; truncated BPTT with window
k drops every path longer than the chunk, the profile restarts at each boundary.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import rnn
from refimpl.clip import ClipSpec
from refimpl.rnn import RNNSpec
from refimpl.train import SGDSpec, rnn_objective, train

Array = NDArray[Any]


class RecurrentCase(NamedTuple):
    spec: RNNSpec
    params: dict[str, Array]  # W_hh = ρ Q, biases 0
    X: Array  # (T, N, D), scaled by the input scale
    h0: Array  # (N, H), zeros
    targets: Array


def recurrent_case(
    rho: float,
    input_scale: float,
    *,
    T: int = 32,
    readout: str = "last",
    hidden: int = 32,
    seed: int = 0,
) -> RecurrentCase:
    """A tanh RNN (D = 4, H = hidden, C = 2, mse) with W_hh = ρ Q for a random orthogonal Q,
    zero biases, X ~ input_scale · N(0, 1), h0 = 0, targets N(0, 1); the rest torch's init."""
    spec = RNNSpec(4, hidden, 2, "tanh", readout, "mse")
    rng = np.random.default_rng(seed)
    params = rnn.init_params(spec, rng)
    Q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    params.update(W_hh=rho * Q, b_ih=np.zeros(hidden), b_hh=np.zeros(hidden))
    N = 8
    X = input_scale * rng.standard_normal((T, N, 4))
    targets = rng.standard_normal(rnn.output_shape(spec, T, N))
    return RecurrentCase(spec, params, X, np.zeros((N, hidden)), targets)


def profile(case: RecurrentCase) -> Array:
    """‖∂L/∂h_t‖ for t = 1..T, full BPTT."""
    return rnn.hidden_grad_norms(case.spec, case.params, case.X, case.h0, case.targets)


def truncated_profile(case: RecurrentCase, k: int) -> Array:
    """‖∂L/∂h_t‖ for t = 1..T under truncated BPTT with window k: each chunk's backward
    (refimpl/bptt.py) starts from its own loss terms and stops at its first state."""
    spec, p = case.spec, case.params
    T = case.X.shape[0]
    norms, h = np.zeros(T), case.h0
    for start in range(0, T, k):
        stop = min(start + k, T)
        H_c, seq = rnn.rnn_sequence_forward(
            case.X[start:stop], h, p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], spec.nonlinearity
        )
        h = H_c[-1]
        if spec.readout == "last" and stop < T:
            continue  # no loss term in this chunk: nothing flows back in it
        Y_c, rcache = rnn.readout_forward(spec.readout, H_c, p["W_out"], p["b_out"])
        share = (stop - start) / T if spec.readout == "every" else 1.0
        targets = case.targets[start:stop] if spec.readout == "every" else case.targets
        dH_c = rnn.readout_backward(rnn.readout_loss(spec, Y_c, targets, share)[1], rcache)[0]
        norms[start:stop] = rnn.rnn_sequence_backward(dH_c, seq).dh_norms
    return norms


def step_bounds(case: RecurrentCase) -> tuple[Array, Array]:
    """(ρ min(d_t), ρ) for t = 2..T: the bounds on ‖g_{t-1}‖ / ‖g_t‖ of the module docstring."""
    rho = float(np.linalg.norm(case.params["W_hh"], 2))
    _, H, _ = rnn.rnn_forward(case.spec, case.params, case.X, case.h0)
    d_min = (1.0 - H * H).reshape(H.shape[0], -1).min(axis=1)  # (T,)
    return rho * d_min[1:], np.full(H.shape[0] - 1, rho)


CLIP_RHO, CLIP_LR, CLIP_MAX_NORM, CLIP_STEPS = 1.3, 0.3, 1.0, 8


def clipping_case() -> RecurrentCase:
    """The exploding case trained: ρ = 1.3, inputs of scale 0.01, T = 32 (first ‖∇‖ near 100)."""
    return recurrent_case(CLIP_RHO, 0.01)


def stacked(case: RecurrentCase, steps: int = CLIP_STEPS) -> dict[str, Array]:
    """The case's batch repeated for `steps` SGD steps, stacked on a leading step axis."""
    return {
        "X": np.stack([case.X] * steps),
        "h0": np.stack([case.h0] * steps),
        "targets": np.stack([case.targets] * steps),
    }


class TrainingRun(NamedTuple):
    losses: Array  # (S,)
    norms: Array  # (S,): pre-clip global norms
    params: dict[str, Array]  # after the last step


def clipping_runs(case: RecurrentCase, steps: int = CLIP_STEPS) -> dict[str, TrainingRun]:
    """{"clipped": SGD with clipping by global norm at CLIP_MAX_NORM, "unclipped": without},
    full-batch steps of η = CLIP_LR on the case's batch (refimpl.train)."""
    batch = {"X": case.X, "h0": case.h0, "targets": case.targets}
    runs = {}
    for name, clip in (("clipped", ClipSpec("global_norm", CLIP_MAX_NORM)), ("unclipped", None)):
        params, _, infos = train(
            rnn_objective(case.spec), SGDSpec(CLIP_LR, clip), case.params, {}, [batch] * steps
        )
        runs[name] = TrainingRun(np.array([i.loss for i in infos]), np.array([i.norm for i in infos]), params)
    return runs
