"""Padded sequences in JAX: flax `nn.RNN(SimpleCell, return_carry=True, reverse=..., keep_order=True)`
called with `seq_lengths`, an `nn.Dense` readout, optax losses.

Parameters as in the RNN's adapter (components/rnn/jax_adapter.py): `SimpleCell` has one bias,
b = b_ih + b_hh, whose gradient is reported under both names. X (T, N, D) goes in batch-major.
flax returns the carry of each sequence's last valid step (`return_carry`), reads a reversed
sequence from its last valid step with the padding kept at the end (`reverse`, `keep_order`
puts the outputs back in time order), and leaves the outputs of padded steps as the cell
computed them ("NOT zeroed out", its documentation says): the adapter sets them, and the
readout's, to 0 with the step mask, and the loss of readout "every" is the mean over the valid
steps (optax's per-element losses, masked). The lengths are data: one compiled program per
(spec, shapes, dtype) serves every batch of lengths.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.rnn import jax_adapter as jax_rnn
from conformance.components.rnn_varlen.properties import adapter_arguments
from conformance.frameworks.jax import enable_float64
from refimpl.varlen import VarLenRNNSpec

enable_float64()

CONVENTIONS: dict[str, object] = {
    "zero_length": "allow",  # nn.RNN takes seq_lengths of 0 (known issue: its carry is then not h0)
}


def modules(spec: VarLenRNNSpec) -> tuple[nn.RNN, nn.Dense]:
    dtype = jnp.dtype(spec.dtype)
    cell = nn.SimpleCell(
        spec.hidden_size, activation_fn=jax_rnn.ACTIVATIONS[spec.nonlinearity], dtype=dtype, param_dtype=dtype
    )
    rnn = nn.RNN(cell, return_carry=True, reverse=spec.reverse, keep_order=True)
    return rnn, nn.Dense(spec.output_size, dtype=dtype, param_dtype=dtype)


def to_variables(params: Arrays) -> dict[str, Any]:
    cell = {
        "i": {"kernel": params["W_ih"].T, "bias": params["b_ih"] + params["b_hh"]},
        "h": {"kernel": params["W_hh"].T},
    }
    return {
        "rnn": {"params": {"cell": cell}},
        "readout": {"params": {"kernel": params["W_out"].T, "bias": params["b_out"]}},
    }


def from_variables(variables: dict[str, Any]) -> Arrays:
    cell = variables["rnn"]["params"]["cell"]
    readout = variables["readout"]["params"]
    b = np.asarray(cell["i"]["bias"], np.float64)
    return {
        "W_ih": np.asarray(cell["i"]["kernel"], np.float64).T,
        "W_hh": np.asarray(cell["h"]["kernel"], np.float64).T,
        "b_ih": b,
        "b_hh": b.copy(),
        "W_out": np.asarray(readout["kernel"], np.float64).T,
        "b_out": np.asarray(readout["bias"], np.float64),
    }


def masked_mean(per_row: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of per_row (T, N) over the valid steps."""
    return jnp.sum(jnp.where(mask, per_row, 0)) / jnp.sum(mask)


def _outputs(spec: VarLenRNNSpec, targets: Any, lengths: Any, variables: Any, X: Any, h0: Any) -> Any:
    rnn, dense = modules(spec)
    T = X.shape[0]
    h_n, H_bm = rnn.apply(variables["rnn"], X.swapaxes(0, 1), initial_carry=h0, seq_lengths=lengths)
    mask = jnp.arange(T)[:, None] < lengths[None, :]  # (T, N)
    H = jnp.where(mask[..., None], H_bm.swapaxes(0, 1), 0)  # flax leaves padded steps' outputs as computed
    if spec.readout == "last":
        Y = dense.apply(variables["readout"], h_n)
        loss = jax_rnn.loss_of(spec, Y, targets)
        return Y, H, h_n, loss
    Y = jnp.where(mask[..., None], dense.apply(variables["readout"], H), 0)
    if spec.loss == "mse":
        loss = masked_mean(optax.squared_error(Y, targets).mean(axis=-1), mask)
    else:
        loss = masked_mean(optax.softmax_cross_entropy_with_integer_labels(Y, targets), mask)
    return Y, H, h_n, loss


@partial(jax.jit, static_argnums=0)
def _evaluate(
    spec: VarLenRNNSpec, variables: Any, X: Any, h0: Any, lengths: Any, targets: Any, cot: Any, tangents: Any
) -> Any:
    f = partial(_outputs, spec, targets, lengths)
    outputs, pullback = jax.vjp(f, variables, X, h0)
    _, tangents_out = jax.jvp(f, (variables, X, h0), tangents)
    return outputs, pullback(cot), tangents_out


def _call(case: Case, cotangents: Arrays | None, tangents: Arrays | None) -> Any:
    params, x, cot, d = adapter_arguments(case, cotangents, tangents)
    t = (to_variables(d), d["X"], d["h0"])
    lengths = x["lengths"].astype(np.int32)
    return _evaluate(case.spec, to_variables(params), x["X"], x["h0"], lengths, x["targets"], cot, t)


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    (Y, H, h_n, loss), (d_vars, dX, dh0), _ = _call(case, cotangents, None)
    outputs = {k: np.asarray(v, np.float64) for k, v in {"Y": Y, "H": H, "h_n": h_n, "loss": loss}.items()}
    if not cotangents:
        return Outcome(outputs, {}, {})
    grads = {**from_variables(d_vars), "X": np.asarray(dX, np.float64), "h0": np.asarray(dh0, np.float64)}
    return Outcome(outputs, grads, {})


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    _, _, (dY, _, _, dloss) = _call(case, None, tangents)
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}
