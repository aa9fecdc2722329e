"""Parameter initialization as a named convention: torch's defaults ("torch") or flax's ("flax").

Each parameter's initial distribution is an `Init`, a kind and a scale. fan-in is the
number of inputs of the unit a weight feeds (D_{l-1} for Wˡ of shape (D_l, D_{l-1})):

    tensor                    "torch" (the default)                "flax"
    dense Wˡ (D_l, D_{l-1})   U(-a, a), a = 1/√D_{l-1}             lecun_normal: N(0, s²) cut at ±2s,
                              (nn.Linear: kaiming_uniform_, √5)    s = 1/(√D_{l-1} · TRUNCATED_STD)
    dense bˡ (D_l,)           U(-a, a), a = 1/√D_{l-1}             0
    batch norm γˡ, βˡ         1, 0 (nn.BatchNorm1d)                1, 0 (BatchNorm scale, bias)
    RNN W_ih (H, D)           U(-a, a), a = 1/√H: nn.RNN draws     lecun_normal, fan-in D
    RNN W_hh (H, H)           every tensor with the hidden size    orthogonal (Haar), gain 1
    RNN b_ih, b_hh (H,)       U(-a, a), a = 1/√H                   0 (SimpleCell's one bias b_ih + b_hh)
    readout W_out (C, H)      U(-a, a), a = 1/√H (nn.Linear(H, C)) lecun_normal, fan-in H
    readout b_out (C,)        U(-a, a), a = 1/√H                   0

lecun_normal's s makes the variance after truncation 1/fan-in: TRUNCATED_STD is the
standard deviation of N(0, 1) cut at ±2. Draws come in the order of the tensors; a
constant takes none, so the "torch" draws of a batch-norm MLP are those of the same MLP's
weights without the hidden biases.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from refimpl._validate import FLOAT_DTYPES, describe, require_choice, require_int

Array = NDArray[Any]

SCHEMES = ("torch", "flax")
KINDS = ("uniform", "truncated_normal", "orthogonal", "constant")
TRUNCATION = 2.0  # lecun_normal cuts N(0, s²) at ±2s
# Var of N(0, 1) cut at ±c: 1 - 2c φ(c) / (2Φ(c) - 1), φ(c) = e^(-c²/2)/√(2π), 2Φ(c) - 1 = erf(c/√2)
TRUNCATED_STD = math.sqrt(
    1.0
    - 2.0
    * TRUNCATION
    * math.exp(-(TRUNCATION**2) / 2)
    / math.sqrt(2.0 * math.pi)
    / math.erf(TRUNCATION / math.sqrt(2.0))
)


class Init(NamedTuple):
    """One tensor's initial distribution."""

    kind: str  # one of KINDS
    scale: float  # uniform: a in U(-a, a); truncated_normal: s; orthogonal: the gain; constant: the value

    def bound(self) -> float:
        """The largest |w| the distribution can give (an orthogonal matrix's entries: the gain)."""
        return TRUNCATION * self.scale if self.kind == "truncated_normal" else abs(self.scale)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> Array:
        """float64 draws of `shape`; orthogonal: the last two axes are a matrix (leading ones stack)."""
        if self.kind == "uniform":
            return rng.uniform(-self.scale, self.scale, size=shape)
        if self.kind == "truncated_normal":
            z = rng.standard_normal(shape)
            while (outside := np.abs(z) > TRUNCATION).any():  # rounds of redraws, ~4.6% each
                z[outside] = rng.standard_normal(int(outside.sum()))
            return self.scale * z
        if self.kind == "orthogonal":
            *lead, rows, cols = shape
            A = rng.standard_normal((*lead, max(rows, cols), min(rows, cols)))
            Q, R = np.linalg.qr(A)  # Q (.., max, min) with orthonormal columns
            Q = Q * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[..., None, :]  # Haar: R's diagonal > 0
            return self.scale * (Q if rows >= cols else np.swapaxes(Q, -1, -2))
        return np.full(shape, self.scale)


def _fan_in(scheme: str, fan_in: int) -> Init:
    if scheme == "torch":
        return Init("uniform", 1.0 / math.sqrt(fan_in))
    return Init("truncated_normal", 1.0 / (math.sqrt(fan_in) * TRUNCATED_STD))


def dense(scheme: str, fan_in: int) -> tuple[Init, Init]:
    """(weight, bias) of a dense layer with `fan_in` inputs."""
    require_choice("scheme", scheme, SCHEMES)
    weight = _fan_in(scheme, require_int("fan_in", fan_in))
    return weight, (Init("uniform", weight.scale) if scheme == "torch" else Init("constant", 0.0))


def mlp_inits(sizes: tuple[int, ...], batchnorm: bool, scheme: str) -> dict[str, Init]:
    """refimpl.mlp's (refimpl.mlp_bn's with batchnorm) parameters, in layer order."""
    if not isinstance(sizes, tuple | list):
        raise TypeError(f"sizes: expected a tuple of integers, received {describe(sizes)}")
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least 2 entries (input, output), received {sizes}")
    for i, n in enumerate(sizes):
        require_int(f"sizes[{i}]", n)
    if not isinstance(batchnorm, bool):
        raise TypeError(f"batchnorm: expected a bool, received {describe(batchnorm)}")
    inits: dict[str, Init] = {}
    depth = len(sizes) - 1
    for l in range(1, depth + 1):
        inits[f"W{l}"], bias = dense(scheme, sizes[l - 1])
        if batchnorm and l < depth:
            inits[f"gamma{l}"], inits[f"beta{l}"] = Init("constant", 1.0), Init("constant", 0.0)
        else:
            inits[f"b{l}"] = bias
    return inits


def rnn_inits(input_size: int, hidden_size: int, output_size: int, scheme: str) -> dict[str, Init]:
    """refimpl.rnn's parameters, in its order: W_ih, W_hh, b_ih, b_hh, W_out, b_out."""
    sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size}
    for field, size in sizes.items():
        require_int(field, size)
    require_choice("scheme", scheme, SCHEMES)
    if scheme == "torch":
        every = Init("uniform", 1.0 / math.sqrt(hidden_size))
        return dict.fromkeys(("W_ih", "W_hh", "b_ih", "b_hh", "W_out", "b_out"), every)
    zero = Init("constant", 0.0)
    W_out, b_out = dense(scheme, hidden_size)
    return {
        "W_ih": _fan_in(scheme, input_size),
        "W_hh": Init("orthogonal", 1.0),
        "b_ih": zero,
        "b_hh": zero,
        "W_out": W_out,
        "b_out": b_out,
    }


def draw(
    inits: dict[str, Init], shapes: dict[str, tuple[int, ...]], rng: np.random.Generator, dtype: str
) -> dict[str, Array]:
    """Every tensor of `inits`, in its order, of shapes[name], drawn from rng and cast to dtype."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, received {describe(rng)}")
    if not isinstance(inits, dict) or not all(isinstance(i, Init) for i in inits.values()):
        raise TypeError(f"inits: expected a dict of refimpl.init.Init, received {describe(inits)}")
    if not isinstance(shapes, dict):
        raise TypeError(f"shapes: expected a dict of shapes, received {describe(shapes)}")
    if set(inits) - set(shapes):
        raise ValueError(f"shapes: expected a shape for each of {sorted(inits)}, received {sorted(shapes)}")
    require_choice("dtype", dtype, FLOAT_DTYPES)
    return {name: init.sample(shapes[name], rng).astype(dtype) for name, init in inits.items()}
