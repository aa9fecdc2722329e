"""Hypothesis strategies for the Elman RNN components "rnn" (full BPTT) and "rnn_truncated".

Hypothesis draws the structure (spec, sequence length T, batch N, the BPTT window
k, a seed); NumPy draws the values from the seed: parameters by torch's init (rnn_params),
X ~ N(0, 1), a NON-ZERO initial state h0 ~ N(0, 1) (with h0 = 0 a backward that
drops the δ_1ᵀ h0 term of ∂L/∂W_hh, or ∂L/∂h0 itself, would pass), targets and
two random upstream gradients "dY", "dY2" shaped like Y.

Under the ci profile the specs and shapes come from fixed catalogs (each compiled
JAX function is reused by every property); they cover tanh and relu, both
readouts and both losses, T = 1, T = 64 in both components, windows k = 1, a
window that leaves a shorter last chunk, and k >= T. dev and thorough draw freely.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st

from conformance.case import Arrays, Case
from conformance.layouts import VECTOR_WIDTHS
from conformance.paths import path_choices, with_meta
from conformance.profiles import Profile
from conformance.strategies import EXTREME_REGIMES, catalog_or, extreme_scale, scaled, seeds, uniform_fan_in
from refimpl.losses import LOSSES
from refimpl.rnn import NONLINEARITIES, READOUTS, RNNSpec


class Shape(NamedTuple):
    spec: RNNSpec
    T: int  # sequence length
    N: int  # batch


# fmt: off
RNN_CATALOG = (
    Shape(RNNSpec(3, 4, 2, "tanh", "every", "mse"), T=64, N=2),  # the long sequence
    Shape(RNNSpec(2, 5, 3, "relu", "last", "cross_entropy"), T=6, N=3),
    # one step; also the shape of the k = 1 problems of the entry above stacked (1, T N)
    Shape(RNNSpec(2, 5, 3, "relu", "last", "cross_entropy"), T=1, N=18),
)
INIT_SHAPES = RNN_CATALOG[1:2]  # ci, init-distribution: D = 2, H = 5, C = 3 all differ
# The same networks with a window: the JAX adapter takes the window as data, so these
# reuse the programs compiled for RNN_CATALOG.
TRUNCATED_CATALOG = (
    Shape(replace(RNN_CATALOG[0].spec, truncation=6), T=64, N=2),  # 10 chunks of 6, one of 4
    Shape(replace(RNN_CATALOG[1].spec, truncation=4), T=6, N=3),  # readout "last": chunks 4, 2
)
# ci, sizes across vector widths (conformance.layouts): 33 inputs, 65 units, 9 classes, 17 sequences,
# X contiguous: each layout is a JAX program of its own (1.7 s of CPU a dtype), so the layouts
# (layout-invariance) run in dev, thorough and hunt
WIDE_RNN = Shape(RNNSpec(33, 65, 9, "tanh", "every", "cross_entropy"), T=3, N=17)
# fmt: on
LAYOUTS = ("contiguous", "strided", "transposed", "reordered")
CI_LAYOUTS = ("contiguous",)
# ci, paths: torch's nn.RNNCell; JAX op by op (4.5 s of CPU a dtype for the RNN), vmap and row
# blocks (a program each, about a second) in dev, thorough and hunt
CI_PATHS = ("cell",)


def rnn_params(spec: RNNSpec, rng: np.random.Generator) -> Arrays:
    """float64 parameters drawn as torch initializes nn.RNN and its nn.Linear(H, C) readout:
    every tensor ~ U(-1/√H, 1/√H), in the order W_ih, W_hh, b_ih, b_hh, W_out, b_out."""
    D, H, C = spec.input_size, spec.hidden_size, spec.output_size
    shapes = {"W_ih": (H, D), "W_hh": (H, H), "b_ih": (H,), "b_hh": (H,), "W_out": (C, H), "b_out": (C,)}
    return {name: uniform_fan_in(rng, shape, H) for name, shape in shapes.items()}


def outputs_shape(spec: RNNSpec, T: int, N: int) -> tuple[int, ...]:
    """Y: (N, C) with readout "last", (T, N, C) with "every"."""
    return (N, spec.output_size) if spec.readout == "last" else (T, N, spec.output_size)


def rnn_case(shape: Shape, seed: int, component: str = "rnn") -> Case:
    """Float64 masters for one shape: params, X (T, N, D), h0 (N, H), targets, dY, dY2."""
    spec, T, N = shape
    rng = np.random.default_rng(seed)
    params = rnn_params(spec, rng)
    Y_shape = outputs_shape(spec, T, N)
    targets: np.ndarray
    if spec.loss == "cross_entropy":
        targets = rng.integers(0, spec.output_size, size=Y_shape[:-1])
    else:
        targets = rng.standard_normal(Y_shape)
    inputs = {
        "X": rng.standard_normal((T, N, spec.input_size)),
        "h0": rng.standard_normal((N, spec.hidden_size)),
        "targets": targets,
        "dY": rng.standard_normal(Y_shape),
        "dY2": rng.standard_normal(Y_shape),
    }
    return Case(component, spec, params, inputs, seed=seed)


@st.composite
def free_shapes(
    draw: st.DrawFn, *, truncated: bool = False, T: int | None = None, window: str = "any"
) -> Shape:
    """T 1..12 (or 32, 64), N 1..4, D 1..5, H 1..6, C 2..4; window k in 1..T+1 (or >= T)."""
    if T is None:
        T = draw(st.integers(1, 12) | st.sampled_from((32, 64)))
    k = None
    if truncated:
        k = draw(st.integers(T, T + 3) if window == "covering" else st.integers(1, T + 1))
        k = 1 if window == "one" else k
    spec = RNNSpec(
        input_size=draw(st.integers(1, 5)),
        hidden_size=draw(st.integers(1, 6)),
        output_size=draw(st.integers(2, 4)),
        nonlinearity=draw(st.sampled_from(NONLINEARITIES)),
        readout=draw(st.sampled_from(READOUTS)),
        loss=draw(st.sampled_from(LOSSES)),
        truncation=k,
    )
    return Shape(spec, T, draw(st.integers(1, 4)))


@st.composite
def rnn_cases(draw: st.DrawFn, profile: Profile, *, steps: str = "any") -> Case:
    """Full BPTT ("rnn"). steps: "any"; "one" (T = 1, for `one-step-dense`)."""
    catalog = tuple(s for s in RNN_CATALOG if s.T == 1) if steps == "one" else RNN_CATALOG
    shape = draw(catalog_or(profile, catalog, free_shapes(T=1 if steps == "one" else None)))
    return rnn_case(shape, draw(seeds()))


@st.composite
def truncated_cases(draw: st.DrawFn, profile: Profile, *, window: str = "any", steps: str = "any") -> Case:
    """Truncated BPTT ("rnn_truncated"). window: "any"; "one" (k = 1); "covering" (k >= T).
    steps "long": ci draws the T = 64 entry only (truncated-finite-differences, whose chunk
    problems are programs of their own).

    ci: TRUNCATED_CATALOG; "one" sets k = 1 on its short entry; "covering" sets k = T on
    the multi-step entries of RNN_CATALOG.
    """
    if window == "covering":
        catalog = tuple(s._replace(spec=replace(s.spec, truncation=s.T)) for s in RNN_CATALOG if s.T > 1)
    elif window == "one":
        catalog = tuple(s._replace(spec=replace(s.spec, truncation=1)) for s in TRUNCATED_CATALOG if s.T < 64)
    else:
        catalog = TRUNCATED_CATALOG
    if steps == "long":
        catalog = tuple(s for s in catalog if s.T >= 64)
    shape = draw(catalog_or(profile, catalog, free_shapes(truncated=True, window=window)))
    return rnn_case(shape, draw(seeds()), component="rnn_truncated")


@st.composite
def wide_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """Widths and a batch from VECTOR_WIDTHS, 1 to 4 steps, in a layout (meta "layout";
    "layouts" the ones to compare). ci: WIDE_RNN, CI_LAYOUTS."""
    layouts = CI_LAYOUTS if profile.bounded_shapes else LAYOUTS
    if profile.bounded_shapes:
        shape = WIDE_RNN
    else:
        width = st.sampled_from(VECTOR_WIDTHS)
        spec = RNNSpec(
            draw(width),
            draw(width),
            draw(st.sampled_from(VECTOR_WIDTHS[1:])),
            draw(st.sampled_from(NONLINEARITIES)),
            draw(st.sampled_from(READOUTS)),
            draw(st.sampled_from(LOSSES)),
        )
        shape = Shape(spec, draw(st.integers(1, 4)), draw(width))
    case = rnn_case(shape, draw(seeds()))
    return with_meta(case, layout=draw(st.sampled_from(layouts)), layouts=layouts)


@st.composite
def path_cases(draw: st.DrawFn, profile: Profile, *, blocks: bool = False) -> Case:
    """A full-BPTT case and the paths it may run on (meta "paths": CI_PATHS under ci). ci: the
    catalog's T = 6 entry; blocks: at least 2 sequences."""
    free = free_shapes().filter(lambda s: s.N >= 2) if blocks else free_shapes()
    case = rnn_case(draw(catalog_or(profile, RNN_CATALOG[1:2], free)), draw(seeds()))
    return with_meta(case, paths=path_choices(profile, CI_PATHS))


