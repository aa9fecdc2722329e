"""Running error analysis by Monte Carlo arithmetic: how far can a correct implementation be?

A component's rounding module re-runs the reference's steps on `Uncertain` values: the
exact result `v` of each step (float64, from the float64 masters) and `d`, the
deviations of K simulated implementations in the dtype under test, shape (K, *v.shape).
Every operation propagates its operands' deviations exactly (in closed forms that do not
cancel: tanh(v + d) - tanh(v) = tanh(d) (1 - t²) / (1 + t tanh(d)), ...) and adds its own
rounding with a random sign per element and sample, at the most that operation can err
in the standard model (Higham, Accuracy and Stability of Numerical Algorithms, §2.2):

    a ± b, a · b, a / b       u |result|                  one rounding
    Σ_i^n t_i, A B            √n u Σ |t_i|,  √n u |A| |B|   n - 1 roundings of partial sums
                                                            of size <= Σ |t_i|, any order
    f(x)                      c_f ulps of |f(x)|           a library's elementary function
    below the smallest normal that number                   flush to zero (JAX on CPU), or half
                                                            the subnormals' spacing (float16)
    a float64 master          its actual rounding to the dtype (every implementation
                              starts from the same one)

`bound(x)` = λ · rms over the K samples. This is the probabilistic rounding error
analysis of Higham and Mary (SIAM J. Sci. Comput. 41, 2019): with rounding errors
independent and of mean zero, an output's error is a sum of independent bounded terms
whose variance the samples estimate, and Hoeffding's inequality puts it beyond λ
standard deviations with probability at most 2 exp(-λ²/2). An output reached by at most
λ² rounding contributions is bounded in the worst case too (|Σ c_j| <= √m ‖c‖₂). The
estimate follows the computation's real signs, so cancellations through layers, time
steps and SGD steps are not counted as worst cases compounded (a worst-case running
bound grows like ∏ |Wˡ| where the error grows like |∏ Wˡ|).

Branches (relu's kink, clipping's threshold, a maximum) are taken per sample at the
sample's own value; where the computed operand could lie on either side (within λ of
its rms deviation) every sample also carries the jump between the branches, with a
random sign, so the bound covers whichever an implementation takes. Values exactly
zero with no deviation (a kink case's zero rows) stay certain, so conventions at 0
are compared exactly. Constants: conformance.tolerances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from conformance.tolerances import ELEMENTARY_ULPS, PRECISIONS, SAMPLES, SIGMAS

Axis = int | tuple[int, ...] | None


class Uncertain(NamedTuple):
    v: np.ndarray  # the exact value, float64
    d: np.ndarray  # (K, *v.shape): each simulated implementation's value minus v


def _shift(axis: Axis, ndim: int) -> Axis:
    """An axis of v as an axis of d (one leading sample axis)."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, int):
        return (axis % ndim) + 1
    return tuple((a % ndim) + 1 for a in axis)


def _dev(x: Uncertain, ndim: int) -> np.ndarray:
    """x's deviations shaped to broadcast against values of `ndim` dimensions (NumPy aligns
    shapes on the right; the sample axis stays first)."""
    return x.d.reshape((x.d.shape[0], *([1] * (ndim - x.v.ndim)), *x.v.shape))


