"""refimpl.varlen: the Elman RNN on padded batches of variable-length sequences.

Held to finite differences; to refimpl.rnn run on each sequence alone, cut to its length (and
reversed, for reverse=True): the outputs, the final state and every gradient; to its own
definition of padding (any value, NaN and inf included, changes nothing, and the padded steps
get zero gradient); and at the edge lengths T, 1 and 0.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from gradients import assert_fd_match
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl import rnn
from refimpl.varlen import VarLenRNNSpec, loss_and_grads, varlen_backward, varlen_forward

Arrays = dict[str, np.ndarray]
KEYS = ("W_ih", "W_hh", "b_ih", "b_hh", "W_out", "b_out")


@st.composite
def cases(draw: st.DrawFn) -> tuple[VarLenRNNSpec, Arrays, Arrays]:
    """Lengths in 1..T, one of them T; under zero_length "allow", 0..T."""
    zero = draw(st.booleans())
    spec = VarLenRNNSpec(
        draw(st.integers(1, 4)),
        draw(st.integers(1, 5)),
        draw(st.integers(2, 3)),
        nonlinearity=draw(st.sampled_from(rnn.NONLINEARITIES)),
        readout=draw(st.sampled_from(rnn.READOUTS)),
        reverse=draw(st.booleans()),
        zero_length="allow" if zero else "raise",
    )
    T, N = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lengths = rng.integers(0 if zero else 1, T + 1, size=N)
    lengths[rng.integers(N)] = T  # one full-length sequence
    params = {k: rng.uniform(-0.6, 0.6, size=s) for k, s in spec.param_shapes().items()}
    Y_shape = (N, spec.output_size) if spec.readout == "last" else (T, N, spec.output_size)
    H = spec.hidden_size
    inputs = {
        "X": rng.standard_normal((T, N, spec.input_size)),
        "h0": rng.standard_normal((N, H)),
        "lengths": lengths,
        "dY": rng.standard_normal(Y_shape),
        "dH": rng.standard_normal((T, N, H)),
        "dh_n": rng.standard_normal((N, H)),
    }
    return spec, params, inputs


def objective(spec: VarLenRNNSpec, p: Arrays, x: Arrays) -> float:
    """Σ <dY, Y> + <dH, H> + <dh_n, h_n>: every output has a cotangent."""
    Y, H, h_n, _ = varlen_forward(spec, {k: p[k] for k in KEYS}, p["X"], x["lengths"], p["h0"])
    return float(np.sum(Y * x["dY"]) + np.sum(H * x["dH"]) + np.sum(h_n * x["dh_n"]))


def grads(spec: VarLenRNNSpec, params: Arrays, x: Arrays) -> dict[str, np.ndarray]:
    _, _, _, cache = varlen_forward(spec, params, x["X"], x["lengths"], x["h0"])
    return varlen_backward(cache, x["dY"], x["dH"], x["dh_n"])


@settings(max_examples=60, deadline=None)
@given(cases())
def test_gradients_match_finite_differences(case: tuple[VarLenRNNSpec, Arrays, Arrays]) -> None:
    spec, params, x = case
    point = {**params, "X": x["X"], "h0": x["h0"]}
    _, H, _, _ = varlen_forward(spec, params, x["X"], x["lengths"], x["h0"])
    if spec.nonlinearity == "relu":
        Z_hint = np.abs(H)[H != 0]
        assume(Z_hint.size == 0 or Z_hint.min() > 1e-4)  # away from relu's kink
    rng = np.random.default_rng(0)
    assert_fd_match(
        f"varlen {spec}",
        lambda p: objective(spec, p, x),
        point,
        grads(spec, params, x),
        rng,
        scale=abs(objective(spec, point, x)) + 1.0,
    )


def alone(spec: VarLenRNNSpec, params: Arrays, x: Arrays, n: int) -> tuple[Any, ...]:
    """Sequence n alone, cut to its length (reversed for reverse=True), through refimpl.rnn:
    (H in the padded batch's time order, h_n, the gradients of <dH, H> + <dh_n, h_n>)."""
    L = int(x["lengths"][n])
    order = slice(L - 1, None, -1) if spec.reverse else slice(0, L)
    plain = rnn.RNNSpec(spec.input_size, spec.hidden_size, spec.output_size, spec.nonlinearity, "every")
    X = x["X"][:L, n : n + 1][order]
    H, seq = rnn.rnn_sequence_forward(
        X, x["h0"][n : n + 1], *(params[k] for k in rnn.RECURRENT_KEYS), nonlinearity=plain.nonlinearity
    )
    dH = x["dH"][:L, n : n + 1][order].copy()
    dH[-1] += x["dh_n"][n]  # h_n is the last state processed
    g = rnn.rnn_sequence_backward(dH, seq)
    return H[order][:, 0], H[-1, 0], g


@settings(max_examples=60, deadline=None)
@given(cases())
def test_each_sequence_is_the_plain_rnn_on_its_valid_steps(
    case: tuple[VarLenRNNSpec, Arrays, Arrays],
) -> None:
    spec, params, x = case
    x = {**x, "dY": np.zeros_like(x["dY"])}  # the recurrence alone; the readout is refimpl.rnn's
    _, H, h_n, cache = varlen_forward(spec, params, x["X"], x["lengths"], x["h0"])
    g = varlen_backward(cache, x["dY"], x["dH"], x["dh_n"])
    total = {k: np.zeros_like(params[k]) for k in ("W_ih", "W_hh", "b_ih")}
    for n, L in enumerate(x["lengths"]):
        if L == 0:  # zero_length "allow": no step, h_n = h0
            np.testing.assert_array_equal(h_n[n], x["h0"][n])
            np.testing.assert_array_equal(g["h0"][n], x["dh_n"][n])
            np.testing.assert_array_equal(g["X"][:, n], 0.0)
            continue
        H_n, last, g_n = alone(spec, params, x, n)
        np.testing.assert_allclose(H[:L, n], H_n, rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(H[L:, n], 0.0)  # the padded steps' outputs are 0
        np.testing.assert_allclose(h_n[n], last, rtol=1e-13, atol=1e-15)  # the last valid step's state
        order = slice(L - 1, None, -1) if spec.reverse else slice(0, L)
        np.testing.assert_allclose(g["X"][:L, n], g_n.dX[order][:, 0], rtol=1e-11, atol=1e-13)
        np.testing.assert_array_equal(g["X"][L:, n], 0.0)  # and zero gradient
        np.testing.assert_allclose(g["h0"][n], g_n.dh0[0], rtol=1e-11, atol=1e-13)
        for k, part in (("W_ih", g_n.dW_ih), ("W_hh", g_n.dW_hh), ("b_ih", g_n.db_ih)):
            total[k] += part
    for k, want in total.items():
        np.testing.assert_allclose(g[k], want, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("padding", [np.nan, np.inf, -1e300, 7.0])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("readout", rnn.READOUTS)
def test_padding_has_no_influence_whatever_it_holds(padding: float, reverse: bool, readout: str) -> None:
    spec = VarLenRNNSpec(2, 3, 2, readout=readout, reverse=reverse)
    rng = np.random.default_rng(1)
    params = {k: rng.uniform(-0.6, 0.6, size=s) for k, s in spec.param_shapes().items()}
    lengths = np.array([4, 1, 3])
    X, h0 = rng.standard_normal((4, 3, 2)), rng.standard_normal((3, 3))
    targets = rng.standard_normal((3, 2) if readout == "last" else (4, 3, 2))
    padded = X.copy()
    padded[np.arange(4)[:, None] >= lengths[None, :]] = padding
    base, other = (loss_and_grads(spec, params, x, lengths, h0, targets) for x in (X, padded))
    assert base[0] == other[0]
    for k in base[1]:
        np.testing.assert_array_equal(base[1][k], other[1][k], err_msg=k)
    np.testing.assert_array_equal(other[1]["X"][np.arange(4)[:, None] >= lengths[None, :]], 0.0)


@pytest.mark.parametrize("reverse", [False, True])
def test_length_zero_is_refused_or_leaves_h0(reverse: bool) -> None:
    spec = VarLenRNNSpec(2, 3, 2, reverse=reverse)
    rng = np.random.default_rng(2)
    params = {k: rng.uniform(-0.6, 0.6, size=s) for k, s in spec.param_shapes().items()}
    X, h0, lengths = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 3)), np.array([3, 0])
    with pytest.raises(ValueError, match=r"lengths: expected lengths in \[1, 3\].*received 0 at example 1"):
        varlen_forward(spec, params, X, lengths, h0)
    allow = replace(spec, zero_length="allow")
    Y, H, h_n, cache = varlen_forward(allow, params, X, lengths, h0)
    np.testing.assert_array_equal(h_n[1], h0[1])
    np.testing.assert_array_equal(H[:, 1], 0.0)
    dh_n = rng.standard_normal((2, 3))
    g = varlen_backward(cache, np.zeros_like(Y), None, dh_n)
    np.testing.assert_array_equal(g["h0"][1], dh_n[1])  # h_n = h0: the identity
    np.testing.assert_array_equal(g["X"][:, 1], 0.0)
    every = replace(allow, readout="every")
    with pytest.raises(ValueError, match="at least one valid step"):
        loss_and_grads(every, params, X, np.array([0, 0]), h0, np.zeros((3, 2, 2)))


def test_bad_input_names_the_field() -> None:
    spec = VarLenRNNSpec(2, 3, 2)
    params = {k: np.zeros(s) for k, s in spec.param_shapes().items()}
    X, h0 = np.zeros((3, 2, 2)), np.zeros((2, 3))
    for lengths, error, text in [
        (np.array([1.0, 2.0]), TypeError, "integer numpy.ndarray"),
        (np.array([1]), ValueError, r"shape \(2,\)"),
        (np.array([4, 1]), ValueError, r"lengths in \[1, 3\]"),
    ]:
        with pytest.raises(error, match=f"lengths: expected .*{text}"):
            varlen_forward(spec, params, X, lengths, h0)
    with pytest.raises(ValueError, match="X: expected finite values at the valid steps"):
        nan_first = np.where(np.arange(3)[:, None, None] == 0, np.nan, X)
        varlen_forward(spec, params, nan_first, np.array([3, 2]), h0)
    with pytest.raises(ValueError, match="truncation: padded sequences run full BPTT"):
        VarLenRNNSpec(2, 3, 2, truncation=2)
    with pytest.raises(ValueError, match="zero_length: expected one of"):
        VarLenRNNSpec(2, 3, 2, zero_length="skip")
    with pytest.raises(TypeError, match="reverse: expected a bool"):
        VarLenRNNSpec(2, 3, 2, reverse=1)  # type: ignore[arg-type]
    assert VarLenRNNSpec.from_json(VarLenRNNSpec(2, 3, 2, reverse=True).to_json()).reverse is True
