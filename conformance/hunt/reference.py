"""The reference over a whole population at once: one block-diagonal network per block of members.

refimpl's layers take one network and a batch of rows. P networks of one architecture
are one network P times as wide whose weight matrices are block-diagonal: member p's
Wˡ sits in block (p, p), its biases, γ, β and running statistics in segment p, its
batch in columns p·D .. (p+1)·D of every row. Every product then adds member p's own
terms and exact zeros, every element-wise step and every batch-norm statistic is per
column, so the wide network computes each member's forward and backward exactly as
refimpl computes that member alone, in one call of the same code; member p's gradients
are the diagonal blocks of the wide ones (the off-diagonal blocks, gradients of weights
fixed at zero, are dropped). Only the loss mixes columns (a softmax across members), so
it runs per member on its block of the output, through refimpl.losses.

The price is the wide products: a block of B members of width D costs B² D² per product
where B separate networks cost B D², so members go in blocks of at most `WIDE // D`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from conformance.case import Arrays
from conformance.hunt.populations import Population
from refimpl import bptt, mlp, mlp_bn, rnn

WIDE = 256  # the widest block-diagonal layer: B·D at most this (B >= 1)
Results = dict[str, Arrays]  # group ("forward", "gradient", "loss-gradient", "state") -> {name: (P, ...)}


def block_diagonal(W: np.ndarray) -> np.ndarray:
    """(B, m, n) -> (B m, B n) with W[p] in block (p, p)."""
    B, m, n = W.shape
    out = np.zeros((B, m, B, n), W.dtype)
    idx = np.arange(B)
    out[idx, :, idx, :] = W
    return out.reshape(B * m, B * n)


def diagonal_blocks(W: np.ndarray, B: int) -> np.ndarray:
    """(B m, B n) -> (B, m, n), the blocks (p, p)."""
    m, n = W.shape[0] // B, W.shape[1] // B
    idx = np.arange(B)
    return W.reshape(B, m, B, n)[idx, :, idx, :]


def widen(arrays: Arrays, matrices: set[str]) -> Arrays:
    """Stacked parameters or state (B, ...) as the wide network's: matrices block-diagonal,
    vectors concatenated."""
    return {k: block_diagonal(v) if k in matrices else v.reshape(-1) for k, v in arrays.items()}


def narrow(arrays: Arrays, B: int, matrices: set[str]) -> Arrays:
    return {k: diagonal_blocks(v, B) if k in matrices else v.reshape(B, -1) for k, v in arrays.items()}


def columns(a: np.ndarray) -> np.ndarray:
    """(B, ..., N, D) -> (..., N, B D): member p's features in columns p D .. (p + 1) D."""
    moved = np.moveaxis(a, 0, -2)
    return moved.reshape(*moved.shape[:-2], -1)


def members(a: np.ndarray, B: int) -> np.ndarray:
    """(..., N, B D) -> (B, ..., N, D), the inverse of columns."""
    split = a.reshape(*a.shape[:-1], B, -1)
    return np.moveaxis(split, -2, 0)


def _cast(arrays: Arrays, dtype: str) -> Arrays:
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in arrays.items()}


def _merge(parts: list[Results]) -> Results:
    return {g: {k: np.concatenate([p[g][k] for p in parts]) for k in parts[0][g]} for g in parts[0]}


class Block:
    """Members i .. i + B of a population, stacked and cast to the dtype."""

    def __init__(self, population: Population, start: int, stop: int, dtype: str) -> None:
        self.size, self.train = stop - start, population.bucket.train
        self.groups = {
            g: {k: v[start:stop] for k, v in _cast(population.stacked(g), dtype).items()}
            for g in ("params", "inputs", "state")
        }


