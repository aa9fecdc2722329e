"""The Elman RNN on padded batches of variable-length sequences: "rnn_varlen".

Reference refimpl.varlen; torch through `pack_padded_sequence`, `nn.RNN` on the PackedSequence
and `pad_packed_sequence` (`enforce_sorted` both ways; reversed: the reverse direction of a
bidirectional `nn.RNN`), JAX through flax `nn.RNN(SimpleCell, return_carry=True, reverse=...,
keep_order=True)` called with `seq_lengths`. Inputs "X" (T, N, D) and "h0" (N, H), and the
lengths; outputs "Y", "H" (every step's state), "h_n" (the final state) and "loss", padded steps 0.
The generic properties, and the padding's own: no influence of any value it holds, the final
state is the last valid step's, and a length of 0 (torch refuses it; flax takes it).
"""

from __future__ import annotations

from functools import partial

from conformance import properties as p
from conformance.case import Case
from conformance.component import Check, Component
from conformance.components.rnn_varlen import properties as vp
from conformance.components.rnn_varlen.boundary import BOUNDARY
from conformance.components.rnn_varlen.reference import varlen_reference
from conformance.components.rnn_varlen.rounding import varlen_rounding
from conformance.components.rnn_varlen.strategies import CATALOG, varlen_case, varlen_cases
from refimpl.varlen import VarLenRNNSpec


def golden_case(seed: int) -> Case:
    return varlen_case(CATALOG[seed % len(CATALOG)], seed)


RNN_VARLEN = Component(
    "rnn_varlen",
    VarLenRNNSpec,
    ("X", "h0"),
    ("Y", "H", "h_n", "loss"),
    varlen_reference,
    golden_case,
    checks=(
        Check(p.FORWARD_AGREEMENT, varlen_cases, "varlen_forward"),
        Check(p.GRADIENT_AGREEMENT, varlen_cases, "varlen_gradient"),
        Check(p.LOSS_GRADIENT_AGREEMENT, varlen_cases, "varlen_loss_gradient"),
        Check(p.FINITE_DIFFERENCES, varlen_cases, "varlen_finite_differences"),
        Check(p.REVERSE_VS_FORWARD, varlen_cases, "varlen_reverse_vs_forward"),
        Check(vp.PADDING_INVARIANCE, varlen_cases, "padding_invariance"),
        Check(vp.PADDING_NONFINITE, varlen_cases, "padding_nonfinite"),
        Check(vp.FINAL_STATE, varlen_cases, "final_state"),
        Check(vp.ZERO_LENGTH, partial(varlen_cases, zero=True), "zero_length"),
        Check(vp.LENGTH_BEYOND_T, partial(varlen_cases, beyond=True), "length_beyond_t"),
    ),
    adapters={
        "torch": "conformance.components.rnn_varlen.torch_adapter",
        "jax": "conformance.components.rnn_varlen.jax_adapter",
    },
    rounding=varlen_rounding,
    boundary=BOUNDARY,
)

COMPONENTS = (RNN_VARLEN,)
