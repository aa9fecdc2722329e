"""RNN properties, each under a stable id: invariants of BPTT that hold in any
implementation, checked inside each framework (and the reference), plus the per-step
gradient profile against the reference.

Ids:
  truncation-covers-sequence   a window k >= T gives full BPTT exactly (outputs and gradients)
  truncation-window-one        k = 1 is T independent one-step problems, each started from
                               the forward's h_{t-1}, stacked along the batch
  truncated-finite-differences <∇f, v> of the truncated gradient vs central differences of the
                               surrogate whose chunk-boundary states are frozen (float64)
  one-step-dense               T = 1 is one dense layer on [x_1, h0] with weights [W_ih | W_hh]
                               and bias b_ih + b_hh, then the readout: the MLP component
  two-bias-mapping             ∂L/∂b_ih = ∂L/∂b_hh, and moving c from b_hh to b_ih changes
                               nothing: b = b_ih + b_hh is flax's one bias
  hidden-gradient-profile      ‖∂L/∂h_t‖, t = 1..T (the vanishing-gradient picture), vs the reference

The chunk problems: truncated BPTT with window k is the exact gradient of a surrogate
in which chunk c starts from the constant s_c, the forward's state at its boundary
(refimpl/bptt.py). Chunks of equal length L are independent given those constants,
so they stack along the batch into one full-BPTT case of length L (plus one for a
shorter last chunk). The constants come from the float64 reference forward; the
framework's own states differ from them by its rounding error, far inside the
identity tolerance of either dtype.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from conformance.backend import Backend
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree, assert_identity
from conformance.component import NotApplicable, Property
from conformance.components.rnn.rounding import hidden_norms_rounding
from conformance.properties import directions, dot, reject_case
from conformance.tolerances import FINITE_DIFFERENCE_RTOL, FINITE_DIFFERENCE_STEP, IDENTITY_RTOL
from refimpl import rnn
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec

KEYS = ("W_ih", "W_hh", "b_ih", "b_hh", "W_out", "b_out")
# Rounding of f = Σ <dY, Y> after up to 64 steps, in units of ε64 · Σ|Y ⊙ dY|: each step's
# products and tanh add a few ε to every state, and the sum adds its own.
FD_ROUNDING = 64.0


def assert_same(ctx: Context, lhs: Arrays, rhs: Arrays, what: str, scale: Arrays | None = None) -> None:
    """Per entry of rhs, the worst element of lhs - rhs within IDENTITY_RTOL of the tensor's scale
    (max |lhs|, |rhs|, or of `scale` when the right side is a sum of terms). Differences
    below the dtype's smallest normal number pass: a gradient that vanished over many
    steps into subnormals has lost its digits in both (float32: 4e-45 against 5e-45)."""
    __tracebackhide__ = True
    rtol = IDENTITY_RTOL[ctx.dtype]
    for k, r in rhs.items():
        a = np.asarray(lhs[k], np.float64).reshape(r.shape)
        s = np.abs(r) if scale is None else scale[k]
        size = max(
            float(np.max(np.abs(a), initial=0.0)),
            float(np.max(s, initial=0.0)),
            float(np.finfo(ctx.dtype).tiny) / rtol,
        )
        worst = np.unravel_index(np.argmax(np.abs(a - r)), r.shape) if r.size else ()
        index = list(map(int, worst))
        assert_identity(ctx, f"{k}{index} ({what})", float(a[worst]), float(r[worst]), scale=size, rtol=rtol)


# ---------------------------------------------------------------- chunk problems


def boundary_states(case: Case) -> np.ndarray:
    """h_1..h_T (T, N, H) of the float64 reference forward at the case's masters."""
    spec = replace(case.spec, dtype="float64", truncation=None)
    return rnn.rnn_forward(spec, case.params, case.inputs["X"], case.inputs["h0"])[1]


