"""Batch normalization over the batch axis of X (N, D): forward next to backward.

Training mode (README, "Batch normalization"), per feature d, statistics of the batch:

    μ  = 1/N Σ_n X_n                      (D,)   two-pass, never E[x²] - E[x]²
    σ² = 1/N Σ_n (X_n - μ)²               (D,)   biased (both frameworks normalize with it)
    s  = 1/√(σ² + ε),  x̂ = (X - μ) s     (N, D)
    Y  = γ ⊙ x̂ + β                        (N, D)

Backward, with δ = ∂L/∂Y (N, D) and δx̂ = δ ⊙ γ:

    ∂L/∂β = Σ_n δ_n
    ∂L/∂γ = Σ_n δ_n ⊙ x̂_n
    ∂L/∂X = s/N (N δx̂ - Σ_n δx̂_n - x̂ ⊙ Σ_n δx̂_n ⊙ x̂_n)
             [1] N δx̂: through x̂ with μ and σ² held fixed
             [2] -Σ_n δx̂_n: through the batch mean μ
             [3] -x̂ Σ_n δx̂_n ⊙ x̂_n: through the batch variance σ²
Hence Σ_n ∂L/∂X_n = 0 and Σ_n ∂L/∂X_n ⊙ x̂_n = ε s³ Σ_n δx̂_n ⊙ x̂_n (0 when ε = 0).

Eval mode normalizes with the running statistics, an affine map of X:
Y = γ ⊙ (X - r_μ) s_r + β with s_r = 1/√(r_σ² + ε); ∂L/∂X = δ ⊙ γ s_r.

Conventions (`BatchNormConvention`; TORCH_CONVENTION is the default):
* momentum_convention "torch": r ← (1 - m) r + m b, m = 0.1; "flax": r ← m r + (1 - m) b, m = 0.99.
* running_var_estimator "unbiased" (torch: b = σ² N/(N - 1)) or "biased" (flax: b = σ²).
* eps = 1e-5 in both.
* single_example, a training batch of one: "raise" (torch's ValueError) or "allow"
  (flax: σ² = 0, Y = β, ∂L/∂X = 0). The unbiased estimator is undefined at N = 1 and raises.
flax's default `use_fast_variance=True` computes E[x²] - E[x]²; this reference does not.

Params {"gamma", "beta"}, state {"running_mean", "running_var"}, all of shape (D,);
gradients {"X", "gamma", "beta"}. Output dtypes equal the input dtype (float32 or float64).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl._range import scaled_moments
from refimpl._validate import (
    FLOAT_DTYPES,
    describe,
    json_fields,
    require_array,
    require_choice,
    require_instance,
    require_int,
    require_real,
    require_same_keys,
)

Array = NDArray[Any]

MOMENTUM_CONVENTIONS = ("torch", "flax")
VAR_ESTIMATORS = ("unbiased", "biased")
SINGLE_EXAMPLE = ("raise", "allow")
DEFAULT_EPS = 1e-5  # torch nn.BatchNorm1d and flax.linen.BatchNorm alike
PARAM_KEYS = ("gamma", "beta")
STATE_KEYS = ("running_mean", "running_var")


def _require_eps(eps: Any) -> float:
    value = require_real("eps", eps)
    if value <= 0.0:
        raise ValueError(f"eps: expected a number > 0, received {value}")
    return value


@dataclass(frozen=True)
class BatchNormConvention:
    """How a framework updates running statistics; serializes to JSON for replay."""

    momentum: float = 0.1  # m, read according to momentum_convention
    momentum_convention: str = "torch"  # "torch": r ← (1-m) r + m b; "flax": r ← m r + (1-m) b
    running_var_estimator: str = "unbiased"  # "unbiased" (σ² N/(N-1), torch) or "biased" (flax)
    eps: float = DEFAULT_EPS  # ε in 1/√(σ² + ε)
    single_example: str = "raise"  # training with N = 1: "raise" (torch) or "allow" (flax)

    def __post_init__(self) -> None:
        require_real("momentum", self.momentum, minimum=0.0, maximum=1.0)
        require_choice("momentum_convention", self.momentum_convention, MOMENTUM_CONVENTIONS)
        require_choice("running_var_estimator", self.running_var_estimator, VAR_ESTIMATORS)
        _require_eps(self.eps)
        require_choice("single_example", self.single_example, SINGLE_EXAMPLE)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BatchNormConvention:
        return cls(**json_fields(cls, text, "convention"))


TORCH_CONVENTION = BatchNormConvention(0.1, "torch", "unbiased", DEFAULT_EPS, "raise")
FLAX_CONVENTION = BatchNormConvention(0.99, "flax", "biased", DEFAULT_EPS, "allow")


class BatchNormCache(NamedTuple):
    """Training mode. x̂ appears in ∂L/∂γ and in term [3] of ∂L/∂X, so it is kept rather
    than X (recomputing it would also need μ); s and γ are (D,) and cost nothing."""

    xhat: Array  # (N, D)
    inv_std: Array  # s = 1/√(σ² + ε) of the batch, (D,)
    gamma: Array  # (D,)


class BatchNormEvalCache(NamedTuple):
    """Eval mode: the same fields, with s_r from the running variance."""

    xhat: Array  # (X - r_μ) s_r, (N, D)
    inv_std: Array  # s_r = 1/√(r_σ² + ε), (D,)
    gamma: Array  # (D,)


class BatchNormGrads(NamedTuple):
    dX: Array  # (N, D)
    dgamma: Array  # (D,)
    dbeta: Array  # (D,)


def _require_nonnegative(field: str, value: Array) -> None:
    if value.size and value.min() < 0:
        raise ValueError(f"{field}: expected values >= 0, received minimum {value.min()}")


def _require_batch(X: Array) -> None:
    require_array("X", X, shape=(None, None))
    if X.shape[0] < 1:
        raise ValueError(f"X: expected at least 1 row, received shape {X.shape}")


def _check_input(X: Array, gamma: Array, beta: Array) -> None:
    _require_batch(X)
    require_array("gamma", gamma, shape=(X.shape[1],), dtype=X.dtype.name)
    require_array("beta", beta, shape=(X.shape[1],), dtype=X.dtype.name)


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, received {describe(dtype)}") from None
    return require_choice("dtype", name, FLOAT_DTYPES)


def init_bn_params(D: int, dtype: Any = "float64") -> dict[str, Array]:
    """{"gamma": 1, "beta": 0}, both (D,), as torch and flax initialize them."""
    D, name = require_int("D", D), _dtype_name(dtype)
    return {"gamma": np.ones(D, dtype=name), "beta": np.zeros(D, dtype=name)}


def init_state(D: int, dtype: Any = "float64") -> dict[str, Array]:
    """{"running_mean": 0, "running_var": 1}, both (D,), as torch and flax initialize them."""
    D, name = require_int("D", D), _dtype_name(dtype)
    return {"running_mean": np.zeros(D, dtype=name), "running_var": np.ones(D, dtype=name)}


def batch_statistics(X: Array) -> tuple[Array, Array]:
    """(μ, σ²) per feature, σ² biased and two-pass: mean of (X - μ)², no cancellation, no
    overflow or underflow (σ² is inf only where it exceeds the dtype's range)."""
    _require_batch(X)
    mu, var, _, _ = _statistics(X, DEFAULT_EPS)
    return mu, var


def _statistics(X: Array, eps: float) -> tuple[Array, Array, Array, Array]:
    """μ, σ², x̂ = (X - μ) s and s = 1/√(σ² + ε) of a validated batch.

    Computed plainly (two passes); a feature whose σ² + ε came out non-finite (a square or
    the sum overflowed, or ε exceeds the dtype) or below the dtype's tiny (squares may have
    underflowed: refimpl._range) is computed again scaled (`_rescale`), so x̂ and s are right wherever
    they are representable: inputs scaled by 1e30 in float32 (1e200 in float64) still give
    x̂ ≈ ±1, where the plain formula gives 1/σ = 0 and x̂ = 0.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mu = X.mean(axis=0)  # D
        xhat = X - mu  # N, D: centered now, normalized in place below
        var = (xhat * xhat).mean(axis=0)  # D, two-pass
        inv_std = 1.0 / np.sqrt(var + eps)  # D
        xhat *= inv_std  # x̂ = (X - μ) s, N, D
    plain = (inv_std > 0) & (inv_std <= np.finfo(X.dtype).tiny ** -0.5)  # σ² + ε in [tiny, max]
    if not plain.all():
        _rescale(X, eps, ~plain, mu, var, xhat, inv_std)
    return mu, var, xhat, inv_std


def _rescale(X: Array, eps: float, cols: Array, mu: Array, var: Array, xhat: Array, inv_std: Array) -> None:
    """μ, σ², x̂, s of the features `cols`, written in place, from scaled moments in float64
    (refimpl._range): X - μ = Cs 2^K, σ² = vs 2^{2K}, so with t = 2^K s,

        t = 1/√(vs + ε 2^{-2K}) = 1/hypot(√vs, √ε 2^{-K}),   x̂ = Cs t,   s = t 2^{-K}

    and nothing overflows; a constant feature (vs = 0) has x̂ = 0 and s = 1/√ε."""
    mu_c, Cs, vs, K = scaled_moments(X[:, cols].astype(np.float64))  # float32: float64 holds more
    constant = vs == 0.0
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        t = np.where(constant, 0.0, 1.0 / np.hypot(np.sqrt(vs), np.ldexp(np.sqrt(eps), -K)))  # D_c
        mu[cols] = mu_c
        var[cols] = np.ldexp(vs, 2 * K)  # inf only where σ² itself exceeds the dtype
        xhat[:, cols] = Cs * t  # N, D_c
        inv_std[cols] = np.where(constant, 1.0 / np.sqrt(eps), np.ldexp(t, -K))


def _normalize(X: Array, gamma: Array, beta: Array, eps: float) -> tuple[Array, BatchNormCache, Array, Array]:
    """The training forward, also returning μ and σ² for the running statistics."""
    mu, var, xhat, inv_std = _statistics(X, eps)  # D, D, (N, D), D
    Y = xhat * gamma  # N, D
    Y += beta
    return Y, BatchNormCache(xhat, inv_std, gamma), mu, var


def batchnorm_train_forward(
    X: Array,
    gamma: Array,
    beta: Array,
    *,
    eps: float = DEFAULT_EPS,
    single_example: str = "raise",
) -> tuple[Array, BatchNormCache]:
    """Y = γ ⊙ (X - μ)/√(σ² + ε) + β with the batch's μ and biased σ²; X (N, D) → Y (N, D)."""
    eps = _check_train_input(X, gamma, beta, eps, single_example)
    Y, cache, _, _ = _normalize(X, gamma, beta, eps)
    return Y, cache


def _check_train_input(X: Array, gamma: Array, beta: Array, eps: Any, single_example: Any) -> float:
    _check_input(X, gamma, beta)
    eps = _require_eps(eps)
    require_choice("single_example", single_example, SINGLE_EXAMPLE)
    if X.shape[0] == 1 and single_example == "raise":
        raise ValueError(
            "X: expected more than 1 value per channel when training"
            f" (single_example='raise'), received shape {X.shape}"
        )
    return eps


def batchnorm_train_backward(dY: Array, cache: BatchNormCache) -> BatchNormGrads:
    """∂L/∂X, ∂L/∂γ, ∂L/∂β through x̂, μ and σ² (module docstring, terms [1] [2] [3]).

    The two batch sums of the terms are the parameter gradients again, times γ:
    Σ_n δx̂_n = γ ⊙ ∂L/∂β and Σ_n δx̂_n ⊙ x̂_n = γ ⊙ ∂L/∂γ, so γ s/N factors out.
    """
    xhat, inv_std, gamma = require_instance("cache", cache, BatchNormCache)  # not the eval cache
    require_array("dY", dY, shape=xhat.shape, dtype=xhat.dtype.name)
    N = xhat.shape[0]
    dbeta = dY.sum(axis=0)  # Σ_n δ_n, D
    dgamma = (dY * xhat).sum(axis=0)  # Σ_n δ_n ⊙ x̂_n, D
    dX = N * dY  # [1] through x̂: N δx̂ / γ, N, D
    dX -= dbeta  # [2] through μ: Σ_n δx̂_n / γ = ∂L/∂β, D
    dX -= xhat * dgamma  # [3] through σ²: x̂ ⊙ Σ_n δx̂_n ⊙ x̂_n / γ = x̂ ⊙ ∂L/∂γ, N, D
    dX *= gamma * inv_std / N  # γ s / N, D
    return BatchNormGrads(dX, dgamma, dbeta)


def batchnorm_eval_forward(
    X: Array,
    gamma: Array,
    beta: Array,
    running_mean: Array,
    running_var: Array,
    *,
    eps: float = DEFAULT_EPS,
) -> tuple[Array, BatchNormEvalCache]:
    """Y = γ ⊙ (X - r_μ)/√(r_σ² + ε) + β, row by row; X (N, D) → Y (N, D)."""
    _check_input(X, gamma, beta)
    D, dtype = X.shape[1], X.dtype.name
    require_array("running_mean", running_mean, shape=(D,), dtype=dtype)
    require_array("running_var", running_var, shape=(D,), dtype=dtype)
    _require_nonnegative("running_var", running_var)
    eps = _require_eps(eps)
    inv_std = 1.0 / np.sqrt(running_var + eps)  # s_r, D
    xhat = (X - running_mean) * inv_std  # N, D
    return gamma * xhat + beta, BatchNormEvalCache(xhat, inv_std, gamma)


def batchnorm_eval_backward(dY: Array, cache: BatchNormEvalCache) -> BatchNormGrads:
    """∂L/∂X = δ ⊙ γ s_r, ∂L/∂γ = Σ_n δ_n ⊙ x̂_n, ∂L/∂β = Σ_n δ_n (the statistics are constants)."""
    xhat, inv_std, gamma = require_instance("cache", cache, BatchNormEvalCache)
    require_array("dY", dY, shape=xhat.shape, dtype=xhat.dtype.name)
    return BatchNormGrads(dY * (gamma * inv_std), (dY * xhat).sum(axis=0), dY.sum(axis=0))


def update_running_stats(
    state: dict[str, Array],
    batch_mean: Array,
    batch_var_biased: Array,
    n: int,
    *,
    momentum: float = TORCH_CONVENTION.momentum,
    momentum_convention: str = TORCH_CONVENTION.momentum_convention,
    running_var_estimator: str = TORCH_CONVENTION.running_var_estimator,
) -> dict[str, Array]:
    """New {"running_mean", "running_var"} after a batch of n rows; `state` is not modified.

    r ← (1 - m) r + m b ("torch") or r ← m r + (1 - m) b ("flax"), with b = μ for the
    mean and b = σ² N/(N - 1) ("unbiased") or σ² ("biased") for the variance.
    """
    require_same_keys("state", state, STATE_KEYS)
    running_mean, running_var = state["running_mean"], state["running_var"]
    require_array("state['running_mean']", running_mean, shape=(None,))
    D, dtype = running_mean.shape[0], running_mean.dtype.name
    _check_state(state, D, dtype)
    require_array("batch_mean", batch_mean, shape=(D,), dtype=dtype)
    require_array("batch_var_biased", batch_var_biased, shape=(D,), dtype=dtype)
    _require_nonnegative("batch_var_biased", batch_var_biased)
    n = require_int("n", n)
    m = require_real("momentum", momentum, minimum=0.0, maximum=1.0)
    require_choice("momentum_convention", momentum_convention, MOMENTUM_CONVENTIONS)
    require_choice("running_var_estimator", running_var_estimator, VAR_ESTIMATORS)
    if running_var_estimator == "unbiased" and n < 2:
        raise ValueError(
            f"n: the unbiased running-variance estimator divides by n - 1 and needs n >= 2, received n = {n}"
        )
    unbiased = running_var_estimator == "unbiased"
    var = batch_var_biased * (n / (n - 1)) if unbiased else batch_var_biased  # b for r_σ², D
    keep, take = (1.0 - m, m) if momentum_convention == "torch" else (m, 1.0 - m)
    return {
        "running_mean": keep * running_mean + take * batch_mean,  # D
        "running_var": keep * running_var + take * var,
    }  # D


def _check_state(state: dict[str, Array], D: int, dtype: str) -> None:
    require_same_keys("state", state, STATE_KEYS)
    for key in STATE_KEYS:
        require_array(f"state[{key!r}]", state[key], shape=(D,), dtype=dtype)
    _require_nonnegative("state['running_var']", state["running_var"])


def batchnorm_forward(
    X: Array,
    params: dict[str, Array],
    state: dict[str, Array],
    *,
    train: bool,
    convention: BatchNormConvention = TORCH_CONVENTION,
) -> tuple[Array, dict[str, Array], BatchNormCache | BatchNormEvalCache]:
    """(Y, new state, cache): training mode normalizes with the batch and returns the
    running statistics updated under `convention`; eval mode uses them, state unchanged."""
    if not isinstance(train, bool):
        raise TypeError(f"train: expected a bool, received {describe(train)}")
    if not isinstance(convention, BatchNormConvention):
        raise TypeError(f"convention: expected a BatchNormConvention, received {describe(convention)}")
    require_same_keys("params", params, PARAM_KEYS)
    require_array("X", X, shape=(None, None))
    _check_state(state, X.shape[1], X.dtype.name)
    gamma, beta, c = params["gamma"], params["beta"], convention
    if not train:
        Y, eval_cache = batchnorm_eval_forward(
            X, gamma, beta, state["running_mean"], state["running_var"], eps=c.eps
        )
        return Y, {key: state[key] for key in STATE_KEYS}, eval_cache
    eps = _check_train_input(X, gamma, beta, c.eps, c.single_example)
    Y, cache, mu, var = _normalize(X, gamma, beta, eps)  # μ, σ² also feed the running statistics
    new_state = update_running_stats(
        state,
        mu,
        var,
        X.shape[0],
        momentum=c.momentum,
        momentum_convention=c.momentum_convention,
        running_var_estimator=c.running_var_estimator,
    )
    return Y, new_state, cache


def batchnorm_backward(dY: Array, cache: BatchNormCache | BatchNormEvalCache) -> dict[str, Array]:
    """{"X", "gamma", "beta"} gradients for either mode's cache."""
    if isinstance(cache, BatchNormEvalCache):
        dX, dgamma, dbeta = batchnorm_eval_backward(dY, cache)
    elif isinstance(cache, BatchNormCache):
        dX, dgamma, dbeta = batchnorm_train_backward(dY, cache)
    else:
        raise TypeError(f"cache: expected a BatchNormCache or BatchNormEvalCache, received {describe(cache)}")
    return {"X": dX, "gamma": dgamma, "beta": dbeta}
