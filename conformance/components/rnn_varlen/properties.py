"""Properties of padded batches, each under a stable id, checked inside each framework.

Ids:
  varlen-padding-invariance  the padding (X and targets past each length) replaced by values of
                             size 1e4: every output and every gradient unchanged, and ∂L/∂X
                             exactly 0 at the padded steps (cotangents on Y, H, h_n and the loss)
  varlen-padding-nonfinite   the same with NaN and ±inf in the padding of X
  varlen-final-state         h_n is the state of each sequence's last valid step: H at step L_n
                             (reversed: at step 1), from the same call
  varlen-zero-length         a sequence of length 0: refused (zero_length "raise", torch's
                             pack_padded_sequence), or h_n = h0 and the reference's outputs and
                             gradients ("allow")
  varlen-length-beyond-t     a length past T (no step holds it): refused, as the reference does
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from conformance.backend import Backend, cast_floats
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_identity
from conformance.component import NotApplicable, Property
from conformance.components.rnn.properties import assert_same
from conformance.properties import forward_agreement, gradient_agreement


def padded(case: Case) -> np.ndarray:
    """(T, N): True at the padded steps."""
    T = case.inputs["X"].shape[0]
    return np.arange(T)[:, None] >= case.inputs["lengths"][None, :]


def every_cotangent(case: Case) -> Arrays:
    return {"Y": case.inputs["dY"], "H": case.inputs["dH"], "h_n": case.inputs["dh_n"], "loss": np.ones(())}


def adapter_arguments(
    case: Case, cotangents: Arrays | None, tangents: Arrays | None
) -> tuple[Arrays, Arrays, tuple[np.ndarray, ...], Arrays]:
    """What a JAX-traced adapter's one call takes, in the spec's dtype: the parameters, the
    inputs, a cotangent for each output in the order (Y, H, h_n, loss), zeros where none is
    given, and a tangent for each parameter, X and h0, zeros where none is given."""
    spec = case.spec
    params = cast_floats(case.params, spec.dtype)
    x = cast_floats(case.inputs, spec.dtype)
    T, N = x["X"].shape[:2]
    dtype = np.dtype(spec.dtype)
    H, C = spec.hidden_size, spec.output_size
    shapes = {"Y": (N, C) if spec.readout == "last" else (T, N, C), "H": (T, N, H), "h_n": (N, H), "loss": ()}
    c = cast_floats(cotangents or {}, spec.dtype)
    cot = tuple(np.asarray(c[k], dtype) if k in c else np.zeros(s, dtype) for k, s in shapes.items())
    d = (
        cast_floats(tangents, spec.dtype)
        if tangents is not None
        else {k: np.zeros_like(v) for k, v in {**params, "X": x["X"], "h0": x["h0"]}.items()}
    )
    return params, x, cot, d


def with_padding(case: Case, fill: np.ndarray) -> Case:
    """The case with X (and the targets of readout "every") replaced at the padded steps."""
    pad = padded(case)
    X = np.where(pad[..., None], fill, case.inputs["X"])
    inputs = {**case.inputs, "X": X}
    if case.spec.readout == "every":
        targets = case.inputs["targets"]
        rng = np.random.default_rng([case.seed, 7])
        swap = (
            rng.integers(0, case.spec.output_size, targets.shape)
            if targets.dtype.kind in "iu"
            else 1e4 * rng.standard_normal(targets.shape)
        )
        shape = pad.shape + (1,) * (targets.ndim - 2)
        inputs["targets"] = np.where(pad.reshape(shape), swap, targets)
    return replace(case, inputs=inputs)


def _invariance(ctx: Context, backend: Backend, fill: np.ndarray, what: str) -> None:
    case = ctx.case
    if not padded(case).any():
        raise NotApplicable(f"{ctx.property}: needs a sequence shorter than T")
    cot = every_cotangent(case)
    base, other = backend.run(case, cot), backend.run(with_padding(case, fill), cot)
    assert_same(ctx, other.outputs, base.outputs, what)
    assert_same(ctx, other.grads, base.grads, what)
    dX = np.asarray(other.grads["X"])[padded(case)]
    worst = float(np.max(np.abs(dX), initial=0.0))
    assert_identity(ctx, f"X at the padded steps ({what}): max |∂L/∂X|", worst, 0.0, scale=0.0, rtol=0.0)


def padding_invariance(ctx: Context, backend: Backend) -> None:
    rng = np.random.default_rng([ctx.case.seed, 5])
    fill = 1e4 * rng.standard_normal(ctx.case.inputs["X"].shape)
    _invariance(ctx, backend, fill, "padding of size 1e4")


def padding_nonfinite(ctx: Context, backend: Backend) -> None:
    shape = ctx.case.inputs["X"].shape
    fill = np.resize(np.array([np.nan, np.inf, -np.inf]), shape)
    _invariance(ctx, backend, fill, "padding NaN, inf, -inf")


def final_state(ctx: Context, backend: Backend) -> None:
    case = ctx.case
    lengths = case.inputs["lengths"]
    got = backend.run(case).outputs
    valid = np.flatnonzero(lengths > 0)
    step = np.zeros_like(lengths) if case.spec.reverse else lengths - 1
    last = np.asarray(got["H"])[step[valid], valid]  # (n valid, H)
    where = "step 1 (reversed)" if case.spec.reverse else "step L_n"
    assert_same(ctx, {"h_n": np.asarray(got["h_n"])[valid]}, {"h_n": last}, f"h_n vs H at {where}")


def zero_length(ctx: Context, backend: Backend) -> None:
    case = ctx.case
    empty = np.flatnonzero(case.inputs["lengths"] == 0)
    if not empty.size:
        raise NotApplicable("varlen-zero-length: needs a sequence of length 0")
    if case.spec.zero_length == "allow":
        forward_agreement(ctx, backend)
        gradient_agreement(ctx, backend)
        h_n = np.asarray(backend.run(case).outputs["h_n"])[empty]
        assert_same(ctx, {"h_n": h_n}, {"h_n": case.inputs["h0"][empty]}, "h_n = h0 at length 0")
        return
    what = "an error on a length of 0 (zero_length='raise')"
    assert_refused(ctx, backend, what, (ValueError, RuntimeError))


def assert_refused(ctx: Context, backend: Backend, what: str, errors: tuple[type[Exception], ...]) -> None:
    """The framework raises one of `errors` on the case instead of returning a result."""
    try:
        backend.run(ctx.case)
        raised = 0.0
    except errors:
        raised = 1.0
    assert_identity(ctx, what, raised, 1.0, scale=1.0, rtol=0.5)


def length_beyond_t(ctx: Context, backend: Backend) -> None:
    """A length past T names steps that do not exist: no result is defined, so the call must
    refuse it (the reference raises ValueError naming `lengths`); a result is a clamp or a read
    past the end, silently."""
    lengths, T = ctx.case.inputs["lengths"], ctx.case.inputs["X"].shape[0]
    what = f"an error on lengths {lengths.tolist()} with T = {T}"
    assert_refused(ctx, backend, what, (ValueError, RuntimeError, IndexError))


PADDING_INVARIANCE = Property("varlen-padding-invariance", padding_invariance)
PADDING_NONFINITE = Property("varlen-padding-nonfinite", padding_nonfinite)
FINAL_STATE = Property("varlen-final-state", final_state)
ZERO_LENGTH = Property("varlen-zero-length", zero_length)
LENGTH_BEYOND_T = Property("varlen-length-beyond-t", length_beyond_t)