def chunk_problems(case: Case, k: int, states: np.ndarray) -> list[tuple[Case, list[int]]]:
    """Full-BPTT "rnn" cases, one per chunk length, each holding its chunks side by side along
    the batch, chunk c started from s_c (h0 for c = 0, else states[start - 1]); with the
    starts of its chunks. Cotangent "dY" (and targets) follow each chunk's steps."""
    spec: RNNSpec = case.spec
    X, h0, dY, targets = (case.inputs[k_] for k_ in ("X", "h0", "dY", "targets"))
    T = X.shape[0]
    by_length: dict[int, list[int]] = {}
    for start in range(0, T, k):
        by_length.setdefault(min(start + k, T) - start, []).append(start)
    problems = []
    for L, starts in by_length.items():
        inputs = {
            "X": np.concatenate([X[s : s + L] for s in starts], axis=1),
            "h0": np.concatenate([h0 if s == 0 else states[s - 1] for s in starts]),
        }
        if spec.readout == "every":
            inputs["dY"] = np.concatenate([dY[s : s + L] for s in starts], axis=1)
            inputs["targets"] = np.concatenate([targets[s : s + L] for s in starts], axis=1)
        else:  # only the chunk holding step T has an output
            inputs["dY"] = np.concatenate([dY * (s + L == T) for s in starts])
            inputs["targets"] = np.concatenate([targets for _ in starts])
        full = replace(spec, truncation=None)
        problems.append((Case("rnn", full, case.params, inputs, seed=case.seed), starts))
    return problems


def chunk_grads(
    case: Case, backend: Backend, problems: list[tuple[Case, list[int]]]
) -> tuple[Arrays, Arrays]:
    """The chunk problems' gradients mapped back onto the case's keys, and Σ |terms| per key."""
    X = case.inputs["X"]
    N = X.shape[1]
    grads: Arrays = {k: np.zeros_like(v) for k, v in case.params.items()}
    grads.update(X=np.zeros_like(X), h0=np.zeros_like(case.inputs["h0"]))
    scale = {k: np.zeros_like(v) for k, v in grads.items()}
    for problem, starts in problems:
        g = backend.run(problem, {"Y": problem.inputs["dY"]}).grads
        for key in KEYS:
            grads[key] = grads[key] + g[key]
            scale[key] = scale[key] + np.abs(g[key])
        for i, s in enumerate(starts):
            rows = slice(i * N, (i + 1) * N)
            grads["X"][s : s + g["X"].shape[0]] = g["X"][:, rows]
            if s == 0:
                grads["h0"] = g["h0"][rows]
    scale.update(X=np.abs(grads["X"]), h0=np.abs(grads["h0"]))
    return grads, scale


def _truncated(case: Case, k: int) -> Case:
    return replace(case, spec=replace(case.spec, truncation=k))


def truncation_covers_sequence(ctx: Context, backend: Backend) -> None:
    """A window k >= T is one chunk: outputs and every gradient equal full BPTT's."""
    k, T = ctx.case.spec.truncation, ctx.case.inputs["X"].shape[0]
    if k is None or k < T:
        raise NotApplicable(f"truncation-covers-sequence: needs a window k >= T = {T}, got {k}")
    cot = {"Y": ctx.case.inputs["dY"], "loss": np.ones(())}
    truncated = backend.run(ctx.case, cot)
    full = backend.run(replace(ctx.case, spec=replace(ctx.case.spec, truncation=None)), cot)
    assert_same(ctx, truncated.outputs, full.outputs, f"k = {k} >= T vs full BPTT")
    assert_same(ctx, truncated.grads, full.grads, f"k = {k} >= T vs full BPTT")


def truncation_window_one(ctx: Context, backend: Backend) -> None:
    """k = 1: the gradient is the sum over t of one-step problems started from h_{t-1}."""
    case = _truncated(ctx.case, 1)
    got = backend.run(case, {"Y": case.inputs["dY"]})
    expected, scale = chunk_grads(case, backend, chunk_problems(case, 1, boundary_states(case)))
    assert_same(ctx, got.grads, expected, "k = 1 vs T one-step problems", scale)


