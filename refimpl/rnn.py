"""Elman RNN (torch's `nn.RNN`) with a dense readout: step, sequence, BPTT, loss.

Time-major batches (torch's default, `batch_first=False`): X (T, N, D), hidden
states H (T, N, H), outputs (N, C) or (T, N, C). Steps t = 1..T are stored at
array index t - 1 (x_t = X[t-1], h_t = H[t-1]); h_0 is the argument `h0` (N, H).

Forward (two biases, as torch; flax's `SimpleCell` has one, b = b_ih + b_hh):

    z_t = x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh        (N, H)
    h_t = f(z_t),   f = tanh or relu                    torch's `nonlinearity`
    Y   = h_T W_outᵀ + b_out                             (N, C)     readout "last"
    Y_t = h_t W_outᵀ + b_out                             (T, N, C)  readout "every"

Backpropagation through time, δ_t = ∂L/∂z_t, a reversed loop that carries ∂L/∂h back:

    ∂L/∂h_t   = ∂L/∂Y_t W_out + δ_{t+1} W_hh            readout term (every t, or t = T only)
    δ_t       = f'(z_t) ⊙ ∂L/∂h_t                       tanh' = 1 - h_t², relu'(0) = 0
    ∂L/∂x_t   = δ_t W_ih,          ∂L/∂h_0  = δ_1 W_hh
    ∂L/∂W_ih  = Σ_t δ_tᵀ x_t,      ∂L/∂W_hh = Σ_t δ_tᵀ h_{t-1}
    ∂L/∂b_ih  = ∂L/∂b_hh = Σ_t Σ_n δ_t,n
    ∂L/∂W_out = Σ_t ∂L/∂Y_tᵀ h_t,  ∂L/∂b_out = Σ_t Σ_n ∂L/∂Y_t,n

Losses (refimpl.losses): "mse" is the mean over every element of Y; "cross_entropy"
the mean over rows, and with readout "every" the rows are the T·N (step, example)
pairs, labels of shape (T, N). Truncated BPTT (`RNNSpec.truncation`) is refimpl.bptt,
which builds on this module; its `loss_and_grads` and `vjp` honour the window, this
module's compute full BPTT. Parameters: "W_ih" (H, D), "W_hh" (H, H), "b_ih" (H,),
"b_hh" (H,), "W_out" (C, H), "b_out" (C,); gradients use the same keys plus "X" and "h0".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl import activations, init, losses
from refimpl._validate import (
    SPEC_DTYPES,
    describe,
    json_fields,
    raise_if_overflowed,
    require_array,
    require_choice,
    require_instance,
    require_int,
    require_labels,
    require_real,
    require_same_keys,
)
from refimpl.linear import LinearCache, linear_backward, linear_forward

Array = NDArray[Any]

NONLINEARITIES = ("tanh", "relu")  # torch nn.RNN's `nonlinearity`; default "tanh"
READOUTS = ("last", "every")
RECURRENT_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh")


@dataclass(frozen=True)
class RNNSpec:
    """Hyper-parameters of an Elman RNN with a readout; serializes to JSON for replay."""

    input_size: int  # D
    hidden_size: int  # H
    output_size: int  # C
    nonlinearity: str = "tanh"  # f: "tanh" (torch's default) or "relu"
    readout: str = "last"  # "last": Y = readout(h_T), (N, C); "every": Y_t for every t, (T, N, C)
    loss: str = "mse"  # "mse" (mean over all elements) or "cross_entropy" (mean over rows)
    dtype: str = "float64"  # the computation's: "float32" or "float64" (a framework run: SPEC_DTYPES)
    truncation: int | None = None  # BPTT window k (refimpl.bptt); None is full BPTT

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "output_size"):
            require_int(name, getattr(self, name))
        require_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        require_choice("readout", self.readout, READOUTS)
        require_choice("loss", self.loss, losses.LOSSES)
        require_choice("dtype", self.dtype, SPEC_DTYPES)
        if self.truncation is not None:
            require_int("truncation", self.truncation)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        D, H, C = self.input_size, self.hidden_size, self.output_size
        return {
            "W_ih": (H, D),
            "W_hh": (H, H),
            "b_ih": (H,),
            "b_hh": (H,),
            "W_out": (C, H),
            "b_out": (C,),
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RNNSpec:
        return cls(**json_fields(cls, text))


def require_spec(spec: Any) -> RNNSpec:
    """An RNNSpec (TypeError otherwise)."""
    return require_instance("spec", spec, RNNSpec, "an RNNSpec")


def init_params(spec: RNNSpec, rng: np.random.Generator, scheme: str = "torch") -> dict[str, Array]:
    """Every parameter under the initialization `scheme` (refimpl.init): "torch", U(-1/√H, 1/√H)
    as `nn.RNN` and `nn.Linear(H, C)` for the readout, or "flax", `SimpleCell` and `Dense`'s."""
    require_spec(spec)
    inits = init.rnn_inits(spec.input_size, spec.hidden_size, spec.output_size, scheme)
    return init.draw(inits, spec.param_shapes(), rng, spec.dtype)


