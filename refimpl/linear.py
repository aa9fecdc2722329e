"""Dense (fully connected) layer: forward next to backward.

Math (README, "MLP"): one example is a column, z = W x + b with W of shape
(out, in). A batch is a matrix of rows, so the same map reads

    Z = X @ W.T + b                      X: (N, D_in), W: (D_out, D_in), Z: (N, D_out)

and, with δ = ∂L/∂Z the upstream gradient,

    ∂L/∂W = δᵀ X       (D_out, D_in)
    ∂L/∂b = Σ_n δ_n    (D_out,)
    ∂L/∂X = δ W        (N, D_in)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from numpy.typing import NDArray

from refimpl._validate import require_array, require_instance

Array = NDArray[Any]


class LinearCache(NamedTuple):
    """What the backward pass needs: the input and the weight."""

    X: Array  # (N, D_in)
    W: Array  # (D_out, D_in)


class LinearGrads(NamedTuple):
    dX: Array  # (N, D_in)
    dW: Array  # (D_out, D_in)
    db: Array  # (D_out,)


def linear_forward(X: Array, W: Array, b: Array) -> tuple[Array, LinearCache]:
    """Z = X Wᵀ + b, returned with the cache for `linear_backward`."""
    require_array("W", W, shape=(None, None))
    d_out, d_in = W.shape
    require_array("X", X, shape=(None, d_in), dtype=W.dtype.name)
    require_array("b", b, shape=(d_out,), dtype=W.dtype.name)
    Z = X @ W.T  # N, D_out; W.T is a view, the BLAS reads it transposed without a copy
    Z += b  # in place: Z is this function's own array, so no second (N, D_out) temporary
    return Z, LinearCache(X, W)


def linear_backward(delta: Array, cache: LinearCache) -> LinearGrads:
    """Gradients of L with respect to X, W and b, given δ = ∂L/∂Z of shape (N, D_out)."""
    X, W = require_instance("cache", cache, LinearCache)
    require_array("delta", delta, shape=(X.shape[0], W.shape[0]), dtype=W.dtype.name)
    dW = delta.T @ X  # D_out, D_in
    db = delta.sum(axis=0)  # D_out
    dX = delta @ W  # N, D_in
    return LinearGrads(dX, dW, db)