@st.composite
def init_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """An RNN for init-distribution. ci: one example, INIT_SHAPES with seed 0."""
    if profile.bounded_shapes:
        return rnn_case(draw(st.sampled_from(INIT_SHAPES)), 0)
    return rnn_case(draw(free_shapes()), draw(seeds()))


# ---------------------------------------------------------------- extreme values

# ci: each regime (conformance.strategies) on a catalog shape it applies to, compiled already.
EXTREME_CATALOG = {"logits": RNN_CATALOG[1], "saturated": RNN_CATALOG[0], "tiny": RNN_CATALOG[0]}
EXTREME_NAMES = {"logits": ("W_out", "b_out"), "saturated": ("W_ih",), "tiny": ("X", "h0")}


@st.composite
def extreme_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """A full-BPTT case in one regime of extreme values, in profile.dtype: cross-entropy on
    logits of 1e4 and beyond, a tanh RNN saturated by its input weights, tiny inputs and h0."""
    regime = draw(st.sampled_from(EXTREME_REGIMES))
    if profile.bounded_shapes:
        shape = EXTREME_CATALOG[regime]
    else:
        shape = draw(free_shapes())
        fits: dict[str, dict[str, Any]] = {
            "logits": {"loss": "cross_entropy"},
            "saturated": {"nonlinearity": "tanh"},
        }
        fit = fits.get(regime, {})
        shape = shape._replace(spec=replace(shape.spec, **fit))
    case = rnn_case(shape, draw(seeds()))
    factor = extreme_scale(regime, profile.dtype, draw(st.integers(0, 1)))
    names = EXTREME_NAMES[regime]
    return replace(
        case,
        params=scaled(case.params, names, factor),
        inputs=scaled(case.inputs, names, factor),
        meta={**case.meta, "regime": regime, "factor": factor},
    )