def check_params(spec: RNNSpec, params: dict[str, Array]) -> None:
    """Keys, shapes, dtype and finiteness of a parameter dict."""
    shapes = require_spec(spec).param_shapes()
    require_same_keys("params", params, shapes)
    for name, shape in shapes.items():
        require_array(f"params[{name!r}]", params[name], shape=shape, dtype=spec.dtype)


def check_inputs(spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None) -> Array:
    """Validates params, X (T, N, D) with T, N >= 1, and h0 (N, H); returns h0 (zeros if None)."""
    check_params(spec, params)
    require_array("X", X, shape=(None, None, spec.input_size), dtype=spec.dtype)
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X: expected shape (T, N, D) with T >= 1 and N >= 1, received {X.shape}")
    shape = (X.shape[1], spec.hidden_size)
    if h0 is None:  # torch's and flax's default initial state
        return np.zeros(shape, dtype=spec.dtype)
    return require_array("h0", h0, shape=shape, dtype=spec.dtype)


def output_shape(spec: RNNSpec, T: int, N: int) -> tuple[int, ...]:
    """The shape of Y for T steps of N examples: (N, C) for readout "last", else (T, N, C)."""
    require_spec(spec)
    T, N = require_int("T", T), require_int("N", N)
    return (N, spec.output_size) if spec.readout == "last" else (T, N, spec.output_size)


def check_targets(spec: RNNSpec, targets: Array, T: int, N: int) -> None:
    """mse: "targets" shaped like Y; cross_entropy: integer "labels" (N,) or (T, N) in [0, C)."""
    shape = output_shape(spec, T, N)
    if spec.loss == "mse":
        require_array("targets", targets, shape=shape, dtype=spec.dtype)
        return
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"labels: expected an integer numpy.ndarray, received {describe(targets)}")
    if targets.shape != shape[:-1]:
        raise ValueError(f"labels: expected shape {shape[:-1]}, received shape {targets.shape}")
    require_labels("labels", targets.reshape(-1), rows=targets.size, classes=spec.output_size)


class StepCache(NamedTuple):
    """x_t and W_ih, h_{t-1} and W_hh (references, no copies), and f's cache (h_t or z_t)."""

    ih: LinearCache
    hh: LinearCache
    act: activations.ActivationCache


class StepGrads(NamedTuple):
    dx: Array  # (N, D)
    dh_prev: Array  # (N, H)
    dW_ih: Array  # (H, D)
    dW_hh: Array  # (H, H)
    db_ih: Array  # (H,)
    db_hh: Array  # (H,)


def rnn_step_forward(
    x_t: Array,
    h_prev: Array,
    W_ih: Array,
    W_hh: Array,
    b_ih: Array,
    b_hh: Array,
    nonlinearity: str = "tanh",
) -> tuple[Array, StepCache]:
    """h_t = f(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh), x_t (N, D), h_prev (N, H)."""
    require_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    require_array("W_ih", W_ih, shape=(None, None))
    H = W_ih.shape[0]
    require_array("W_hh", W_hh, shape=(H, H), dtype=W_ih.dtype.name)
    require_array("x_t", x_t, shape=(None, W_ih.shape[1]), dtype=W_ih.dtype.name)
    require_array("h_prev", h_prev, shape=(x_t.shape[0], H), dtype=W_ih.dtype.name)
    z_in, ih = linear_forward(x_t, W_ih, b_ih)  # N, H
    z_rec, hh = linear_forward(h_prev, W_hh, b_hh)  # N, H
    h, act = activations.activation_forward(nonlinearity, z_in + z_rec)  # N, H
    return h, StepCache(ih, hh, act)


