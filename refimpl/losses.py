"""Losses with the frameworks' reductions, forward next to backward.

* mean squared error, the mean over all N·C elements (torch `F.mse_loss`,
  `optax.squared_error(...).mean()`):
      L = 1/(N C) Σ (Y - T)²            ∂L/∂Y = 2 (Y - T) / (N C)
* softmax cross-entropy with integer labels, the mean over the N rows
  (torch `F.cross_entropy`, `optax.softmax_cross_entropy_with_integer_labels(...).mean()`):
      L = 1/N Σ_n (logsumexp(Z_n) - Z_{n, y_n})
      ∂L/∂Z = (softmax(Z) - onehot(y)) / N
  computed with the row maximum subtracted, so logits of magnitude 1e4 neither
  overflow nor lose the answer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl._range import plain_sum_is_accurate, scaled_l2, tiny_times_size
from refimpl._validate import require_array, require_instance, require_labels, require_real

Array = NDArray[Any]

LOSSES = ("mse", "cross_entropy")


class MSECache(NamedTuple):
    residual: Array  # Y - T, (N, C)


class CrossEntropyCache(NamedTuple):
    probs: Array  # softmax(Z), (N, C)
    labels: NDArray[np.int64]  # (N,)


def _require_outputs(field: str, Z: Array) -> None:
    """A finite (N, C) float array with N >= 1 rows and C >= 1 columns: a mean over no rows
    is 0/0, and a softmax over no classes has no labels to pick."""
    require_array(field, Z, shape=(None, None))
    if Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{field}: expected at least one row and one column, received shape {Z.shape}")


def mse_forward(Y: Array, T: Array) -> tuple[float, MSECache]:
    """L = mean((Y - T)²) over every element, scaled where the squares or their sum
    overflow (refimpl._range): inf only where L itself exceeds float64's range."""
    _require_outputs("Y", Y)
    require_array("targets", T, shape=Y.shape, dtype=Y.dtype.name)
    with np.errstate(over="ignore", under="ignore"):
        residual = Y - T  # N, C
        if not np.isfinite(residual).all():
            raise ValueError(
                f"Y: expected Y - targets within {Y.dtype}'s range, received"
                f" {int(np.count_nonzero(~np.isfinite(residual)))} differences that overflow"
            )
        loss = float(np.mean(residual * residual))
        if not plain_sum_is_accurate(loss * residual.size, tiny_times_size([residual])) and residual.any():
            r, e = scaled_l2([residual])  # Σ (Y - T)² = r² 2^{2e}
            loss = float(np.ldexp(r * r / residual.size, 2 * e))
    return loss, MSECache(residual)


def mse_backward(dloss: float, cache: MSECache) -> Array:
    """∂L/∂Y = dloss · 2 (Y - T) / (N C)."""
    dloss = require_real("dloss", dloss)
    r = require_instance("cache", cache, MSECache).residual
    return r * r.dtype.type(2.0 * dloss / r.size)


def log_softmax(Z: Array) -> Array:
    """Z - logsumexp(Z) row-wise, with the row maximum subtracted first; Z (N, C), C >= 1."""
    _require_outputs("logits", Z)
    return _log_softmax(Z)


def _log_softmax(Z: Array) -> Array:
    shifted = Z - Z.max(axis=1, keepdims=True)  # N, C; every entry <= 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_forward(Z: Array, labels: Array) -> tuple[float, CrossEntropyCache]:
    """L = mean over rows of -log softmax(Z)[y]."""
    _require_outputs("logits", Z)
    N, C = Z.shape
    y = require_labels("labels", labels, rows=N, classes=C)
    logp = _log_softmax(Z)  # N, C
    loss = -float(np.mean(logp[np.arange(N), y]))
    return loss, CrossEntropyCache(np.exp(logp), y)


def cross_entropy_backward(dloss: float, cache: CrossEntropyCache) -> Array:
    """∂L/∂Z = dloss · (softmax(Z) - onehot(y)) / N."""
    dloss = require_real("dloss", dloss)
    probs, y = require_instance("cache", cache, CrossEntropyCache)
    N = probs.shape[0]
    dZ = probs.copy()
    dZ[np.arange(N), y] -= 1.0
    dZ *= dZ.dtype.type(dloss / N)
    return dZ
