"""Smaller and simpler versions of a case, for minimization (`conformance.hunt.minimize`).

Shapes shrink by slicing the case's own arrays, so whatever made the case special (exact
zeros at a kink, an ill-conditioned first layer, a batch of one) stays in the rows and
units that remain: fewer rows, fewer steps, fewer units in a layer (the layer's rows and
the next layer's columns), fewer layers (a hidden layer whose input is at most as wide as
it is removed, the next layer keeping the columns that met its units). Values simplify
by rounding every floating array at once: to ±1, to halves, eighths, hundredths.
Code paths simplify too: an activation becomes the identity, cross-entropy becomes the mean
squared error (against the one-hot targets), an RNN's readout of every step the readout of
the last, so a finding names the fewest framework functions it needs (and one bug met on
many paths is one finding). Each generator yields candidates, the boldest first; the
minimizer keeps the first that still fails the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from conformance.case import Arrays, Case

MLP_INPUTS = {"X", "targets", "dY", "dY2"}
RNN_INPUTS = {"X", "h0", "targets", "dY", "dY2"}
SIMPLER = (
    ("±1", np.sign),
    ("halves", lambda a: np.round(a * 2) / 2),
    ("eighths", lambda a: np.round(a * 8) / 8),
    ("hundredths", lambda a: np.round(a, 2)),
)


def smaller(n: int, least: int = 1) -> list[int]:
    """Sizes to try below n, boldest first: least, n // 2, n - 1."""
    return sorted({m for m in (least, n // 2, n - 1) if least <= m < n})


def simpler_values(case: Case) -> Iterator[tuple[str, Case]]:
    """The case with every floating array rounded, from ±1 to hundredths. Batch norm's cases keep
    their values: rounded rows can be equal, and a feature of zero variance leaves gradients that
    are zero by structure (shrink.in_bn_domain)."""
    if getattr(case.spec, "batchnorm", False):
        return

    def rounded(arrays: Arrays, f: object) -> Arrays:
        return {k: (f(v) if v.dtype.kind == "f" else v) for k, v in arrays.items()}  # type: ignore[operator]

    for name, f in SIMPLER:
        candidate = replace(
            case,
            params=rounded(case.params, f),
            inputs=rounded(case.inputs, f),
            state={
                k: np.abs(v) if k.startswith("running_var") else v for k, v in rounded(case.state, f).items()
            },
        )
        if any(not np.array_equal(a, b) for a, b in zip(_arrays(candidate), _arrays(case), strict=True)):
            yield name, candidate


def _arrays(case: Case) -> list[np.ndarray]:
    return [*case.params.values(), *case.inputs.values(), *case.state.values()]


# ---------------------------------------------------------------- the MLP, with and without batch norm


def _layers(case: Case) -> list[Arrays]:
    """Per layer l = 1..L: its W, b or (gamma, beta), and running statistics, without the index."""
    layers: list[Arrays] = [{} for _ in range(case.spec.depth)]
    for k, v in [*case.params.items(), *case.state.items()]:
        stem = k.rstrip("0123456789")
        layers[int(k[len(stem) :]) - 1][stem] = v
    return layers


def _mlp(case: Case, layers: list[Arrays], sizes: list[int], rows: int) -> Case:
    params: Arrays = {}
    state: Arrays = {}
    for l, layer in enumerate(layers, start=1):
        for k, v in layer.items():
            (state if k.startswith("running") else params)[f"{k}{l}"] = v
    C, inputs = sizes[-1], {}
    for k, v in case.inputs.items():
        v = v[:rows]
        if k == "X":
            v = v[:, : sizes[0]]
        elif v.ndim == 2:  # targets (mse), dY, dY2
            v = v[:, :C]
        elif k == "targets":  # integer labels: kept inside the fewer classes
            v = v % C
        inputs[k] = v
    return replace(
        case, spec=replace(case.spec, sizes=tuple(sizes)), params=params, inputs=inputs, state=state
    )


def _narrow(layers: list[Arrays], l: int, width: int) -> None:
    """Keep the first `width` units of layer l (1-based): its rows, and layer l + 1's columns."""
    layers[l - 1] = {k: v[:width] for k, v in layers[l - 1].items()}
    if l < len(layers):
        layers[l]["W"] = layers[l]["W"][:, :width]


def _mse(case: Case, inputs: Arrays, C: int) -> Arrays:
    """Cross-entropy's integer labels as the one-hot targets of the mean squared error."""
    if case.spec.loss != "cross_entropy":
        return inputs
    return {**inputs, "targets": np.eye(C)[inputs["targets"]]}


def simpler_paths(case: Case) -> Iterator[Case]:
    """The case with one categorical field simpler: identity activations, mse, readout "last"."""
    spec = case.spec
    for name in ("hidden_activation", "output_activation"):
        if getattr(spec, name, "identity") != "identity":
            yield replace(case, spec=replace(spec, **{name: "identity"}))
    if spec.loss == "cross_entropy":
        C = spec.sizes[-1] if hasattr(spec, "sizes") else spec.output_size
        yield replace(case, spec=replace(spec, loss="mse"), inputs=_mse(case, case.inputs, C))
    if getattr(spec, "readout", "last") == "every":
        last = {k: (v if k in ("X", "h0") else v[-1]) for k, v in case.inputs.items()}
        yield replace(case, spec=replace(spec, readout="last"), inputs=last)


def in_bn_domain(case: Case) -> bool:
    """Whether a batch-norm case stays where strategies.bn_specs draws: an input of 2 features or
    more, hidden layers of 3 units or more (5 and tanh or sigmoid between two batch norms), 3 rows
    or more. Outside, a gradient can be zero by structure (the next normalization absorbs βˡ, or
    x̂ is ±1 whatever the input) and only rounding noise is left to compare with it."""
    spec, N = case.spec, case.inputs["X"].shape[0]
    hidden = spec.sizes[1:-1]
    if spec.sizes[0] < 2 or N < 3 or min(hidden, default=3) < 3:
        return False
    return len(hidden) < 2 or (min(hidden) >= 5 and spec.hidden_activation in ("tanh", "sigmoid"))


def shrink_mlp(case: Case) -> Iterator[Case]:
    if set(case.inputs) - MLP_INPUTS:
        return
    if case.spec.batchnorm:
        yield from (c for c in _shrink_mlp(case) if in_bn_domain(c))
    else:
        yield from _shrink_mlp(case)


def _shrink_mlp(case: Case) -> Iterator[Case]:
    yield from simpler_paths(case)
    sizes, N = list(case.spec.sizes), case.inputs["X"].shape[0]
    for n in smaller(N):
        yield _mlp(case, _layers(case), sizes, n)
    for l in range(1, len(sizes) - 1):  # drop hidden layer l: layer l + 1 reads A^{l-1}
        if sizes[l] >= sizes[l - 1]:
            layers = _layers(case)
            layers[l]["W"] = layers[l]["W"][:, : sizes[l - 1]]
            yield _mlp(case, layers[: l - 1] + layers[l:], sizes[:l] + sizes[l + 1 :], N)
    for l in range(len(sizes)):
        for width in smaller(sizes[l]):
            layers, new = _layers(case), list(sizes)
            new[l] = width
            if l == 0:
                layers[0]["W"] = layers[0]["W"][:, :width]
            else:
                _narrow(layers, l, width)
            yield _mlp(case, layers, new, N)


# ---------------------------------------------------------------- the RNN


def _rnn(case: Case, T: int, N: int, D: int, H: int, C: int) -> Case:
    spec, p = case.spec, case.params
    params = {
        "W_ih": p["W_ih"][:H, :D],
        "W_hh": p["W_hh"][:H, :H],
        "b_ih": p["b_ih"][:H],
        "b_hh": p["b_hh"][:H],
        "W_out": p["W_out"][:C, :H],
        "b_out": p["b_out"][:C],
    }
    every = spec.readout == "every"
    inputs = {}
    for k, v in case.inputs.items():
        if k == "X":
            v = v[:T, :N, :D]
        elif k == "h0":
            v = v[:N, :H]
        else:  # targets, dY, dY2: (N, C) / (N,) or (T, N, C) / (T, N)
            v = v[:T, :N] if every else v[:N]
            v = v % C if v.dtype.kind in "iu" else v[..., :C]
        inputs[k] = v
    new = replace(spec, input_size=D, hidden_size=H, output_size=C)
    return replace(case, spec=new, params=params, inputs=inputs)


def shrink_rnn(case: Case) -> Iterator[Case]:
    if set(case.inputs) - RNN_INPUTS:
        return
    yield from simpler_paths(case)
    T, N, D = case.inputs["X"].shape
    dims = {"T": T, "N": N, "D": D, "H": case.spec.hidden_size, "C": case.spec.output_size}
    for name in ("T", "N", "H", "D", "C"):
        for size in smaller(dims[name]):
            yield _rnn(case, **{**dims, name: size})