def rnn_step_backward(dh_t: Array, cache: StepCache) -> StepGrads:
    """δ_t = f'(z_t) ⊙ ∂L/∂h_t; then ∂L/∂x_t = δ_t W_ih, ∂L/∂h_{t-1} = δ_t W_hh and the weights'."""
    require_instance("cache", cache, StepCache)
    require_array("dh_t", dh_t, shape=cache.act.kept.shape, dtype=cache.act.kept.dtype.name)
    delta = activations.activation_backward(dh_t, cache.act)  # N, H
    dx, dW_ih, db_ih = linear_backward(delta, cache.ih)
    dh_prev, dW_hh, db_hh = linear_backward(delta, cache.hh)
    return StepGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)


class SequenceCache(NamedTuple):
    """What BPTT needs: the inputs, the states each step started from, the weights, f's caches."""

    X: Array  # (T, N, D), x_t = X[t-1]
    H_prev: Array  # (T, N, H): h_{t-1} for t = 1..T, i.e. h0 followed by H[:-1]
    W_ih: Array  # (H, D)
    W_hh: Array  # (H, H)
    acts: tuple[activations.ActivationCache, ...]  # f's cache at each step, t = 1..T


class SequenceGrads(NamedTuple):
    dX: Array  # (T, N, D)
    dh0: Array  # (N, H)
    dW_ih: Array  # (H, D)
    dW_hh: Array  # (H, H)
    db_ih: Array
    db_hh: Array
    dh_norms: Array  # (T,): ‖∂L/∂h_t‖ over (N, H), the gradient arriving at h_t


def rnn_sequence_forward(
    X: Array,
    h0: Array,
    W_ih: Array,
    W_hh: Array,
    b_ih: Array,
    b_hh: Array,
    nonlinearity: str = "tanh",
) -> tuple[Array, SequenceCache]:
    """All hidden states H (T, N, H) for X (T, N, D) from h0 (N, H).

    The step of rnn_step_forward, with its input term taken for every step at once:
    x_t W_ihᵀ + b_ih does not depend on h, so one (T·N, D) x (D, H) product replaces T
    small ones, and only h_{t-1} W_hhᵀ stays inside the loop over time.
    """
    require_choice("nonlinearity", nonlinearity, NONLINEARITIES)
    require_array("W_ih", W_ih, shape=(None, None))
    H, D = W_ih.shape
    dtype = W_ih.dtype.name
    require_array("X", X, shape=(None, None, D), dtype=dtype)
    if X.shape[0] < 1:
        raise ValueError(f"X: expected at least 1 time step, received shape {X.shape}")
    require_array("h0", h0, shape=(X.shape[1], H), dtype=dtype)
    require_array("W_hh", W_hh, shape=(H, H), dtype=dtype)
    require_array("b_ih", b_ih, shape=(H,), dtype=dtype)
    require_array("b_hh", b_hh, shape=(H,), dtype=dtype)
    Z_in = X @ W_ih.T  # T, N, H: every step's input term in one product
    Z_in += b_ih + b_hh
    H_all = np.empty_like(Z_in)
    h, acts = h0, []
    for t in range(X.shape[0]):
        z = Z_in[t]
        z += h @ W_hh.T  # N, H: the recurrent term, in place in this step's own slice
        h, act = activations.activation_forward(nonlinearity, z)
        H_all[t] = h
        acts.append(act)
    H_prev = np.concatenate([h0[None], H_all[:-1]])  # T, N, H
    return H_all, SequenceCache(X, H_prev, W_ih, W_hh, tuple(acts))