def rms(x: Uncertain) -> np.ndarray:
    """The root mean square of the deviations over the samples, v's shape. Scaled by the
    largest deviation first: squared, a float64 deviation below 1e-154 (a gradient that
    vanished to 1e-148 through 64 tanh steps) underflows to zero."""
    largest = np.max(np.abs(x.d), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(largest > 0, x.d / np.where(largest > 0, largest, 1.0), 0.0)
    return largest * np.sqrt(np.mean(scaled * scaled, axis=0))


class Arithmetic:
    """Monte Carlo arithmetic in one dtype (its unit roundoff and smallest normal)."""

    def __init__(self, dtype: str, samples: int = SAMPLES, seed: int = 0) -> None:
        precision = PRECISIONS[dtype]
        self.dtype = precision.numpy_dtype
        self.u = precision.unit_roundoff
        self.elementary_ulps = precision.elementary_ulps  # None: ELEMENTARY_ULPS per function
        self.tiny = precision.smallest_normal
        self.flushes = precision.flushes  # subnormal results may be flushed to 0
        self.subnormal = precision.subnormal_error  # a result below tiny: flushed, or rounded
        self.samples = samples
        self.rng = np.random.default_rng(seed)

    def bound(self, x: Uncertain) -> np.ndarray:
        """λ · rms deviation: the rounding bound of x in this dtype."""
        return SIGMAS * rms(x)

    # ------------------------------------------------------------ sources and local rounding

    def exact(self, x: np.ndarray | float) -> Uncertain:
        """A value every implementation holds exactly (0, 1, a power of two, labels)."""
        v = np.asarray(x, np.float64)
        return Uncertain(v, np.zeros((self.samples, *v.shape)))

    def rounded(self, x: np.ndarray | float) -> Uncertain:
        """A float64 master rounded to the dtype: its actual rounding error, the same for
        every implementation, and up to the smallest normal where it is subnormal and the
        dtype's subnormals may be flushed."""
        v = np.asarray(x, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            cast = np.asarray(v.astype(self.dtype), np.float64) - v
        cast = np.where(np.isfinite(cast), cast, 0.0)
        flushed = self.tiny * ((np.abs(v) < self.tiny) & (v != 0) & self.flushes)
        return Uncertain(v, cast + self._signs(v.shape) * flushed)

    def constant(self, c: float, roundings: int = 1) -> Uncertain:
        """A constant an implementation forms with up to `roundings` roundings (2 / (N C) as
        2 · (1/N) / C, a loss weight times a mean's 1/n, ...)."""
        v = np.asarray(c, np.float64)
        return Uncertain(v, self._local(np.abs(v), roundings))

    def _signs(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.integers(0, 2, size=(self.samples, *shape)) * 2.0 - 1.0

    def _local(self, size: np.ndarray, n: float = 1.0) -> np.ndarray:
        """n independent roundings of results of magnitude <= size, random signs:
        √n (u size + the subnormal error where anything nonzero may be flushed or is subnormal)."""
        size = np.asarray(size, np.float64)
        return np.sqrt(n) * (self.u * size + self.subnormal * (size > 0)) * self._signs(size.shape)

    def _out(self, v: np.ndarray, d: np.ndarray, size: np.ndarray, n: float = 1.0) -> Uncertain:
        return Uncertain(v, d + self._local(size, n))

    # ------------------------------------------------------------ arithmetic

    def add(self, a: Uncertain, b: Uncertain) -> Uncertain:
        v = a.v + b.v
        return self._out(v, _dev(a, v.ndim) + _dev(b, v.ndim), np.abs(v))

    def sub(self, a: Uncertain, b: Uncertain) -> Uncertain:
        return self.add(a, self.neg(b))

    def neg(self, a: Uncertain) -> Uncertain:
        return Uncertain(-a.v, -a.d)

    def mul(self, a: Uncertain, b: Uncertain) -> Uncertain:
        v = a.v * b.v
        da, db = _dev(a, v.ndim), _dev(b, v.ndim)
        return self._out(v, b.v * da + a.v * db + da * db, np.abs(v))

    def scale(self, a: Uncertain, c: float, roundings: int = 1) -> Uncertain:
        """a times the constant c, which the implementation forms with `roundings` roundings."""
        return self.mul(a, self.constant(c, roundings))

    def div(self, a: Uncertain, b: Uncertain) -> Uncertain:
        """a / b: (a + d_a)/(b + d_b) - a/b = (d_a - (a/b) d_b) / (b + d_b)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            v = a.v / b.v
            db = _dev(b, v.ndim)
            d = (_dev(a, v.ndim) - v * db) / (b.v + db)
        return self._out(v, d, np.abs(v))

    def sum(self, a: Uncertain, axis: Axis = None) -> Uncertain:
        """Σ over `axis`, in any order: √n u Σ |terms|."""
        n = a.v.size if axis is None else int(np.prod([a.v.shape[i] for i in np.atleast_1d(axis)]))
        size = np.sum(np.abs(a.v), axis=axis)
        return self._out(np.sum(a.v, axis=axis), np.sum(a.d, axis=_shift(axis, a.v.ndim)), size, n)

    def mean(self, a: Uncertain, axis: Axis = None) -> Uncertain:
        """Σ / n, or Σ · fl(1/n): the sum, then two roundings of the mean."""
        total = self.sum(a, axis)
        n = a.v.size / max(total.v.size, 1)
        v = total.v / n
        return self._out(v, total.d / n, np.abs(v), 2)

    def matmul(self, a: Uncertain, b: Uncertain) -> Uncertain:
        """a @ b for matrices or vectors, summing over the inner size n."""
        v = a.v @ b.v
        av, ad = (a.v[None, :], a.d[:, None, :]) if a.v.ndim == 1 else (a.v, a.d)
        bv, bd = (b.v[:, None], b.d[:, :, None]) if b.v.ndim == 1 else (b.v, b.d)
        d = (ad @ bv + av @ bd + ad @ bd).reshape((self.samples, *v.shape))
        return self._out(v, d, np.abs(a.v) @ np.abs(b.v), a.v.shape[-1])

    def affine(self, a: Uncertain, w: Uncertain, b: Uncertain) -> Uncertain:
        """a @ wᵀ + b as one sum of n + 1 terms (a library may start from b or end with it)."""
        return self.linear_sum([(a, w)], [b])

    def linear_sum(self, products: list[tuple[Uncertain, Uncertain]], terms: list[Uncertain]) -> Uncertain:
        """Σ_k a_k @ w_kᵀ + Σ_j t_j as ONE sum, in whatever order and grouping an
        implementation takes (an RNN step's x W_ihᵀ + b_ih + h W_hhᵀ + b_hh, say); a_k are
        batches of rows (N, n_k), w_k matrices (m, n_k)."""
        n = sum(a.v.shape[-1] for a, _ in products) + len(terms)
        wt = [(a, self.transpose(w)) for a, w in products]
        v: np.ndarray = sum((t.v for t in terms), np.zeros(())) + sum(a.v @ w.v for a, w in wt)
        size = sum(np.abs(t.v) for t in terms) + sum(np.abs(a.v) @ np.abs(w.v) for a, w in wt)
        d = sum(_dev(t, v.ndim) for t in terms) + sum(a.d @ w.v + a.v @ w.d + a.d @ w.d for a, w in wt)
        return self._out(v, d, size, n)

    def norm2(self, a: Uncertain, axis: Axis = None) -> Uncertain:
        """‖a‖₂ = √(Σ a²) over `axis`, n terms each.

        A square below the smallest normal number underflows (or is flushed to zero) in an
        implementation that sums squares, and not in one that scales first (torch's
        vector_norm of 9.1e-164 is 9.1e-164, NumPy's norm 0): the two differ by up to
        √(n tiny), which the first-order propagation through √ cannot see where Σ a² is
        itself that small. Every sample deviates by that much more, with a random sign:
        √tiny is 1.1e-19 in float32 and 1.5e-154 in float64."""
        root = self.sqrt(self.sum(self.mul(a, a), axis=axis))
        n = a.v.size / max(root.v.size, 1)
        return Uncertain(root.v, root.d + np.sqrt(n * self.tiny) * self._signs(root.v.shape))

    def transpose(self, a: Uncertain) -> Uncertain:
        """The transpose of a matrix (a vector or a scalar unchanged)."""
        if a.v.ndim < 2:
            return a
        return Uncertain(a.v.T, np.swapaxes(a.d, -1, -2))

    def reshape(self, a: Uncertain, shape: tuple[int, ...]) -> Uncertain:
        return Uncertain(a.v.reshape(shape), a.d.reshape((self.samples, *shape)))

    def take(self, a: Uncertain, index: tuple[object, ...] | int | slice) -> Uncertain:
        """a[index] (an index of v)."""
        key = index if isinstance(index, tuple) else (index,)
        return Uncertain(a.v[key], a.d[(slice(None), *key)])  # type: ignore[index, arg-type]

    def stack(self, parts: list[Uncertain]) -> Uncertain:
        return Uncertain(np.stack([p.v for p in parts]), np.stack([p.d for p in parts], axis=1))

    def where(self, mask: np.ndarray, a: Uncertain, b: Uncertain) -> Uncertain:
        """a where the exact boolean mask holds, else b (a padded step's carry, say): no rounding."""
        v = np.where(mask, a.v, b.v)
        return Uncertain(v, np.where(mask, _dev(a, v.ndim), _dev(b, v.ndim)))

    def scatter(self, rows: Uncertain, mask: np.ndarray, width: int) -> Uncertain:
        """(mask.size, width) with `rows` (mask.sum(), width) at the rows the flat mask holds, 0
        (exact) elsewhere: values computed on the valid rows put back in place."""
        v = np.zeros((mask.size, width))
        d = np.zeros((self.samples, mask.size, width))
        v[mask], d[:, mask] = rows.v, rows.d
        return Uncertain(v, d)

    def concatenate(self, parts: list[Uncertain]) -> Uncertain:
        """The parts flattened and concatenated, as one vector."""
        return Uncertain(
            np.concatenate([p.v.reshape(-1) for p in parts]),
            np.concatenate([p.d.reshape(self.samples, -1) for p in parts], axis=1),
        )

    def clamp(self, x: Uncertain, limit: Uncertain) -> Uncertain:
        """clamp(x, -limit, limit), exact: each sample at its own x and limit."""
        exact = np.clip(x.v, -limit.v, limit.v)
        sample_limit = limit.v + _dev(limit, exact.ndim)
        return Uncertain(exact, np.clip(x.v + _dev(x, exact.ndim), -sample_limit, sample_limit) - exact)

    def within(self, x: Uncertain, low: float = -np.inf, high: float = np.inf) -> Uncertain:
        """x with every sample held in [low, high], where every implementation's value lies
        (rounding is monotone: x - max x stays <= 0 however it rounds). Where deviations are as
        large as the values (low precision, logit gaps of 1e6) the random-sign model would
        otherwise take a sample across, and exp or log of it out of range."""
        return Uncertain(x.v, np.clip(x.v + x.d, low, high) - x.v)

    def max(self, a: Uncertain, axis: int, keepdims: bool = False) -> Uncertain:
        """max over an axis, exact: each sample's maximum of its own values."""
        v = np.max(a.v, axis=axis, keepdims=keepdims)
        shifted = _shift(axis, a.v.ndim)
        return Uncertain(v, np.max(a.v + a.d, axis=shifted, keepdims=keepdims) - v)

    # ------------------------------------------------------------ elementary functions

    def _elementary(
        self,
        name: str,
        x: Uncertain,
        value: np.ndarray,
        change: Callable[[np.ndarray], np.ndarray],
        size: np.ndarray | None = None,
    ) -> Uncertain:
        """f(x): the exact change f(x + d) - f(x) (none where d = 0), and c_f ulps (2 u each)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            d = np.where(x.d == 0, 0.0, change(x.d))
        ulps = self.elementary_ulps or ELEMENTARY_ULPS[name]
        return self._out(value, d, np.abs(value) if size is None else size, (2 * ulps) ** 2)

    def tanh(self, x: Uncertain) -> Uncertain:
        t = np.tanh(x.v)
        return self._elementary("tanh", x, t, lambda d: np.tanh(d) * (1 - t * t) / (1 + t * np.tanh(d)))

    def sigmoid(self, x: Uncertain) -> Uncertain:
        """σ(x) = (1 + tanh(x/2)) / 2. Its rounding is counted in ulps of max(σ, 1 - σ): a
        library may form it as (1 + tanh(x/2)) / 2, whose error near σ = 0 is that of 1/2."""
        t = np.tanh(x.v / 2)
        value = (1 + t) / 2

        def change(d: np.ndarray) -> np.ndarray:
            return np.tanh(d / 2) * (1 - t * t) / (1 + t * np.tanh(d / 2)) / 2

        return self._elementary("sigmoid", x, value, change, np.maximum(value, 1 - value))

    def exp(self, x: Uncertain) -> Uncertain:
        # e expm1(d) is accurate for small d, but overflows for d > 709 even where e(x + d) does
        # not (e = 1e-304, d = 720: bfloat16 logits of 6e3 move by hundreds), and is 0 · inf where
        # e underflowed: there the difference of the two exponentials serves
        e = np.exp(x.v)
        return self._elementary(
            "exp", x, e, lambda d: np.where((e == 0) | (d > 1), np.exp(x.v + d) - e, e * np.expm1(d))
        )

    def log(self, x: Uncertain) -> Uncertain:
        # a deviation that takes a sample to or below 0 (a low-precision sum of exponentials
        # losing its one term of 1) is counted as a sample at the dtype's smallest normal
        return self._elementary(
            "log",
            x,
            np.log(x.v),
            lambda d: np.where(
                x.v + d > 0, np.log1p(np.maximum(d / x.v, -1.0)), np.log(self.tiny) - np.log(x.v)
            ),
        )

    def sqrt(self, x: Uncertain) -> Uncertain:
        r = np.sqrt(x.v)
        return self._elementary("sqrt", x, r, lambda d: d / (np.sqrt(np.maximum(x.v + d, 0)) + r))

    def rsqrt(self, x: Uncertain) -> Uncertain:
        """1/√x (one function, or 1 / √x)."""
        r = np.sqrt(x.v)

        def change(d: np.ndarray) -> np.ndarray:
            moved = np.sqrt(x.v + d)
            return -d / (r * moved * (r + moved))

        return self._elementary("sqrt", x, 1 / r, change)

    def function(
        self, name: str, x: Uncertain, f: Callable[[np.ndarray], np.ndarray], size: np.ndarray
    ) -> Uncertain:
        """f(x) for a function a library composes from a few elementary ones and products (GELU,
        SiLU, softplus and their derivatives): the exact change f(x + d) - f(x), and c_f ulps of
        `size`, the magnitude of the terms the library's formula adds (where they cancel, as in
        1 - σ or 1 + erf, its error is relative to them, not to the result)."""
        value = f(x.v)
        return self._elementary(name, x, value, lambda d: f(x.v + d) - value, size)

    # ------------------------------------------------------------ branches

    def uncertain(self, x: Uncertain, threshold: float | np.ndarray = 0.0) -> np.ndarray:
        """Where an implementation's x may lie on either side of `threshold` (or on it):
        within λ rms deviations of it, the deviations not all zero."""
        spread = rms(x)
        return (spread > 0) & (np.abs(x.v - threshold) <= SIGMAS * spread)

    def select(
        self,
        x: Uncertain,
        above: Uncertain,
        below: Uncertain,
        at: Uncertain,
        threshold: float | np.ndarray = 0.0,
    ) -> Uncertain:
        """`above` where x > threshold, `below` where x < threshold, `at` where equal, taken
        per sample at the sample's own x; where the side is uncertain every sample also
        carries the jump between the branches with a random sign."""
        exact = np.where(x.v > threshold, above.v, np.where(x.v < threshold, below.v, at.v))
        n = exact.ndim
        sample = x.v + _dev(x, n)
        value = {name: b.v + _dev(b, n) for name, b in (("above", above), ("below", below), ("at", at))}
        d = (
            np.where(
                sample > threshold, value["above"], np.where(sample < threshold, value["below"], value["at"])
            )
            - exact
        )
        jump = np.where(self.uncertain(x, threshold), np.abs(above.v - below.v), 0.0)
        return Uncertain(exact, d + jump * self._signs(exact.shape))
