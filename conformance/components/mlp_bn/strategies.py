"""Hypothesis strategies for the batch-normalized MLP component "mlp_bn".

Hypothesis draws the structure (spec, batch size, mode, a seed); NumPy draws the
values from the seed: W and b by torch's init (mlp_params), γ of either sign with |γ| in
[0.5, 1.5] and β ~ N(0, 0.5²) (γ = 1, β = 0, the frameworks' init, would hide a
swapped or dropped γ), running statistics away from their initial 0 and 1
(running mean ~ N(0, 0.5²), running variance ~ U(0.5, 2)), X ~ N(0, 1), targets
and two random upstream gradients "dY", "dY2".

Under the ci profile the specs come from a fixed catalog and the batch is
CI_BATCH rows. A JAX function compiles once per spec, mode, variance formula,
dtype and shape (about a second each on 2 cores), so each property draws from
as few entries as its purpose needs: the training properties from the first
two, eval mode from the last (identity activations, two batch norms), and the
properties that change the spec or the shape (batch of one, ε scaled for the
shift-and-scale invariance, the ill-conditioned input with both variance
formulas, forward mode) from the first only; the golden cases reuse those.
dev and thorough draw freely.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from conformance.case import Case
from conformance.components.mlp.strategies import mlp_params
from conformance.layouts import VECTOR_WIDTHS
from conformance.paths import path_choices, with_meta
from conformance.profiles import Profile
from conformance.strategies import extreme_scale, seeds
from refimpl.activations import ACTIVATIONS, LEAKY_KINKS
from refimpl.losses import LOSSES
from refimpl.mlp import MLPSpec

# fmt: off
BN_CATALOG = (
    MLPSpec((3, 5, 2), "tanh", "identity", "mse", batchnorm=True),
    MLPSpec((4, 6, 6, 3), "relu", "identity", "cross_entropy", batchnorm=True),
    MLPSpec((2, 4, 4, 3), "identity", "identity", "mse", batchnorm=True),  # affine in eval mode
)
# fmt: on
TRAIN_SPECS = BN_CATALOG[:2]  # ci: the training-mode properties
FIRST = BN_CATALOG[:1]  # ci: the properties that change the spec, the shape or the variance
EVAL_SPECS = BN_CATALOG[2:]  # ci: eval mode, eval-agreement and bn-eval-affine alike
GOLDEN = ((BN_CATALOG[0], True), (BN_CATALOG[2], False), (BN_CATALOG[1], True))  # (spec, train)
CI_SEEDS = (0, 1, 2, 3)  # ci: a failing known issue shrinks over these, not over 2³² seeds
CI_BATCH = 6
ILL_MEAN = 1.0e4  # the ill-conditioned cases' feature mean at the first batch norm
# ci, sizes across vector widths (conformance.layouts): batch statistics over 129 rows (a body of
# 128 and a tail) of 65 features, from 33 inputs; X contiguous or transposed (two programs a dtype)
WIDE_BN = MLPSpec((33, 65, 9), "tanh", "identity", "mse", batchnorm=True)
WIDE_BN_BATCH = 129
LAYOUTS = ("contiguous", "strided", "transposed")
CI_LAYOUTS = ("contiguous", "transposed")
# ci, paths: the functional forms (F.batch_norm, jax.nn.standardize); JAX op by op compiles every
# primitive per shape (2 s of CPU a dtype), in dev, thorough and hunt
CI_PATHS = ("functional",)


def bn_case(spec: MLPSpec, batch: int, seed: int, *, train: bool, ill_conditioned: bool = False) -> Case:
    """A case of spec (batchnorm on) with `batch` rows.

    ill_conditioned: X = ILL_MEAN + N(0, 1) and each row of W1 shifted to sum to 1, so the
    first batch norm sees features of mean ILL_MEAN and spread |W1_d - mean W1_d + 1/D_0|
    (about 0.6 for D_0 = 3)."""
    rng = np.random.default_rng(seed)
    params = mlp_params(spec, rng)
    hidden = range(1, len(spec.sizes) - 1)  # the layers followed by batch norm
    for l in hidden:
        D = spec.sizes[l]
        params[f"gamma{l}"] = rng.choice([-1.0, 1.0], D) * rng.uniform(0.5, 1.5, D)
        params[f"beta{l}"] = rng.normal(0.0, 0.5, D)
    if ill_conditioned:
        W1 = params["W1"]
        params["W1"] = W1 - W1.mean(axis=1, keepdims=True) + 1.0 / spec.sizes[0]
    state = {}
    for l in hidden:
        state[f"running_mean{l}"] = rng.normal(0.0, 0.5, spec.sizes[l])
        state[f"running_var{l}"] = rng.uniform(0.5, 2.0, spec.sizes[l])
    C = spec.sizes[-1]
    X = rng.standard_normal((batch, spec.sizes[0])) + (ILL_MEAN if ill_conditioned else 0.0)
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
    return Case("mlp_bn", spec, params, inputs, state=state, train=train, seed=seed)


def bn_specs() -> st.SearchStrategy[MLPSpec]:
    """Random MLP specs with batch norm, depth 2 to 4, away from the shapes where some
    gradient is zero by structure and only rounding noise is left to compare:

    * every batch norm's linear map has 2 inputs or more (D_0 >= 2, hidden widths >= 3): with
      one input, Zˡ = Aˡ⁻¹ wᵀ and scaling w leaves x̂ unchanged, so ∂L/∂Wˡ is of the size of ε;
    * two batch norms in a row only through tanh or sigmoid, and with 5 units or more: through
      an activation affine on the batch (identity; relu or leaky relu with every row on one
      side) the next normalization absorbs βˡ, whose gradient is then 0.
    """

    def build(depth: int) -> st.SearchStrategy[MLPSpec]:
        hidden = (3, 5, 8, 16) if depth == 2 else (5, 8, 16)
        acts = ACTIVATIONS if depth == 2 else ("tanh", "sigmoid")
        return st.builds(
            MLPSpec,
            sizes=st.tuples(
                st.sampled_from((2, 3, 5, 8)),
                *[st.sampled_from(hidden)] * (depth - 1),
                st.sampled_from((1, 2, 3, 5)),
            ),
            hidden_activation=st.sampled_from(acts),
            output_activation=st.sampled_from(ACTIVATIONS),
            loss=st.sampled_from(LOSSES),
            slope=st.sampled_from((0.01, 0.1, 0.2, 0.5)),
            leaky_kink=st.sampled_from(LEAKY_KINKS),
            batchnorm=st.just(True),
        )

    return st.integers(2, 4).flatmap(build)


@st.composite
def bn_cases(
    draw: st.DrawFn,
    profile: Profile,
    *,
    train: bool = True,
    ci: tuple[MLPSpec, ...] = TRAIN_SPECS,
    batch: int | None = None,
    affine: bool = False,
    ill_conditioned: bool = False,
) -> Case:
    """A random "mlp_bn" case. ci: the catalog entries the ci profile draws from; batch: a
    fixed number of rows (1 for the batch of one); affine: identity activations everywhere
    (the network is then affine in X in eval mode); ill_conditioned: see bn_case, on the first
    catalog entry and CI_BATCH rows in every profile (the seed varies, drawn from CI_SEEDS under
    ci): with every float32 result ~1e-3 off from rounding inputs of 1e4, the reference's own
    float32 error estimates another implementation's well only over tensors of a dozen entries
    or more (300 seeds: two-pass Y and state at most 0.41 tolerances; a 3-row, 1-output case
    reached 7)."""
    bounded = profile.bounded_shapes
    if ill_conditioned:
        bounded, ci, batch = True, FIRST, CI_BATCH
    spec = draw(st.sampled_from(ci) if bounded else bn_specs())
    if affine:
        spec = replace(spec, hidden_activation="identity", output_activation="identity")
    if batch is None:
        # not 2 rows: x̂ = ±σ/√(σ² + ε) whatever the input, so every gradient through the
        # normalization is of the size of ε, a difference of terms of size 1
        batch = CI_BATCH if bounded else draw(st.sampled_from((3, 4, 8, 16)))
    ci_seeds = ill_conditioned and profile.bounded_shapes
    seed = draw(st.sampled_from(CI_SEEDS) if ci_seeds else seeds())
    return bn_case(spec, batch, seed, train=train, ill_conditioned=ill_conditioned)


@st.composite
def wide_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """One batch norm with widths and a batch from VECTOR_WIDTHS (at least 2 inputs, 3 features
    and 3 rows, as bn_specs says why), in a layout (meta "layout"; "layouts" the ones to compare).
    ci: WIDE_BN with WIDE_BN_BATCH rows, CI_LAYOUTS."""
    layouts = CI_LAYOUTS if profile.bounded_shapes else LAYOUTS
    if profile.bounded_shapes:
        spec, batch = WIDE_BN, WIDE_BN_BATCH
    else:
        wide = [n for n in VECTOR_WIDTHS if n >= 3]
        spec = draw(
            st.builds(
                MLPSpec,
                sizes=st.tuples(
                    st.sampled_from(wide[:-3]), st.sampled_from(wide), st.sampled_from(VECTOR_WIDTHS)
                ),
                hidden_activation=st.sampled_from(ACTIVATIONS),
                output_activation=st.sampled_from(ACTIVATIONS),
                loss=st.sampled_from(LOSSES),
                batchnorm=st.just(True),
            )
        )
        batch = draw(st.sampled_from(wide))
    train = True if profile.bounded_shapes else draw(st.booleans())
    case = bn_case(spec, batch, draw(seeds()), train=train)
    return with_meta(case, layout=draw(st.sampled_from(layouts)), layouts=layouts)


@st.composite
def path_cases(draw: st.DrawFn, profile: Profile, *, compiled: bool = False) -> Case:
    """A case and the paths it may run on (meta "paths"). ci: FIRST in training mode, CI_PATHS
    (compiled: that case, which compiled-agreement skips); dev, compiled: TRAIN_SPECS in either
    mode (a graph each); otherwise bn_cases' draws in either mode."""
    paths = path_choices(profile, CI_PATHS)
    if profile.bounded_shapes:
        return with_meta(bn_case(FIRST[0], CI_BATCH, draw(seeds()), train=True), paths=paths)
    train = draw(st.booleans())
    if compiled and profile.name == "dev":
        case = bn_case(draw(st.sampled_from(TRAIN_SPECS)), CI_BATCH, draw(seeds()), train=train)
    else:
        case = draw(bn_cases(profile, train=train))
    return with_meta(case, paths=paths)