def rnn_sequence_backward(dH: Array, cache: SequenceCache) -> SequenceGrads:
    """BPTT, t = T..1: ∂L/∂h_t = dH[t-1] (readout term) + δ_{t+1} W_hh (carried back).

    Only δ_t and the carry need the loop; the sums over time of the weight gradients
    and every ∂L/∂x_t are single products over all (t, n) rows afterwards:
    ∂L/∂W_ih = Σ_t δ_tᵀ x_t = δᵀ X over T·N rows, ∂L/∂X = δ W_ih, ∂L/∂W_hh = δᵀ H_prev.
    """
    X, H_prev, W_ih, W_hh, acts = require_instance("cache", cache, SequenceCache)
    T, N, H = H_prev.shape
    if len(acts) != T:
        raise ValueError(f"cache: expected {T} activation caches (one per step), received {len(acts)}")
    require_array("dH", dH, shape=(T, N, H), dtype=H_prev.dtype.name)
    delta = np.empty_like(H_prev)  # T, N, H: δ_t = ∂L/∂z_t
    norms = np.empty(T)
    dh = np.zeros((N, H), dtype=H_prev.dtype)  # nothing flows back from beyond h_T
    for t in range(T - 1, -1, -1):
        dh = dH[t] + dh  # N, H: readout term + recurrent term
        norms[t] = np.linalg.norm(dh)
        try:
            delta[t] = activations.activation_backward(dh, acts[t])
        except ValueError as err:  # dh is dH[T-1] at t = T, checked above; later, carried back
            raise_if_overflowed(err, "params", f"BPTT (∂L/∂h_{t + 1})", dh)
        dh = delta[t] @ W_hh  # ∂L/∂h_{t-1}, N, H
    rows = delta.reshape(T * N, H)
    dW_ih = rows.T @ X.reshape(T * N, -1)  # H, D
    dW_hh = rows.T @ H_prev.reshape(T * N, H)  # H, H
    db = rows.sum(axis=0)  # H: the same for b_ih and b_hh
    dX = delta @ W_ih  # T, N, D
    return SequenceGrads(dX, dh, dW_ih, dW_hh, db, db.copy(), norms)


class ReadoutCache(NamedTuple):
    readout: str
    linear: LinearCache  # input h_T (N, H) for "last", every h_t as rows (T·N, H) for "every"
    hidden_shape: tuple[int, ...]  # (T, N, H)


def readout_forward(readout: str, H_all: Array, W_out: Array, b_out: Array) -> tuple[Array, ReadoutCache]:
    """Y = h_T W_outᵀ + b_out (N, C), or Y_t = h_t W_outᵀ + b_out for every t (T, N, C)."""
    require_choice("readout", readout, READOUTS)
    require_array("H", H_all, shape=(None, None, None))
    T, N, H = H_all.shape
    rows = H_all[-1] if readout == "last" else H_all.reshape(T * N, H)
    Y, lin = linear_forward(rows, W_out, b_out)
    return (Y if readout == "last" else Y.reshape(T, N, -1)), ReadoutCache(readout, lin, (T, N, H))


def readout_backward(dY: Array, cache: ReadoutCache) -> tuple[Array, Array, Array]:
    """(∂L/∂H (T, N, H), ∂L/∂W_out, ∂L/∂b_out); with "last", ∂L/∂H is zero before step T."""
    require_instance("cache", cache, ReadoutCache)
    T, N, _ = cache.hidden_shape
    C = cache.linear.W.shape[0]
    shape = (N, C) if cache.readout == "last" else (T, N, C)
    require_array("dY", dY, shape=shape, dtype=cache.linear.W.dtype.name)
    d_rows, dW_out, db_out = linear_backward(dY.reshape(-1, C), cache.linear)
    if cache.readout == "every":
        return d_rows.reshape(cache.hidden_shape), dW_out, db_out
    dH = np.zeros(cache.hidden_shape, dtype=d_rows.dtype)
    dH[-1] = d_rows
    return dH, dW_out, db_out


