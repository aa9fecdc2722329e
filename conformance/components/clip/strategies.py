"""Hypothesis strategies for clipping cases: layouts, thresholds, and the edges.

Hypothesis draws the structure (a layout of named tensor shapes, the kind,
norm type, convention, torch's foreach path, the regime, a seed); NumPy draws
the values from the seed. Under the ci profile the layouts come from a fixed
catalog (compiled JAX functions are cached per layout); dev and thorough draw
free layouts of 1 to 5 tensors of 0 to 3 dimensions.

Regimes place the threshold (M for global-norm clipping, v for clipping by value):
  random  ratio · ‖g‖ (ratio from RATIOS; ‖g‖ of the spec's order, max |g| for value)
  below   2 ‖g‖₂, above every norm of g: nothing may change
  above   ‖g‖_∞ / 2, below every norm of g: every implementation clips
Edge strategies: `threshold_cases` (gradients whose norms are exact in any
summation order), `zero_cases` (M = 0), `nonfinite_cases` (inf and NaN entries).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from conformance.case import Case
from conformance.components.clip.reference import ClipCaseSpec
from conformance.layouts import VECTOR_WIDTHS
from conformance.paths import path_choices, with_meta
from conformance.profiles import Profile
from conformance.strategies import catalog_or, seeds

Layout = tuple[tuple[str, tuple[int, ...]], ...]

# ci: an MLP's parameters, one vector, a 0-d tensor beside a 3-d one. Few tensors: XLA's compile
# time grows with the number of leaves (about 0.1 s each), and each layout compiles per dtype.
CLIP_LAYOUTS: tuple[Layout, ...] = (
    (("W1", (5, 3)), ("b1", (5,)), ("W2", (2, 5)), ("b2", (2,))),
    (("w", (7,)),),
    (("scale", ()), ("kernel", (3, 2, 2))),
)
# ci, sizes across vector widths (conformance.layouts): norms and products over tensors whose
# kernels run a vectorized body and a tail (129 entries, 33 x 65, 17); contiguous or transposed
WIDE_LAYOUTS: tuple[Layout, ...] = ((("w", (129,)), ("W", (33, 65)), ("b", (17,))),)
MEMORY_LAYOUTS = ("contiguous", "strided", "transposed")
CI_MEMORY_LAYOUTS = ("contiguous", "transposed")
RATIOS = (0.1, 0.5, 0.9, 1.1, 3.0)
KINDS = ("global_norm", "value")


@st.composite
def free_layouts(draw: st.DrawFn) -> Layout:
    count = draw(st.integers(1, 5))
    shape = st.lists(st.integers(1, 6), max_size=3).map(tuple)
    return tuple((f"g{k}", draw(shape)) for k in range(count))


def layouts(profile: Profile) -> st.SearchStrategy[Layout]:
    return catalog_or(profile, CLIP_LAYOUTS, free_layouts())


@st.composite
def wide_layouts(draw: st.DrawFn) -> Layout:
    """1 to 3 tensors of 1 or 2 dimensions, each dimension from VECTOR_WIDTHS."""
    shape = st.lists(st.sampled_from(VECTOR_WIDTHS), min_size=1, max_size=2).map(tuple)
    return tuple((f"g{k}", draw(shape)) for k in range(draw(st.integers(1, 3))))


# (kind, norm_type, foreach): torch's four global-norm paths and its two clip_grad_value_ paths.
VARIANTS = (
    ("global_norm", 2.0, True),
    ("global_norm", 2.0, False),
    ("global_norm", math.inf, True),
    ("global_norm", math.inf, False),
    ("value", 2.0, True),
    ("value", 2.0, False),
)


@st.composite
def clip_specs(draw: st.DrawFn, *, kinds: tuple[str, ...] = KINDS, errors: bool = False) -> ClipCaseSpec:
    """A spec with a placeholder threshold (1.0); the case builders set the real one.

    The convention is drawn for the reference's own rows (a framework sets its own); optax
    clips by the L2 norm only, so an inf-norm variant drawn with it is read as L2.
    """
    kind, norm_type, foreach = draw(st.sampled_from([v for v in VARIANTS if v[0] in kinds]))
    convention = draw(st.sampled_from(("torch", "optax")))
    norm_type = 2.0 if convention == "optax" else norm_type
    if kind == "value":
        return ClipCaseSpec(kind, None, 1.0, norm_type, convention, foreach=foreach)
    error = draw(st.booleans()) if errors else False
    return ClipCaseSpec(kind, 1.0, None, norm_type, convention, error_if_nonfinite=error, foreach=foreach)


def with_threshold(spec: ClipCaseSpec, value: float) -> ClipCaseSpec:
    if spec.kind == "global_norm":
        return replace(spec, max_norm=float(value))
    return replace(spec, clip_value=float(value))


def _norm(grads: dict[str, np.ndarray], order: float) -> float:
    flat = np.concatenate([g.reshape(-1) for g in grads.values()])
    return float(np.max(np.abs(flat)) if math.isinf(order) else np.sqrt(np.sum(flat**2)))


def _case(spec: ClipCaseSpec, grads: dict[str, np.ndarray], rng: np.random.Generator, seed: int) -> Case:
    params = {k: np.asarray(rng.standard_normal(g.shape)) for k, g in grads.items()}
    return Case("clip", spec, params, grads, seed=seed)


# The gradients' scale, 10^U(low, high): moderate values of each dtype. In float16 the squares
# of a norm overflow from 256 on; the range-end properties (range_ends.py) draw those on purpose.
SCALES = {"float16": (-2.0, 0.5)}
SCALE = (-3.0, 3.0)


def clip_case(
    spec: ClipCaseSpec,
    layout: Layout,
    seed: int,
    *,
    ratio: float | None = None,
    regime: str = "random",
    scales: tuple[float, float] = SCALE,
) -> Case:
    """Gradients of scale 10^U(*scales), the threshold placed by `regime` (module docstring)."""
    rng = np.random.default_rng(seed)
    scale = 10 ** rng.uniform(*scales)
    grads = {name: np.asarray(rng.standard_normal(shape) * scale) for name, shape in layout}
    largest = _norm(grads, math.inf)
    if regime == "below":
        threshold = 2 * _norm(grads, 2.0)
    elif regime == "above":
        threshold = largest / 2
    else:
        ratio = RATIOS[int(rng.integers(len(RATIOS)))] if ratio is None else ratio
        size = _norm(grads, spec.norm_type) if spec.kind == "global_norm" else largest
        threshold = ratio * size
    return _case(with_threshold(spec, threshold), grads, rng, seed)


@st.composite
def clip_cases(
    draw: st.DrawFn, profile: Profile, *, regime: str = "random", kinds: tuple[str, ...] = KINDS
) -> Case:
    return clip_case(
        draw(clip_specs(kinds=kinds)),
        draw(layouts(profile)),
        draw(seeds()),
        regime=regime,
        scales=SCALES.get(profile.dtype, SCALE),
    )


@st.composite
def wide_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """Tensors across vector widths (ci: WIDE_LAYOUTS), the .grad in a memory layout (meta
    "layout"; "layouts" the ones to compare: ci CI_MEMORY_LAYOUTS)."""
    memory = CI_MEMORY_LAYOUTS if profile.bounded_shapes else MEMORY_LAYOUTS
    case = clip_case(
        draw(clip_specs()), draw(catalog_or(profile, WIDE_LAYOUTS, wide_layouts())), draw(wide_seeds(profile))
    )
    return with_meta(case, layout=draw(st.sampled_from(memory)), layouts=memory)


def wide_seeds(profile: Profile) -> st.SearchStrategy[int]:
    """ci: seed 0, so the threshold takes one value per variant (a framework that fixes the
    threshold when it builds its optimizer compiles a step for each: 1 to 3 s of CPU per
    example at these sizes)."""
    return catalog_or(profile, (0,), seeds())


@st.composite
def path_cases(draw: st.DrawFn, profile: Profile, *, wide: bool = False) -> Case:
    """A clipping case and the paths it may run on (meta "paths"). ci: one vector (JAX op by op
    compiles every primitive per shape: 1.7 s of CPU a dtype per tensor set); wide: the tensors
    of wide_cases (clip-concatenated: the one long tensor is a program of its own for JAX)."""
    ci = WIDE_LAYOUTS if wide else CLIP_LAYOUTS[1:2]
    shapes = catalog_or(profile, ci, wide_layouts() if wide else free_layouts())
    case = clip_case(draw(clip_specs()), draw(shapes), draw(wide_seeds(profile) if wide else seeds()))
    return with_meta(case, paths=path_choices(profile))


def exact_norm_grads(layout: Layout, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Entries 0 or ±s (s a power of two), j_k² nonzero entries in tensor k, Σ j_k² = Q².

    Every partial sum of squares is an integer times s², each tensor's norm j_k s and
    the global norm Q s are exact, so every implementation, in any summation order and
    in float32 as in float64, computes exactly ‖g‖₂ = Q s and ‖g‖_∞ = s.
    """
    sizes = [math.prod(shape) for _, shape in layout]
    counts = [0] * len(sizes)
    for _ in range(200):
        counts = [int(rng.integers(0, math.isqrt(m) + 1)) ** 2 for m in sizes]
        if sum(counts) > 0 and math.isqrt(sum(counts)) ** 2 == sum(counts):
            break
    else:
        counts = [1] + [0] * (len(sizes) - 1)
    s = 2.0 ** int(rng.integers(-6, 7))  # 2^6 s reaches norms >= 32, where float32 absorbs torch's eps
    grads = {}
    for (name, shape), m, count in zip(layout, sizes, counts, strict=True):
        flat = np.zeros(m)
        flat[rng.choice(m, size=count, replace=False)] = s * rng.choice([-1.0, 1.0], size=count)
        grads[name] = flat.reshape(shape)
    return grads