def truncated_finite_differences(ctx: Context, backend: Backend) -> None:
    """Per gradient: <g_k, v_k> of the truncated gradient against central differences of
    f = Σ <dY, Y> over the chunk problems, the boundary states frozen at the forward's.

    The differences carry f's own rounding, about ε64 · Σ|Y ⊙ dY| per evaluation, divided
    by the step: added to the allowed error (and to the kink test), so that a gradient
    that vanished over many steps (1e-36 against a difference of exactly 0) is not taken
    for a wrong one; a wrong formula errs by O(1) of the derivative, far above it.
    """
    case = ctx.case
    k = case.spec.truncation
    if k is None:
        raise NotApplicable("truncated-finite-differences: needs a window k (spec.truncation)")
    grads = backend.run(case, {"Y": case.inputs["dY"]}).grads
    states = boundary_states(case)
    keys = [*KEYS, "X", "h0"]
    v = directions(case, keys, salt=4)

    def outputs(key: str | None, step: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """(Y, dY) of every chunk problem, with tensor `key` moved by step · v[key]."""
        params = {n: p + step * v[n] if n == key else p for n, p in case.params.items()}
        inputs = {n: x + step * v[n] if n == key else x for n, x in case.inputs.items()}
        problems = chunk_problems(replace(case, params=params, inputs=inputs), k, states)
        return [(backend.run(p).outputs["Y"], p.inputs["dY"]) for p, _ in problems]

    def f(key: str, step: float) -> float:
        return sum(float(np.sum(Y * dY)) for Y, dY in outputs(key, step))

    def central(key: str, eps: float) -> float:
        return (f(key, eps) - f(key, -eps)) / (2 * eps)

    rounding = sum(float(np.sum(np.abs(Y * dY))) for Y, dY in outputs(None, 0.0))
    noise = FD_ROUNDING * np.finfo(np.float64).eps * rounding / FINITE_DIFFERENCE_STEP
    for key in keys:
        numeric = central(key, FINITE_DIFFERENCE_STEP)
        analytic, scale = dot(grads, {key: v[key]})
        drift = abs(numeric - central(key, 4 * FINITE_DIFFERENCE_STEP))
        if drift > 1e-4 * (scale + abs(numeric)) + noise:
            reject_case("the finite-difference steps crossed a relu kink: they say nothing of the derivative")
        assert_identity(
            ctx,
            f"{key} (directional, k = {k})",
            analytic,
            numeric,
            scale=scale + abs(numeric) + noise / FINITE_DIFFERENCE_RTOL,
            rtol=FINITE_DIFFERENCE_RTOL,
        )


# ---------------------------------------------------------------- one step, two biases


def dense_case(case: Case) -> Case:
    """The MLP case of one step: X = [x_1 | h0] (N, D + H), W1 = [W_ih | W_hh], b1 = b_ih + b_hh."""
    spec: RNNSpec = case.spec
    p, x = case.params, case.inputs
    N, C = x["X"].shape[1], spec.output_size
    mlp = MLPSpec(
        (spec.input_size + spec.hidden_size, spec.hidden_size, C),
        spec.nonlinearity,
        "identity",
        spec.loss,
        dtype=spec.dtype,
    )
    params = {
        "W1": np.concatenate([p["W_ih"], p["W_hh"]], axis=1),
        "b1": p["b_ih"] + p["b_hh"],
        "W2": p["W_out"],
        "b2": p["b_out"],
    }
    targets = x["targets"].reshape((N, C) if spec.loss == "mse" else (N,))
    inputs = {
        "X": np.concatenate([x["X"][0], x["h0"]], axis=1),
        "targets": targets,
        "dY": x["dY"].reshape(N, C),
    }
    return Case("mlp", mlp, params, inputs, seed=case.seed)


def one_step_dense(ctx: Context, backend: Backend) -> None:
    """T = 1: the RNN is the MLP (D + H) -> H -> C, in the same framework."""
    case = ctx.case
    if case.inputs["X"].shape[0] != 1:
        raise NotApplicable("one-step-dense: needs T = 1")
    D = case.spec.input_size
    mlp = dense_case(case)
    got = backend.run(case, {"Y": case.inputs["dY"], "loss": np.ones(())})
    want = backend.run(mlp, {"Y": mlp.inputs["dY"], "loss": np.ones(())})
    assert_same(ctx, got.outputs, want.outputs, "T = 1 vs one dense layer")
    g = want.grads
    expected = {
        "W_ih": g["W1"][:, :D],
        "W_hh": g["W1"][:, D:],
        "b_ih": g["b1"],
        "b_hh": g["b1"],
        "W_out": g["W2"],
        "b_out": g["b2"],
        "X": g["X"][None, :, :D],
        "h0": g["X"][:, D:],
    }
    assert_same(ctx, got.grads, expected, "T = 1 vs one dense layer")


def two_bias_mapping(ctx: Context, backend: Backend) -> None:
    """∂L/∂b_ih = ∂L/∂b_hh (each is ∂L/∂b of the sum), and (b_ih + c, b_hh - c) changes
    neither the outputs nor any gradient: only b = b_ih + b_hh, flax's one bias, matters."""
    case, cot = ctx.case, {"Y": ctx.case.inputs["dY"]}
    base = backend.run(case, cot)
    assert_same(ctx, {"b_ih": base.grads["b_ih"]}, {"b_ih": base.grads["b_hh"]}, "vs ∂L/∂b_hh")
    c = directions(case, ["b_ih"], salt=3)["b_ih"]
    p = case.params
    moved = backend.run(replace(case, params={**p, "b_ih": p["b_ih"] + c, "b_hh": p["b_hh"] - c}), cot)
    assert_same(ctx, moved.outputs, base.outputs, "b_ih + c, b_hh - c")
    assert_same(ctx, moved.grads, base.grads, "b_ih + c, b_hh - c")


# ---------------------------------------------------------------- the gradient profile


def reference_hidden_norms(case: Case, dtype: str) -> np.ndarray:
    spec = replace(case.spec, dtype=dtype, truncation=None)
    p = {k: v.astype(dtype) for k, v in case.params.items()}
    x = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in case.inputs.items()}
    norms = rnn.hidden_grad_norms(spec, p, x["X"], x["h0"], x["targets"])
    return np.asarray(norms, np.float64)


