"""Hypothesis strategies for the MLP component: specs, parameters, batches.

Hypothesis draws the structure (sizes, activations, loss, batch size, a seed);
NumPy draws the values from that seed, so values are continuous and bounded
(no exact zeros, no overflow) except in the strategies about kinks, which put
exact zeros where the kink is.

Shapes come from a bounded set that depends on the profile (conformance.strategies):
compiled JAX functions are cached per spec and shape, so the ci profile draws
from a fixed catalog of architectures that together cover every activation,
both losses, depth 1 to 5 and width 1, while dev and thorough draw freely
within bounds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from conformance.case import Arrays, Case
from conformance.layouts import VECTOR_WIDTHS
from conformance.paths import path_choices, with_meta
from conformance.profiles import Profile
from conformance.strategies import EXTREME_REGIMES, catalog_or, extreme_scale, scaled, seeds, uniform_fan_in
from refimpl.activations import ACTIVATIONS, ELU_KINKS, LEAKY_KINKS
from refimpl.losses import LOSSES
from refimpl.mlp import MLPSpec

# ci: a fixed catalog, so each spec compiles once per dtype and is reused by every property.
MLP_CATALOG = (
    MLPSpec((3, 5, 2), "tanh", "identity", "mse"),
    MLPSpec((4, 8, 8, 3), "relu", "identity", "cross_entropy"),
    MLPSpec((2, 6, 6, 6, 6, 4), "leaky_relu", "sigmoid", "mse", slope=0.2),
    MLPSpec((5, 1, 3), "sigmoid", "tanh", "mse"),
    MLPSpec((6, 16, 4), "leaky_relu", "identity", "cross_entropy", slope=0.01),
    MLPSpec((3, 4), "identity", "relu", "mse"),
    MLPSpec((1, 7, 5, 2), "tanh", "leaky_relu", "cross_entropy", slope=0.3),
)
CI_BATCHES = (1, 6)
INIT_SPECS = MLP_CATALOG[:1]  # ci, init-distribution: fan-in differs from fan-out in both layers
# ci, sizes across vector widths (conformance.layouts): every product and sum of this network has
# a vectorized body and a tail (129 = 128 + 1 inputs, 65 units, 9 classes, 33 rows), in each layout
WIDE_CATALOG = (MLPSpec((129, 65, 9), "tanh", "identity", "cross_entropy"),)
WIDE_CI_BATCH = 33
LAYOUTS = ("contiguous", "strided", "transposed")
PATH_SPECS = MLP_CATALOG[:1]  # ci, paths: JAX's op-by-op path compiles every primitive per shape
COMPILE_SPECS = MLP_CATALOG[:3]  # dev, torch.compile: a graph per spec and batch, ~5 s each


def mlp_specs(
    *,
    max_depth: int = 5,
    widths: tuple[int, ...] = (1, 2, 3, 5, 8, 16, 32),
    activations: tuple[str, ...] = ACTIVATIONS,
) -> st.SearchStrategy[MLPSpec]:
    """Random MLP specs: depth 1..max_depth, every width from `widths`."""
    return st.builds(
        MLPSpec,
        sizes=st.integers(1, max_depth).flatmap(
            lambda depth: st.tuples(*[st.sampled_from(widths)] * (depth + 1))
        ),
        hidden_activation=st.sampled_from(activations),
        output_activation=st.sampled_from(activations),
        loss=st.sampled_from(LOSSES),
        slope=st.sampled_from((0.01, 0.1, 0.2, 0.5)),
        leaky_kink=st.sampled_from(LEAKY_KINKS),
        elu_alpha=st.sampled_from((0.5, 1.0, 1.7)),
        elu_kink=st.sampled_from(ELU_KINKS),
        softplus_beta=st.sampled_from((0.5, 1.0, 2.0)),
        softplus_threshold=st.sampled_from((20.0, None, 2.0)),
    )


def batch_sizes(profile: Profile) -> st.SearchStrategy[int]:
    if profile.bounded_shapes:
        return st.sampled_from(CI_BATCHES)
    return st.sampled_from((1, 2, 3, 4, 8, 16))


def mlp_params(spec: MLPSpec, rng: np.random.Generator) -> Arrays:
    """float64 parameters in layer order, drawn as torch initializes them: Wˡ (D_l, D_{l-1})
    and bˡ ~ U(-1/√D_{l-1}, 1/√D_{l-1}) (nn.Linear). With batch norm the hidden layers have no
    bias and hold γˡ = 1, βˡ = 0 instead (nn.BatchNorm1d), which take no draws."""
    params: Arrays = {}
    depth = len(spec.sizes) - 1
    for l, (fan_in, width) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:], strict=True), start=1):
        params[f"W{l}"] = uniform_fan_in(rng, (width, fan_in), fan_in)
        if spec.batchnorm and l < depth:
            params[f"gamma{l}"], params[f"beta{l}"] = np.ones(width), np.zeros(width)
        else:
            params[f"b{l}"] = uniform_fan_in(rng, (width,), fan_in)
    return params


def mlp_case(spec: MLPSpec, batch: int, seed: int, *, kinks: bool = False) -> Case:
    """Parameters (torch's init, float64), a batch, targets and two upstream gradients.

    With kinks=True every bias is 0 and every other row of X is 0, so those rows
    reach every activation with a pre-activation of exactly 0. The zero rows are +0.0 and
    -0.0 in turn (rows 0, 4, ... and 2, 6, ...): -0 = 0, so every answer is the one at +0.
    Through a matrix product they reach the activations as +0 (BLAS and XLA sum from +0, and
    -0 + +0 = +0): the sign of a zero pre-activation is out of reach of a dense layer.
    """
    rng = np.random.default_rng(seed)
    params = mlp_params(spec, rng)
    X = rng.standard_normal((batch, spec.sizes[0]))
    if kinks:
        params = {k: (np.zeros_like(v) if k.startswith("b") else v) for k, v in params.items()}
        X[0::4], X[2::4] = 0.0, -0.0
    C = spec.sizes[-1]
    targets: np.ndarray
    if spec.loss == "cross_entropy":
        targets = rng.integers(0, C, size=batch)
    else:
        targets = rng.standard_normal((batch, C))
    inputs = {
        "X": X,
        "targets": targets,
        "dY": rng.standard_normal((batch, C)),
        "dY2": rng.standard_normal((batch, C)),
    }
    return Case("mlp", spec, params, inputs, seed=seed)


@st.composite
def mlp_cases(draw: st.DrawFn, profile: Profile, *, kinks: bool = False) -> Case:
    """A random MLP case; with kinks=True, relu/leaky_relu networks with exact-zero pre-activations."""
    if kinks:
        spec = draw(
            catalog_or(
                profile,
                tuple(s for s in MLP_CATALOG if "relu" in s.hidden_activation + s.output_activation),
                mlp_specs(max_depth=3, activations=("relu", "leaky_relu")),
            )
        )
    else:
        spec = draw(catalog_or(profile, MLP_CATALOG, mlp_specs()))
    return mlp_case(spec, draw(batch_sizes(profile)), draw(seeds()), kinks=kinks)


@st.composite
def wide_cases(draw: st.DrawFn, profile: Profile, *, blocks: bool = False) -> Case:
    """Widths and a batch from VECTOR_WIDTHS (ci: WIDE_CATALOG, WIDE_CI_BATCH rows), in a layout
    drawn from LAYOUTS (meta "layout"). blocks (batch-blocks): 2 rows or more, and under ci the
    contiguous layout only (each block is a program of its own for JAX to compile)."""
    spec = draw(catalog_or(profile, WIDE_CATALOG, mlp_specs(max_depth=3, widths=VECTOR_WIDTHS)))
    rows = tuple(n for n in VECTOR_WIDTHS if n >= (2 if blocks else 1))
    batch = draw(catalog_or(profile, (WIDE_CI_BATCH,), st.sampled_from(rows)))
    layout = draw(catalog_or(profile, LAYOUTS[:1] if blocks else LAYOUTS, st.sampled_from(LAYOUTS)))
    return with_meta(mlp_case(spec, batch, draw(seeds())), layout=layout)


@st.composite
def path_cases(draw: st.DrawFn, profile: Profile, *, compiled: bool = False) -> Case:
    """A case and the paths it may run on (meta "paths", conformance.paths.path_choices).
    ci: PATH_SPECS; compiled, dev: COMPILE_SPECS with batches of 1 and 6 (each a graph to
    compile); otherwise any spec, widths from VECTOR_WIDTHS too."""
    free = mlp_specs(widths=(1, 2, 3, 5, *VECTOR_WIDTHS))
    if compiled and profile.name == "dev":
        spec, batch = draw(st.sampled_from(COMPILE_SPECS)), draw(st.sampled_from(CI_BATCHES))
    else:
        spec = draw(catalog_or(profile, PATH_SPECS, free))
        batch = draw(catalog_or(profile, CI_BATCHES[1:], st.sampled_from(VECTOR_WIDTHS)))
    return with_meta(mlp_case(spec, batch, draw(seeds())), paths=path_choices(profile))


@st.composite
def init_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """A network for init-distribution, which reads its spec, seed and parameter shapes. ci: one
    example, INIT_SPECS with seed 0 (each spec is a compilation of flax's initializers)."""
    if profile.bounded_shapes:
        return mlp_case(draw(st.sampled_from(INIT_SPECS)), 1, 0)
    return mlp_case(draw(mlp_specs()), 1, draw(seeds()))


# ---------------------------------------------------------------- extreme values

# ci: each regime on a catalog spec it applies to, compiled already by the other properties.
EXTREME_CATALOG = {"logits": MLP_CATALOG[1], "saturated": MLP_CATALOG[3], "tiny": MLP_CATALOG[0]}


def extreme_names(spec: MLPSpec, regime: str) -> tuple[str, ...]:
    """The arrays a regime scales (conformance.strategies): the readout, the first layer, X."""
    depth = len(spec.sizes) - 1
    return {"logits": (f"W{depth}", f"b{depth}"), "saturated": ("W1",), "tiny": ("X",)}[regime]


def extreme_spec(spec: MLPSpec, regime: str, squash: str) -> MLPSpec:
    """A free spec made fit for its regime: cross-entropy on plain logits, or tanh or sigmoid
    after the saturated first layer."""
    if regime == "logits":
        return replace(spec, loss="cross_entropy", output_activation="identity")
    if regime == "saturated":
        return replace(spec, hidden_activation=squash, output_activation=squash)
    return spec


@st.composite
def extreme_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """An MLP case in one regime of conformance.strategies' extreme values, in profile.dtype."""
    regime = draw(st.sampled_from(EXTREME_REGIMES))
    if profile.bounded_shapes:
        spec = EXTREME_CATALOG[regime]
    else:
        spec = extreme_spec(draw(mlp_specs()), regime, draw(st.sampled_from(("tanh", "sigmoid"))))
    case = mlp_case(spec, draw(batch_sizes(profile)), draw(seeds()))
    factor = extreme_scale(regime, profile.dtype, draw(st.integers(0, 1)))
    names = extreme_names(spec, regime)
    return replace(
        case,
        params=scaled(case.params, names, factor),
        inputs=scaled(case.inputs, names, factor),
        meta={**case.meta, "regime": regime, "factor": factor},
    )