@st.composite
def init_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """A batch-norm network for init-distribution. ci: one example, the first catalog entry
    with seed 0."""
    if profile.bounded_shapes:
        return bn_case(draw(st.sampled_from(FIRST)), CI_BATCH, 0, train=True)
    return bn_case(draw(bn_specs()), CI_BATCH, draw(seeds()), train=True)


# ---------------------------------------------------------------- extreme values
#
# What batch norm takes out of its input, at the dtype's scale: a huge spread (X times s) and a
# huge mean (X + m, the first batch norm's features of mean m times Σ W¹), and tiny inputs (X
# times 8 × the smallest normal, a variance far below ε). s keeps every square of the two-pass
# variance in range (its overflow is bn-range-ends); m is about 1/(64 u) in the low-precision
# dtypes, where rounding the inputs is still about 1% of their spread (beyond, x̂ is the inputs'
# rounding noise normalized, and a first-order rounding bound says nothing).
BN_EXTREMES = ("spread", "mean", "tiny")
BN_SPREAD = {"float16": 16.0, "bfloat16": 1e15, "float32": 1e15, "float64": 1e100}
BN_MEAN = {"float16": 32.0, "bfloat16": 4.0, "float32": 1e4, "float64": 1e8}


@st.composite
def extreme_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """A training-mode "mlp_bn" case with X in one of BN_EXTREMES, in profile.dtype."""
    regime = draw(st.sampled_from(BN_EXTREMES))
    case = draw(bn_cases(profile))
    X = case.inputs["X"]
    if regime == "spread":
        X = X * BN_SPREAD[profile.dtype]
    elif regime == "mean":
        X = X + BN_MEAN[profile.dtype]
    else:
        X = X * extreme_scale("tiny", profile.dtype)
    return replace(case, inputs={**case.inputs, "X": X}, meta={**case.meta, "regime": regime})
