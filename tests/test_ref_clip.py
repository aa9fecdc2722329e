"""refimpl.clip: clipping invariants, each convention's edges, the real frameworks, meta-tests.

What holds, per convention (M = max_norm, n = pre-clip norm, eps = 1e-6):
- both: the clipped norm is <= M within rounding, and clipped = c · g with one c in [0, 1];
- identity below the threshold: optax exactly (bitwise) for n < M; torch exactly only once
  n + eps <= M; for n < M < n + eps torch still shrinks, by a factor >= n / (n + eps);
- idempotence: neither bitwise. optax within rounding (after one pass n ≈ M, so a second
  pass is the identity or a rescale by M / n ≈ 1); torch only within the eps factor:
  a second pass shrinks again by a factor in [M / (M + eps), 1].
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.clip import (
    ClipSpec,
    NonFiniteNormError,
    apply_clip,
    clip_by_global_norm,
    clip_by_value,
    global_norm,
)

EPS = 1e-6
# Tolerance: torch, XLA and NumPy sum squares in different orders (a few ulps apart in the
# norm, hence in the coefficient); 16 ulps covers that and is far below every difference the
# meta-tests must see (a missing eps on a norm of 5e-4 is a relative 2e-3).
RTOL = {"float32": 16 * float(np.finfo(np.float32).eps), "float64": 16 * float(np.finfo(np.float64).eps)}
SEEDS = st.integers(0, 2**32 - 1)
DTYPES = st.sampled_from(["float32", "float64"])
SETTINGS = settings(max_examples=60, deadline=None)
CASES = [("torch", 2.0), ("torch", math.inf), ("optax", 2.0)]


def make_grads(seed: int, dtype: str, nonfinite: bool = False) -> dict[str, np.ndarray]:
    """1..4 tensors of random shapes (0-d to 3-d) and scales 1e-3..1e3; optional NaN/inf."""
    rng = np.random.default_rng(seed)
    grads = {}
    for k in range(int(rng.integers(1, 5))):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 4))))
        grads[f"g{k}"] = np.asarray(rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3), dtype)
    if nonfinite:
        g = grads["g0"].reshape(-1)  # a view of the new array, not of any input
        g[int(rng.integers(g.size))] = rng.choice([np.nan, np.inf, -np.inf])
    return grads


def as64(grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: g.astype(np.float64) for k, g in grads.items()}


def norm64(grads: dict[str, np.ndarray], norm_type: float = 2.0) -> float:
    return global_norm(as64(grads), norm_type)


def mismatches(expected: dict[str, Any], received: dict[str, Any], rtol: float) -> list[str]:
    """Where two gradient dicts differ: keys, dtype, shape, NaN/inf positions, finite values."""
    if set(expected) != set(received):
        return [f"keys {sorted(expected)} != {sorted(received)}"]
    found = []
    for k, e in expected.items():
        r = np.asarray(received[k])
        if r.dtype != e.dtype or r.shape != e.shape:
            found.append(f"{k}: {r.dtype}{r.shape} != {e.dtype}{e.shape}")
            continue
        same_nan = np.array_equal(np.isnan(e), np.isnan(r))
        same_inf = np.array_equal(np.where(np.isinf(e), e, 0), np.where(np.isinf(r), r, 0))
        if not (same_nan and same_inf):
            found.append(f"{k}: non-finite entries differ: {e} vs {r}")
            continue
        fin = np.isfinite(e)
        e64, r64 = e[fin].astype(np.float64), r[fin].astype(np.float64)
        scale = float(np.max(np.abs(e64), initial=0.0))
        err = np.abs(r64 - e64) - rtol * (np.abs(e64) + scale)
        if err.size and float(err.max()) > 0:
            found.append(f"{k}: worst error {float(np.max(np.abs(r64 - e64)))} at scale {scale}")
    return found


def assert_agrees(expected: dict[str, Any], received: dict[str, Any], rtol: float, what: str) -> None:
    __tracebackhide__ = True
    found = mismatches(expected, received, rtol)
    assert not found, f"{what}: " + "; ".join(found)


def assert_same_norm(expected: float, received: float, rtol: float, what: str) -> None:
    __tracebackhide__ = True
    ok = (
        (math.isnan(expected) and math.isnan(received))
        or expected == received
        or (abs(expected - received) <= rtol * abs(expected))
    )
    assert ok, f"{what}: norm {received} != {expected}"


def draw_max_norm(seed: int, norm: float) -> float:
    """M from 1/100 to 10 times the norm, so about half the cases clip."""
    return float(norm * 10 ** np.random.default_rng(seed + 1).uniform(-2, 1))


# ---------------------------------------------------------------- invariants (hypothesis)


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES, case=st.sampled_from(CASES))
def test_norm_after_clipping_is_at_most_max_norm(seed: int, dtype: str, case: Any) -> None:
    convention, p = case
    g = make_grads(seed, dtype)
    n = norm64(g, p)
    M = draw_max_norm(seed, n)
    out, _ = clip_by_global_norm(g, M, norm_type=p, convention=convention)
    after = norm64(out, p)
    assert after <= M * (1 + RTOL[dtype])
    if convention == "optax" and n >= M:
        assert abs(after - M) <= RTOL[dtype] * M  # lands on the sphere ‖g‖ = M
    if convention == "torch" and n + EPS > M * (1 + RTOL[dtype]):
        assert abs(after - M * n / (n + EPS)) <= RTOL[dtype] * M  # just inside it


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES, case=st.sampled_from(CASES))
def test_direction_is_preserved(seed: int, dtype: str, case: Any) -> None:
    convention, p = case
    g = make_grads(seed, dtype)
    n = norm64(g, p)
    M = draw_max_norm(seed, n)
    out, norm = clip_by_global_norm(g, M, norm_type=p, convention=convention)
    flat_g = np.concatenate([x.reshape(-1) for x in as64(g).values()])
    flat_o = np.concatenate([x.reshape(-1) for x in as64(out).values()])
    c = float(flat_o @ flat_g / (flat_g @ flat_g))  # the one scalar, by least squares
    assert -RTOL[dtype] <= c <= 1 + RTOL[dtype]
    assert_agrees(out, {k: np.asarray(c * x, dtype) for k, x in as64(g).items()}, RTOL[dtype], "c·g")
    expected_c = min(1.0, M / (n + EPS)) if convention == "torch" else (1.0 if n < M else M / n)
    assert abs(c - expected_c) <= RTOL[dtype] * expected_c
    assert_same_norm(n, norm, RTOL[dtype], "pre-clip norm")


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES, gap=st.integers(-3, 1))
def test_identity_below_the_threshold(seed: int, dtype: str, gap: int) -> None:
    g = make_grads(seed, dtype)
    n = global_norm(g)  # in the gradients' dtype, as the clipping sees it
    M = (n + EPS) * (1 + 10.0**gap)
    for convention in ("torch", "optax"):
        out, _ = clip_by_global_norm(g, M, convention=convention)
        for k in g:  # bitwise equal
            assert out[k].dtype == g[k].dtype and np.array_equal(out[k], g[k]), convention


@SETTINGS
@given(seed=SEEDS)
def test_torch_shrinks_between_norm_and_norm_plus_eps(seed: int) -> None:
    g = make_grads(seed, "float64")
    n = global_norm(g)
    out, _ = clip_by_global_norm(g, n + EPS / 2, convention="torch")
    ratios = [o / x for o, x in zip(out.values(), g.values(), strict=True)]
    c = np.concatenate([r.reshape(-1) for r in ratios])
    assert np.all(c < 1) and np.all(c >= n / (n + EPS) * (1 - RTOL["float64"]))
    same, _ = clip_by_global_norm(g, n + EPS / 2, convention="optax")
    assert all(np.array_equal(same[k], g[k]) for k in g)


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES, case=st.sampled_from(CASES))
def test_clipping_twice(seed: int, dtype: str, case: Any) -> None:
    convention, p = case
    g = make_grads(seed, dtype)
    M = draw_max_norm(seed, norm64(g, p))
    once, _ = clip_by_global_norm(g, M, norm_type=p, convention=convention)
    twice, _ = clip_by_global_norm(once, M, norm_type=p, convention=convention)
    if convention == "optax":
        assert_agrees(once, twice, RTOL[dtype], "optax clipped twice")
        return
    lo = M / (M + EPS) * (1 - RTOL[dtype])
    for k in g:
        big = np.abs(once[k]) > 0
        c2 = twice[k][big].astype(np.float64) / once[k][big]
        assert np.all((c2 >= lo) & (c2 <= 1))


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES, nonfinite=st.booleans())
def test_input_is_never_mutated(seed: int, dtype: str, nonfinite: bool) -> None:
    g = make_grads(seed, dtype, nonfinite)
    kept = copy.deepcopy(g)
    M = draw_max_norm(seed, 1.0)
    outputs = [clip_by_value(g, M)]
    for convention, p in CASES:
        outputs.append(clip_by_global_norm(g, M, norm_type=p, convention=convention)[0])
        outputs.append(apply_clip(ClipSpec("global_norm", M, None, p, convention), g)[0])
    assert list(g) == list(kept)
    for k in g:
        assert np.array_equal(g[k], kept[k], equal_nan=True)
    for out in outputs:
        assert out is not g and list(out) == list(g)
        assert not any(np.shares_memory(out[k], g[k]) for k in g)


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES)
def test_clip_by_value(seed: int, dtype: str) -> None:
    g = make_grads(seed, dtype, nonfinite=True)
    finite = [np.abs(x[np.isfinite(x)]).max(initial=0.0) for x in g.values()]
    v = float(np.random.default_rng(seed + 2).uniform(0, 1.2) * max(finite))
    out = clip_by_value(g, v)
    vv = np.dtype(dtype).type(v)
    for k, x in g.items():
        o = out[k]
        assert o.dtype == x.dtype and o.shape == x.shape
        assert np.array_equal(np.isnan(o), np.isnan(x))
        inside = np.abs(x) <= vv
        assert np.array_equal(o[inside], x[inside])
        assert np.all(o[x > vv] == vv) and np.all(o[x < -vv] == -vv)


@SETTINGS
@given(seed=SEEDS, dtype=DTYPES, case=st.sampled_from(CASES), kind=st.sampled_from(["global_norm", "value"]))
def test_spec_round_trips_and_dispatches(seed: int, dtype: str, case: Any, kind: str) -> None:
    convention, p = case
    g = make_grads(seed, dtype)
    M = draw_max_norm(seed, norm64(g, p))
    if kind == "value":
        spec = ClipSpec("value", clip_value=M, norm_type=p, convention=convention)
        expected = (clip_by_value(g, M), global_norm(g, p))
    else:
        spec = ClipSpec("global_norm", max_norm=M, norm_type=p, convention=convention)
        expected = clip_by_global_norm(g, M, norm_type=p, convention=convention)
    assert ClipSpec.from_json(spec.to_json()) == spec
    out, norm = apply_clip(ClipSpec.from_json(spec.to_json()), g)
    assert norm == expected[1] and all(np.array_equal(out[k], expected[0][k]) for k in g)


# ---------------------------------------------------------------- pinned edges

# Pythagorean triples with ‖(a, b)‖ = c exactly, where (a / c) · c != a in that dtype.
TRIPLE = {"float64": (7.0, 24.0, 25.0), "float32": (15.0, 20.0, 25.0)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_scales_at_exactly_max_norm(dtype: str) -> None:
    g = {"w": np.array([3.0, 4.0], dtype=dtype)}
    out, norm = clip_by_global_norm(g, 5.0)
    assert norm == 5.0
    assert np.all(np.abs(out["w"]) < np.abs(g["w"]))  # torch-eps-at-threshold
    assert_agrees(out, {"w": g["w"] * np.dtype(dtype).type(5 / (5 + EPS))}, RTOL[dtype], "torch")
    big = {"w": np.array([30.0, 40.0])}  # torch is not idempotent: a second pass shrinks
    once, _ = clip_by_global_norm(big, 5.0)  # again, by 1 - eps (n - M) / (M n) here
    twice, _ = clip_by_global_norm(once, 5.0)
    assert np.all(np.abs(twice["w"]) < np.abs(once["w"]))
    assert_agrees(twice, {"w": once["w"] * (1 - EPS * 45 / 250)}, 1e-12, "twice")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optax_rescales_at_exactly_max_norm(dtype: str) -> None:
    a, b, c = TRIPLE[dtype]
    g = {"w": np.array([a, b], dtype=dtype)}
    out, norm = clip_by_global_norm(g, c, convention="optax")
    t = np.dtype(dtype).type
    assert norm == c
    assert np.array_equal(out["w"], (g["w"] / t(c)) * t(c))  # optax-strict-threshold
    assert not np.array_equal(out["w"], g["w"])
    below, _ = clip_by_global_norm(g, float(np.nextafter(t(c), t(np.inf))), convention="optax")
    assert np.array_equal(below["w"], g["w"])


def test_torch_eps_is_absorbed_in_float32_from_norm_32() -> None:
    out32, _ = clip_by_global_norm({"w": np.array([32.0], dtype=np.float32)}, 32.0)
    out64, _ = clip_by_global_norm({"w": np.array([32.0])}, 32.0)
    assert out32["w"][0] == 32.0 and out64["w"][0] < 32.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_max_norm(dtype: str) -> None:
    zeros = {"a": np.zeros((2, 3), dtype=dtype), "b": np.zeros((), dtype=dtype)}
    torch_out, norm = clip_by_global_norm(zeros, 0.0)
    assert norm == 0.0 and all(np.array_equal(x, np.zeros_like(x)) for x in torch_out.values())
    optax_out, _ = clip_by_global_norm(zeros, 0.0, convention="optax")
    assert all(np.all(np.isnan(x)) for x in optax_out.values())  # 0 / 0
    no_eps, _ = clip_by_global_norm(zeros, 0.0, eps=0.0)
    assert all(np.all(np.isnan(x)) for x in no_eps.values())
    ones = {"a": np.ones(3, dtype=dtype)}
    for convention in ("torch", "optax"):
        out, _ = clip_by_global_norm(ones, 0.0, convention=convention)
        assert np.array_equal(out["a"], np.zeros(3))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_infinite_gradients(case: Any, dtype: str) -> None:
    convention, p = case
    g = {"a": np.array([1.0, np.inf, -2.0], dtype=dtype), "b": np.array([-np.inf, 3.0], dtype=dtype)}
    out, norm = clip_by_global_norm(g, 1.0, norm_type=p, convention=convention)
    assert norm == math.inf
    for k in g:
        assert np.array_equal(np.isnan(out[k]), np.isinf(g[k]))
        assert np.all(out[k][np.isfinite(g[k])] == 0)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("other", [2.0, np.inf])
def test_nan_gradients_make_everything_nan(case: Any, other: float) -> None:
    convention, p = case
    g = {"a": np.array([1.0, np.nan, other]), "b": np.array(3.0, dtype=np.float32)}
    out, norm = clip_by_global_norm(g, 1.0, norm_type=p, convention=convention)
    assert math.isnan(norm) and all(np.all(np.isnan(x)) for x in out.values())


def test_float32_overflow_and_underflow() -> None:
    """Squares beyond float32's range do not make the norm inf, nor tiny ones 0 (more cases,
    against math.hypot and exact rationals: tests/test_ref_range.py)."""
    big = {"w": np.array([1e20, 2.0], dtype=np.float32)}
    out, norm = clip_by_global_norm(big, 1.0)
    assert norm == pytest.approx(1e20, rel=1e-7)
    np.testing.assert_allclose(out["w"], [1.0, 2e-20], rtol=1e-6)
    out64, norm64_ = clip_by_global_norm(as64(big), 1.0)
    assert norm64_ == pytest.approx(norm) and out64["w"][0] == pytest.approx(1.0)
    tiny = {"w": np.array([1e-30, -1e-30], dtype=np.float32)}
    assert global_norm(tiny) == pytest.approx(math.sqrt(2) * 1e-30, rel=1e-6)
    assert np.array_equal(clip_by_global_norm(tiny, 1.0)[0]["w"], tiny["w"])
    for convention in ("torch", "optax"):  # n > 0: no 0 / 0
        assert np.array_equal(clip_by_global_norm(tiny, 0.0, convention=convention)[0]["w"], [0.0, 0.0])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_error_if_nonfinite(case: Any, bad: float) -> None:
    convention, p = case
    g = {"a": np.array([1.0, bad]), "b": np.ones(2)}
    kept = copy.deepcopy(g)
    with pytest.raises(NonFiniteNormError, match="grads") as info:
        clip_by_global_norm(g, 1.0, norm_type=p, convention=convention, error_if_nonfinite=True)
    assert isinstance(info.value, ValueError)
    assert np.array_equal(g["a"], kept["a"], equal_nan=True)
    out, _ = clip_by_global_norm(g, 1.0, norm_type=p, convention=convention)
    assert np.all(np.isnan(out["b"])) if math.isnan(bad) else np.array_equal(out["b"], [0, 0])
    ok, _ = clip_by_global_norm({"b": np.ones(2)}, 1.0, error_if_nonfinite=True)
    assert np.all(np.isfinite(ok["b"]))


def test_empty_inputs() -> None:
    for convention in ("torch", "optax"):
        assert clip_by_global_norm({}, 0.0, convention=convention) == ({}, 0.0)
    assert global_norm({}, math.inf) == 0.0 and clip_by_value({}, 1.0) == {}
    g = {"a": np.zeros((0, 3)), "b": np.array([3.0, 4.0])}
    assert global_norm(g) == 5.0
    with pytest.raises(ValueError, match=r"grads\['a'\]"):
        global_norm(g, math.inf)


def test_clip_by_value_edges() -> None:
    g = {"w": np.array([np.nan, np.inf, -np.inf, -0.5, 2.0], dtype=np.float32)}
    out = clip_by_value(g, 1.0)["w"]
    assert np.isnan(out[0]) and np.array_equal(out[1:], [1.0, -1.0, -0.5, 1.0])
    assert np.array_equal(clip_by_value(g, 0.0)["w"][1:], np.zeros(4))


# ---------------------------------------------------------------- the real frameworks


def edge_cases(seeds: int) -> list[tuple[dict[str, np.ndarray], float]]:
    """`seeds` random cases per dtype, then every pinned edge (threshold, zero, inf, NaN, ...).

    Not here: the ends of the range ([1e20, 2] in float32, [1e-30, -1e-30] with M = 0), where
    the reference is right and torch and optax are not (docs/findings/range-ends.md)."""
    f32, f64 = np.float32, np.float64
    return [
        *[
            (make_grads(s, d), draw_max_norm(s, norm64(make_grads(s, d))))
            for s in range(seeds)
            for d in ("float32", "float64")
        ],
        ({"w": np.array([3.0, 4.0])}, 5.0),
        ({"w": np.array([15.0, 20.0], dtype=f32)}, 25.0),
        ({"w": np.array([20.0], dtype=f32)}, 20.0),
        ({"w": np.array([32.0], dtype=f32)}, 32.0),
        ({"a": np.zeros(3), "b": np.zeros((2, 2))}, 0.0),
        ({"a": np.array([1.0, np.inf], dtype=f64), "b": np.array([-2.0])}, 1.0),
        ({"a": np.array([1.0, np.nan], dtype=f32), "b": np.array([-2.0], dtype=f32)}, 1.0),
        ({"a": np.array([1.0, 2.0], dtype=f32), "b": np.array([3.0, -1.0])}, 1.0),
    ]


def tol(g: dict[str, np.ndarray]) -> float:
    return max(RTOL[x.dtype.name] for x in g.values())


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("p", [2.0, math.inf])
def test_matches_torch_clip_grad_norm(foreach: bool, p: float) -> None:
    torch = pytest.importorskip("torch")
    for g, M in edge_cases(seeds=6):
        params = [
            torch.nn.Parameter(torch.zeros(x.shape, dtype=getattr(torch, x.dtype.name))) for x in g.values()
        ]
        for param, x in zip(params, g.values(), strict=True):
            param.grad = torch.tensor(x.copy())
        norm = float(torch.nn.utils.clip_grad_norm_(params, M, norm_type=p, foreach=foreach))
        theirs = {k: q.grad.numpy().copy() for k, q in zip(g, params, strict=True)}
        ours, our_norm = clip_by_global_norm(g, M, norm_type=p)
        what = f"torch clip_grad_norm_(max_norm={M}, norm_type={p}, foreach={foreach}) on {g}"
        assert_agrees(theirs, ours, tol(g), what)
        assert_same_norm(norm, our_norm, tol(g), what)
        with torch.no_grad():
            for param, x in zip(params, g.values(), strict=True):
                param.grad = torch.tensor(x.copy())
        raised = False
        try:
            torch.nn.utils.clip_grad_norm_(params, M, p, error_if_nonfinite=True, foreach=foreach)
        except RuntimeError:
            raised = True
        assert raised == (not math.isfinite(our_norm)), what


@pytest.mark.parametrize("foreach", [True, False])
def test_matches_torch_clip_grad_value(foreach: bool) -> None:
    torch = pytest.importorskip("torch")
    for g, M in edge_cases(seeds=6):
        params = [torch.nn.Parameter(torch.tensor(x.copy())) for x in g.values()]
        for param, x in zip(params, g.values(), strict=True):
            param.grad = torch.tensor(x.copy())
        torch.nn.utils.clip_grad_value_(params, M / 2, foreach=foreach)
        theirs = {k: q.grad.numpy().copy() for k, q in zip(g, params, strict=True)}
        assert_agrees(theirs, clip_by_value(g, M / 2), 0.0, f"torch clip_grad_value_ on {g}")


def test_matches_optax() -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")

    def run(tree: Any, M: float) -> Any:
        tx = optax.clip_by_global_norm(M)
        updates, _ = tx.update(tree, tx.init(tree))
        return updates, optax.tree.norm(tree), optax.clip(M / 2).update(tree, None)[0]

    # Jitted, as optax runs in training; M static, a Python float as in a user's call.
    # (Eager dispatch compiles every primitive for every new shape: five times slower.)
    jitted = jax.jit(run, static_argnums=1)
    with jax.enable_x64(True):
        for g, M in edge_cases(seeds=3):
            updates, norm, clipped = jitted({k: jax.numpy.asarray(x) for k, x in g.items()}, M)
            ours, our_norm = clip_by_global_norm(g, M, convention="optax")
            what = f"optax.clip_by_global_norm({M}) on {g}"
            assert_agrees({k: np.asarray(x) for k, x in updates.items()}, ours, tol(g), what)
            assert_same_norm(float(norm), our_norm, tol(g), what)
            theirs = {k: np.asarray(x) for k, x in clipped.items()}
            assert_agrees(theirs, clip_by_value(g, M / 2), 0.0, f"optax.clip on {g}")


# ---------------------------------------------------------------- meta-tests


def clip_without_eps(g: dict[str, np.ndarray], M: float) -> dict[str, np.ndarray]:
    return clip_by_global_norm(g, M, eps=0.0)[0]


def clip_with_partial_norm(g: dict[str, np.ndarray], M: float) -> dict[str, np.ndarray]:
    n = global_norm(dict(list(g.items())[:-1]))  # forgets the last tensor
    return {k: x * x.dtype.type(min(1.0, M / (n + EPS))) for k, x in g.items()}


def clip_ignoring_nan(g: dict[str, np.ndarray], M: float) -> dict[str, np.ndarray]:
    if math.isnan(global_norm(g)):
        return {k: x.copy() for k, x in g.items()}
    return clip_by_global_norm(g, M)[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("wrong", "g", "M"),
    [
        (clip_without_eps, {"w": [3e-4, 4e-4]}, 5e-4),
        (clip_with_partial_norm, {"a": [1.0, 0.0], "b": [0.0, 10.0]}, 1.0),
        (clip_ignoring_nan, {"a": [1.0, np.nan], "b": [2.0]}, 1.0),
    ],
)
def test_a_wrong_clipping_is_detected(wrong: Any, g: dict[str, list[float]], M: float, dtype: str) -> None:
    grads = {k: np.array(v, dtype=dtype) for k, v in g.items()}
    reference, _ = clip_by_global_norm(grads, M)
    assert mismatches(reference, wrong(grads, M), RTOL[dtype]), wrong.__name__
    assert not mismatches(reference, clip_by_global_norm(grads, M)[0], RTOL[dtype])


# ---------------------------------------------------------------- bad input

ONE = {"w": np.ones(2)}


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda: clip_by_global_norm([np.ones(2)], 1.0), TypeError, "grads"),
        (lambda: clip_by_global_norm({"w": [1.0, 2.0]}, 1.0), TypeError, r"grads\['w'\]"),
        (lambda: clip_by_global_norm({"w": np.ones(2, dtype=int)}, 1.0), TypeError, r"grads\['w'\]"),
        (lambda: clip_by_global_norm({1: np.ones(2)}, 1.0), TypeError, "grads"),
        (lambda: clip_by_global_norm(ONE, -1.0), ValueError, "max_norm"),
        (lambda: clip_by_global_norm(ONE, math.nan), ValueError, "max_norm"),
        (lambda: clip_by_global_norm(ONE, math.inf), ValueError, "max_norm"),
        (lambda: clip_by_global_norm(ONE, 1.0, norm_type=1.0), ValueError, "norm_type"),
        (lambda: clip_by_global_norm(ONE, 1.0, norm_type=True), ValueError, "norm_type"),
        (
            lambda: clip_by_global_norm(ONE, 1.0, norm_type=math.inf, convention="optax"),
            ValueError,
            "norm_type",
        ),
        (lambda: clip_by_global_norm(ONE, 1.0, convention="keras"), ValueError, "convention"),
        (lambda: clip_by_global_norm(ONE, 1.0, eps=-1e-6), ValueError, "eps"),
        (lambda: clip_by_global_norm(ONE, 1.0, error_if_nonfinite=1), TypeError, "error_if_nonfinite"),
        (lambda: global_norm(ONE, 3.0), ValueError, "norm_type"),
        (lambda: clip_by_value(ONE, -0.5), ValueError, "clip_value"),
        (lambda: ClipSpec("norm", max_norm=1.0), ValueError, "kind"),
        (lambda: ClipSpec("global_norm"), TypeError, "max_norm"),
        (lambda: ClipSpec("value", max_norm=1.0, clip_value=1.0), ValueError, "max_norm"),
        (
            lambda: ClipSpec("global_norm", 1.0, norm_type=math.inf, convention="optax"),
            ValueError,
            "norm_type",
        ),
        (lambda: ClipSpec.from_json('{"kind": "value", "clip_value": 1, "foo": 2}'), ValueError, "spec"),
        (lambda: apply_clip("value", ONE), TypeError, "spec"),
    ],
)
def test_bad_input(call: Any, error: type[Exception], field: str) -> None:
    with pytest.raises(error, match=field):
        call()
