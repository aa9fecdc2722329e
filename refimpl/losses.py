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

from refimpl._validate import require_array, require_labels, require_real

Array = NDArray[Any]

LOSSES = ("mse", "cross_entropy")


class MSECache(NamedTuple):
    residual: Array  # Y - T, (N, C)


class CrossEntropyCache(NamedTuple):
    probs: Array  # softmax(Z), (N, C)
    labels: NDArray[np.int64]  # (N,)


def mse_forward(Y: Array, T: Array) -> tuple[float, MSECache]:
    """L = mean((Y - T)²) over every element."""
    require_array("Y", Y, shape=(None, None))
    require_array("targets", T, shape=Y.shape, dtype=Y.dtype.name)
    residual = Y - T  # N, C
    return float(np.mean(residual * residual)), MSECache(residual)


def mse_backward(dloss: float, cache: MSECache) -> Array:
    """∂L/∂Y = dloss · 2 (Y - T) / (N C)."""
    dloss = require_real("dloss", dloss)
    r = cache.residual
    return r * r.dtype.type(2.0 * dloss / r.size)


def log_softmax(Z: Array) -> Array:
    """Z - logsumexp(Z) row-wise, with the row maximum subtracted first."""
    shifted = Z - Z.max(axis=1, keepdims=True)  # N, C; every entry <= 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_forward(Z: Array, labels: Array) -> tuple[float, CrossEntropyCache]:
    """L = mean over rows of -log softmax(Z)[y]."""
    require_array("logits", Z, shape=(None, None))
    N, C = Z.shape
    y = require_labels("labels", labels, rows=N, classes=C)
    logp = log_softmax(Z)  # N, C
    loss = -float(np.mean(logp[np.arange(N), y]))
    return loss, CrossEntropyCache(np.exp(logp), y)


def cross_entropy_backward(dloss: float, cache: CrossEntropyCache) -> Array:
    """∂L/∂Z = dloss · (softmax(Z) - onehot(y)) / N."""
    dloss = require_real("dloss", dloss)
    probs, y = cache
    N = probs.shape[0]
    dZ = probs.copy()
    dZ[np.arange(N), y] -= 1.0
    dZ *= dZ.dtype.type(dloss / N)
    return dZ
