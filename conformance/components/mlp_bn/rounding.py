"""The batch-normalized MLP's rounding bound: refimpl.mlp_bn in conformance.rounding's arithmetic.

Batch norm in training mode (refimpl.batchnorm), per feature, N rows:

    μ = Σ_n Z_n / N,  c = Z - μ,  σ² = Σ_n c_n² / N      two-pass (as torch, and flax
                                                         with use_fast_variance=False)
    s = 1/√(σ² + ε),  x̂ = c s,  Ẑ = γ x̂ + β
    ∂L/∂β = Σ_n δ_n,  ∂L/∂γ = Σ_n δ_n x̂_n
    ∂L/∂Z = γ s / N (N δ - ∂L/∂β - x̂ ∂L/∂γ)             terms [1] [2] [3]

Eval mode normalizes with the running statistics r_μ, r_σ² (their bounds come in with
the state, so a chain of steps, each fed the state the previous one returned, carries
them along). The running statistics r ← (1 - m) r + m b (torch) or m r + (1 - m) b
(flax), b = σ² N/(N - 1) for the unbiased estimator. Everything else is refimpl.mlp's
(conformance.components.mlp.rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.components.mlp.rounding import Grads, Normalization, Triple, network_passes
from conformance.rounding import Arithmetic, Uncertain, rms
from refimpl.mlp import MLPSpec


def _row(x: Uncertain) -> Uncertain:
    """A (D,) vector as a (1, D) row, broadcast over the batch."""
    return Uncertain(x.v[None, :], x.d[:, None, :])


def batch_variance(ar: Arithmetic, Z: Uncertain, mu: Uncertain, c: Uncertain, formula: str) -> Uncertain:
    """σ² two-pass, Σ_n c_n² / N; or, formula "either", per feature the rounding of
    whichever of two-pass and E[Z²] - μ² (flax's default use_fast_variance) errs more."""
    two_pass = ar.mean(ar.mul(c, c), axis=0)
    if formula == "two-pass":
        return two_pass
    fast = ar.sub(ar.mean(ar.mul(Z, Z), axis=0), ar.mul(mu, mu))
    larger = rms(fast) > rms(two_pass)
    return Uncertain(two_pass.v, np.where(larger, fast.d, two_pass.d))


def batchnorm_forward(
    ar: Arithmetic,
    spec: MLPSpec,
    Z: Uncertain,
    gamma: Uncertain,
    beta: Uncertain,
    mean: Uncertain,
    var: Uncertain,
    train: bool,
    variance: str = "two-pass",
) -> tuple[Uncertain, tuple[Any, ...], dict[str, Uncertain]]:
    """(Ẑ, what the backward needs, new running statistics {"mean", "var"})."""
    N = Z.v.shape[0]
    eps = ar.rounded(spec.bn_eps)
    if train:
        mu = ar.mean(Z, axis=0)
        c = ar.sub(Z, _row(mu))
        # every implementation's batch variance is >= 0 (a mean of squares; the one-pass E[z²] -
        # E[z]² is clipped at 0, as flax does): samples held there, else a bfloat16 variance of
        # three rows whose deviation exceeds it takes rsqrt(σ² + ε) below 0 (a NaN bound)
        sigma2 = ar.within(batch_variance(ar, Z, mu, c, variance), low=0.0)
        stats = running_statistics(ar, spec, mean, var, mu, sigma2, N)
    else:
        c, sigma2, stats = ar.sub(Z, _row(mean)), var, {"mean": mean, "var": var}
    # and σ² + ε >= ε (rounded) in every one: where σ²'s deviation is as large as σ² (bfloat16,
    # a huge mean over three rows) the sample's own rounding must not take it below
    s = ar.rsqrt(ar.within(ar.add(sigma2, eps), low=float(eps.v) * (1 - ar.u)))
    xhat = ar.mul(c, _row(s))
    out = ar.add(ar.mul(xhat, _row(gamma)), _row(beta))
    return out, (xhat, s, gamma, train), stats


def running_statistics(
    ar: Arithmetic, spec: MLPSpec, mean: Uncertain, var: Uncertain, mu: Uncertain, sigma2: Uncertain, N: int
) -> dict[str, Uncertain]:
    m = spec.bn_momentum
    keep, take = (1.0 - m, m) if spec.bn_momentum_convention == "torch" else (m, 1.0 - m)
    batch_var = sigma2
    if spec.bn_running_var == "unbiased" and N > 1:
        batch_var = ar.scale(sigma2, N / (N - 1))

    def update(r: Uncertain, b: Uncertain) -> Uncertain:
        return ar.add(ar.scale(r, keep), ar.scale(b, take))

    return {"mean": update(mean, mu), "var": update(var, batch_var)}


def batchnorm_backward(ar: Arithmetic, delta: Uncertain, cache: tuple[Any, ...]) -> Triple:
    """(∂L/∂Z, ∂L/∂γ, ∂L/∂β) for either mode."""
    xhat, s, gamma, train = cache
    dbeta = ar.sum(delta, axis=0)
    dgamma = ar.sum(ar.mul(delta, xhat), axis=0)
    factor = ar.mul(gamma, s)
    if not train:
        return ar.mul(delta, _row(factor)), dgamma, dbeta
    N = delta.v.shape[0]
    inner = ar.sub(ar.sub(ar.scale(delta, N), _row(dbeta)), ar.mul(xhat, _row(dgamma)))
    return ar.mul(inner, _row(ar.scale(factor, 1.0 / N))), dgamma, dbeta


def mlp_bn_passes(
    ar: Arithmetic,
    spec: MLPSpec,
    params: Grads,
    X: Uncertain,
    targets: np.ndarray,
    state: dict[str, Uncertain],
    train: bool,
    cotangents: Arrays | None,
    variance: str = "two-pass",
) -> tuple[Uncertain, Uncertain, Grads, dict[str, Uncertain]]:
    """(Y, loss, grads with δˡ as "Zˡ", new state) as Uncertain values; `variance`: the batch
    variance's formula (batch_variance)."""
    new_state: dict[str, Uncertain] = {}

    def forward(l: int, Z: Uncertain) -> tuple[Uncertain, tuple[Any, ...]]:
        normed, cache, stats = batchnorm_forward(
            ar,
            spec,
            Z,
            params[f"gamma{l}"],
            params[f"beta{l}"],
            state[f"running_mean{l}"],
            state[f"running_var{l}"],
            train,
            variance,
        )
        new_state[f"running_mean{l}"], new_state[f"running_var{l}"] = stats["mean"], stats["var"]
        return normed, cache

    def backward(delta: Uncertain, cache: tuple[Any, ...]) -> Triple:
        return batchnorm_backward(ar, delta, cache)

    normalization = Normalization(forward, backward)
    Y, loss, grads = network_passes(ar, spec, params, X, targets, cotangents, normalization)
    return Y, loss, grads, new_state


def step_rounding(
    case: Case, cotangents: Arrays | None, state: dict[str, Uncertain]
) -> tuple[Outcome, dict[str, Uncertain]]:
    """One forward (and backward) from a state that carries its own bounds: the Outcome of
    bounds, and the new state with its bounds (the next step's input in a chain)."""
    spec: MLPSpec = case.spec
    ar = Arithmetic(spec.dtype)
    params = {k: ar.rounded(v) for k, v in case.params.items()}
    Y, loss, grads, new_state = mlp_bn_passes(
        ar, spec, params, ar.rounded(case.inputs["X"]), case.inputs["targets"], state, case.train, cotangents
    )
    bounds = Outcome(
        {"Y": ar.bound(Y), "loss": ar.bound(loss)},
        {k: ar.bound(g) for k, g in grads.items()},
        {k: ar.bound(s) for k, s in new_state.items()},
    )
    return bounds, new_state


def rounded_state(case: Case) -> dict[str, Uncertain]:
    """The case's running statistics, rounded to its dtype."""
    ar = Arithmetic(case.spec.dtype)
    return {k: ar.rounded(v) for k, v in case.state.items()}


def mlp_bn_rounding(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """Error bounds for mlp_bn_reference's outputs, grads (δˡ as "Zˡ" too) and state."""
    return step_rounding(case, cotangents, rounded_state(case))[0]
