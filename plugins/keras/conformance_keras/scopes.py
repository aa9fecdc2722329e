"""Which cases reach the plugin's case-scoped known issues (`reached` in known_issues.toml;
conformance.scopes says what a predicate answers)."""

from __future__ import annotations

from conformance.case import Case


def simplernn_tanh_float64(case: Case) -> bool:
    """A float64 `SimpleRNN` whose activation is tanh (keras-simplernn-float64-scan-carry):
    `ops.tanh` hands back float32 for the float64 state, and `jax.lax.scan` refuses a carry
    that changes dtype. A relu network runs, so a row draws both kinds of case."""
    return case.spec.dtype == "float64" and getattr(case.spec, "nonlinearity", None) == "tanh"