def hidden_gradient_profile(ctx: Context, backend: Backend) -> None:
    """‖∂L/∂h_t‖ for every t, full BPTT, the loss as the objective, against the reference.
    The framework's side is its adapter's capability "hidden_grad_norms" (torch: autograd at
    the states of nn.RNN run step by step; flax: `Module.perturb` on every state inside nn.RNN)."""
    name = "‖∂L/∂h_t‖"
    got = {name: np.asarray(backend.call(ctx.case, "hidden_grad_norms"), np.float64)}
    r64 = {name: reference_hidden_norms(ctx.case, "float64")}
    assert_agree(ctx, got, r64, {name: hidden_norms_rounding(ctx.case)}, kind="gradient")


# ---------------------------------------------------------------- the properties, by id

TRUNCATION_COVERS_SEQUENCE = Property("truncation-covers-sequence", truncation_covers_sequence)
TRUNCATION_WINDOW_ONE = Property("truncation-window-one", truncation_window_one)
TRUNCATED_FINITE_DIFFERENCES = Property(
    "truncated-finite-differences", truncated_finite_differences, float64_only=True
)
ONE_STEP_DENSE = Property("one-step-dense", one_step_dense)
TWO_BIAS_MAPPING = Property("two-bias-mapping", two_bias_mapping)
HIDDEN_GRADIENT_PROFILE = Property("hidden-gradient-profile", hidden_gradient_profile, frameworks_only=True)