@st.composite
def threshold_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """Exact-norm gradients; clip-threshold sets M (or v) to that norm under each convention."""
    spec, seed = draw(clip_specs()), draw(seeds())
    rng = np.random.default_rng(seed)
    grads = exact_norm_grads(draw(layouts(profile)), rng)
    return _case(spec, grads, rng, seed)


@st.composite
def zero_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """M = 0 (v = 0), with all-zero gradients first (what hypothesis tries first) or random ones."""
    spec, layout, seed = draw(clip_specs()), draw(layouts(profile)), draw(seeds())
    spec = replace(with_threshold(spec, 0.0), convention="torch", norm_type=spec.norm_type)
    nonzero = draw(st.booleans())
    rng = np.random.default_rng(seed)
    draw_values = (lambda shape: np.asarray(rng.standard_normal(shape))) if nonzero else np.zeros
    grads = {name: draw_values(shape) for name, shape in layout}
    return _case(spec, grads, rng, seed)


@st.composite
def nonfinite_cases(draw: st.DrawFn, profile: Profile) -> Case:
    """One or two entries set to NaN, inf or -inf; error_if_nonfinite drawn for global-norm specs."""
    case = clip_case(draw(clip_specs(errors=True)), draw(layouts(profile)), draw(seeds()))
    rng = np.random.default_rng([case.seed, 3])
    grads = {k: v.copy() for k, v in case.inputs.items()}
    keys = list(grads)
    for _ in range(int(rng.integers(1, 3))):
        flat = grads[keys[int(rng.integers(len(keys)))]].reshape(-1)  # a view of the copy
        flat[int(rng.integers(flat.size))] = rng.choice([np.nan, np.inf, -np.inf])
    return replace(case, inputs=grads)
