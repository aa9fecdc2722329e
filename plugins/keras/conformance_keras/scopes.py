"""Which cases reach the plugin's case-scoped known issues (`reached` in known_issues.toml;
conformance.scopes says what a predicate answers)."""

from __future__ import annotations

from conformance.case import Case


def simplernn_tanh_float64(case: Case) -> bool:
    """A float64 `SimpleRNN` whose activation is tanh (keras-simplernn-float64-scan-carry):
    `ops.tanh` hands back float32 for the float64 state, and `jax.lax.scan` refuses a carry
    that changes dtype. A relu network runs, so a row draws both kinds of case."""
    return case.spec.dtype == "float64" and getattr(case.spec, "nonlinearity", None) == "tanh"


def mlp_tanh_float64(case: Case) -> bool:
    """A float64 MLP with a tanh layer (keras-float64-computed-in-float32 on kink-convention):
    `ops.tanh` computes in float32 and casts back, ~1e-8 relative, where relu, leaky ReLU and
    sigmoid stay in float64. The kink cases of a dev draw are relu and leaky-ReLU networks
    (every value agrees), those of the ci catalog include a tanh network (it reproduces)."""
    spec = case.spec
    return spec.dtype == "float64" and "tanh" in (spec.hidden_activation, spec.output_activation)


def mse_float64(case: Case) -> bool:
    """A float64 network whose loss is the mean squared error (keras-float64-computed-in-float32
    on the RNN's loss rows): `ops.mean` computes in float32 and casts back. Its tanh networks
    raise first (simplernn_tanh_float64), so the relu ones show it; the ci catalog's relu RNN
    has a cross-entropy loss, a dev draw of a relu network with MSE reaches it."""
    return case.spec.dtype == "float64" and case.spec.loss == "mse"


def mse_float64_gradient(case: Case) -> bool | None:
    """mse_float64 on the rows that compare the loss's gradient, not its value: the float32 mean's
    gradient, 2 (Y - T) / n, may round to the float64 one (n a power of two), so a case that
    reaches it and agrees says nothing (None: a failure there is the issue, a pass no news)."""
    return None if mse_float64(case) else False