def run_population(population: Population, spec: Any, dtype: str) -> Results:
    """Every group of every member in `dtype`, under `spec` (the population's spec with a
    framework's conventions), in blocks of at most WIDE // width members."""
    B = max(1, WIDE // population.bucket.width())
    P = len(population)
    runner = _mlp_block if hasattr(spec, "sizes") else _rnn_block
    spec = replace(spec, dtype=dtype)
    return _merge([runner(Block(population, i, min(i + B, P), dtype), spec) for i in range(0, P, B)])


def _losses(loss_of: Any, Y: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per member: the loss and ∂L/∂Y (the loss mixes columns, so it runs on each block)."""
    pairs = [loss_of(Y[p], targets[p]) for p in range(Y.shape[0])]
    return np.array([float(l) for l, _ in pairs]), np.stack([g for _, g in pairs])


def _mlp_block(block: Block, spec: Any) -> Results:
    B = block.size
    member_spec = spec
    spec = replace(spec, sizes=tuple(B * s for s in spec.sizes))
    weights = {k for k in block.groups["params"] if k.startswith("W")}
    params = widen(block.groups["params"], weights)
    inputs = block.groups["inputs"]
    X = columns(inputs["X"])
    cache: mlp.MLPCache | mlp_bn.BNMLPCache
    if spec.batchnorm:
        state = widen(block.groups["state"], set())
        Y, new_state, cache = mlp_bn.mlp_bn_forward(spec, params, X, state, train=block.train)
    else:
        (Y, cache), new_state = mlp.mlp_forward(spec, params, X), {}

    def backward(dY: np.ndarray) -> Arrays:
        if isinstance(cache, mlp_bn.BNMLPCache):
            return mlp_bn.mlp_bn_backward_deltas(spec, dY, cache)[0]
        return mlp.mlp_backward_deltas(spec, dY, cache)[0]

    def loss_of(Yp: np.ndarray, Tp: np.ndarray) -> tuple[float, np.ndarray]:
        value, lcache = mlp.loss_forward(member_spec, Yp, Tp)
        return value, mlp.loss_backward(member_spec, lcache)

    Ym = members(Y, B)
    loss, dloss = _losses(loss_of, Ym, inputs["targets"])

    def grads(dY: np.ndarray) -> Arrays:
        g = backward(columns(dY))
        out = narrow({k: v for k, v in g.items() if k in params}, B, weights)
        out["X"] = members(g["X"], B)
        return out

    results = {
        "forward": {"Y": Ym, "loss": loss},
        "gradient": grads(inputs["dY"]),
        "loss-gradient": grads(dloss),
    }
    if new_state:
        results["state"] = narrow(new_state, B, set())
    return _float64(results)


def _rnn_block(block: Block, spec: Any) -> Results:
    B = block.size
    member_spec = spec
    spec = replace(
        spec,
        input_size=B * spec.input_size,
        hidden_size=B * spec.hidden_size,
        output_size=B * spec.output_size,
    )
    weights = {"W_ih", "W_hh", "W_out"}
    params = widen(block.groups["params"], weights)
    inputs = block.groups["inputs"]
    X, h0 = columns(inputs["X"]), columns(inputs["h0"])
    Y = rnn.rnn_forward(spec, params, X, h0)[0]
    Ym = members(Y, B)
    loss, dloss = _losses(lambda Yp, Tp: rnn.readout_loss(member_spec, Yp, Tp), Ym, inputs["targets"])

    def grads(dY: np.ndarray) -> Arrays:
        g = bptt.vjp(spec, params, X, h0, columns(dY))
        out = narrow({k: v for k, v in g.items() if k in params}, B, weights)
        out["X"], out["h0"] = members(g["X"], B), members(g["h0"], B)
        return out

    return _float64(
        {"forward": {"Y": Ym, "loss": loss}, "gradient": grads(inputs["dY"]), "loss-gradient": grads(dloss)}
    )


def _float64(results: Results) -> Results:
    return {g: {k: np.asarray(v, np.float64) for k, v in arrays.items()} for g, arrays in results.items()}