def readout_loss(spec: RNNSpec, Y: Array, targets: Array, weight: float = 1.0) -> tuple[float, Array]:
    """weight · loss(Y, targets) and ∂/∂Y; the rows of Y are its (step, example) pairs.

    Y is (N, C) for readout "last", (T, N, C) for "every"; targets as `check_targets`."""
    last = require_spec(spec).readout == "last"
    require_array(
        "Y", Y, shape=(None, spec.output_size) if last else (None, None, spec.output_size), dtype=spec.dtype
    )
    weight = require_real("weight", weight, minimum=0.0)
    check_targets(spec, targets, *((1, Y.shape[0]) if last else Y.shape[:2]))
    C = Y.shape[-1]
    if spec.loss == "mse":
        loss, mcache = losses.mse_forward(Y.reshape(-1, C), targets.reshape(-1, C))
        return weight * loss, losses.mse_backward(weight, mcache).reshape(Y.shape)
    loss, ccache = losses.cross_entropy_forward(Y.reshape(-1, C), targets.reshape(-1))
    return weight * loss, losses.cross_entropy_backward(weight, ccache).reshape(Y.shape)


class RNNCache(NamedTuple):
    sequence: SequenceCache
    readout: ReadoutCache


def rnn_forward(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None
) -> tuple[Array, Array, RNNCache]:
    """(Y, H (T, N, H), cache); h0 = None means zeros (torch's and flax's default)."""
    h0 = check_inputs(spec, params, X, h0)
    W_ih, W_hh, b_ih, b_hh = (params[key] for key in RECURRENT_KEYS)
    H_all, seq = rnn_sequence_forward(X, h0, W_ih, W_hh, b_ih, b_hh, spec.nonlinearity)
    try:
        Y, rcache = readout_forward(spec.readout, H_all, params["W_out"], params["b_out"])
    except ValueError as err:
        raise_if_overflowed(err, "params", "the forward pass (the hidden states H)", H_all)
    return Y, H_all, RNNCache(seq, rcache)


def _grads_dict(g: SequenceGrads, dW_out: Array, db_out: Array) -> dict[str, Array]:
    return {
        "W_ih": g.dW_ih,
        "W_hh": g.dW_hh,
        "b_ih": g.db_ih,
        "b_hh": g.db_hh,
        "W_out": dW_out,
        "b_out": db_out,
        "X": g.dX,
        "h0": g.dh0,
    }


def rnn_backward(dY: Array, cache: RNNCache) -> dict[str, Array]:
    """Full BPTT from the upstream gradient ∂L/∂Y: every parameter, "X" and "h0"."""
    require_instance("cache", cache, RNNCache)
    dH, dW_out, db_out = readout_backward(dY, cache.readout)
    return _grads_dict(rnn_sequence_backward(dH, cache.sequence), dW_out, db_out)


def loss_and_grads(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None, targets: Array
) -> tuple[float, dict[str, Array]]:
    """The loss and its full-BPTT gradient for every parameter, "X" and "h0".

    Full BPTT only: a spec with a window (spec.truncation) goes to refimpl.bptt.loss_and_grads.
    """
    _require_full(spec)
    h0 = check_inputs(spec, params, X, h0)
    check_targets(spec, targets, *X.shape[:2])
    Y, _, cache = rnn_forward(spec, params, X, h0)
    loss, dY = readout_loss(spec, Y, targets)
    return loss, rnn_backward(dY, cache)


def _require_full(spec: RNNSpec) -> None:
    if require_spec(spec).truncation is not None:
        raise ValueError(
            f"spec.truncation: refimpl.rnn computes full BPTT, expected None, received"
            f" {spec.truncation} (truncated BPTT is refimpl.bptt)"
        )


def hidden_grad_norms(
    spec: RNNSpec, params: dict[str, Array], X: Array, h0: Array | None, targets: Array
) -> Array:
    """‖∂L/∂h_t‖ over (N, H) for t = 1..T, shape (T,), full BPTT: the vanishing-gradient profile."""
    h0 = check_inputs(spec, params, X, h0)
    check_targets(spec, targets, *X.shape[:2])
    Y, _, cache = rnn_forward(spec, params, X, h0)
    dH = readout_backward(readout_loss(spec, Y, targets)[1], cache.readout)[0]
    return rnn_sequence_backward(dH, cache.sequence).dh_norms
