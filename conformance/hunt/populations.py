"""Population drawers: what the fast lane runs, and the one place to widen the search.

A drawer serves a family of components whose cases it can build from a spec, a shape
and a seed. It gives

* `buckets(component)`: a bounded set of architectures (spec, shape, mode). The set is
  fixed, not drawn from the hunt's seed, so each compiled program (one per bucket, dtype
  and framework) is reused through the hunt and, by JAX's persistent cache, across hunts;
* `population(bucket, seeds, regime)`: one case per seed, all of the bucket's shapes,
  their values drawn from each seed and then passed through a value regime;
* `shrink(case)`: smaller cases for minimization (`conformance.hunt.minimize`).

Widening the search is data here: a new bucket (a layout, a size) joins its drawer's
tuple; a new value regime (extreme magnitudes, near-kink inputs, ...) joins `REGIMES`, a
function from a case to a case (rounds take the regimes in turn); a new dtype needs only to
be one the suite accepts (`--dtypes`: float16 and bfloat16 included). A new component joins
the fast lane with a drawer in `DRAWERS` and a population runner per framework
(`conformance.hunt.torch_populations`, `jax_populations`); without them it is still hunted,
case by case, in the property lane.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from conformance.case import Case
from conformance.components.activations.strategies import OUTPUTS, activation_case, component_name
from conformance.components.mlp.strategies import mlp_case
from conformance.components.mlp_bn.strategies import bn_case
from conformance.components.rnn.strategies import Shape, rnn_case
from conformance.hunt.shrink import shrink_mlp, shrink_rnn
from conformance.strategies import LOGIT_SCALES, extreme_scale, scaled
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec
from refimpl.smooth import NAMES as SMOOTH


@dataclass(frozen=True)
class Bucket:
    """One architecture of the fast lane: every member of a population shares it."""

    component: str
    spec: Any  # float64, the default conventions (each framework's are set per run)
    shape: tuple[tuple[str, int], ...]  # ("N", 4) or ("T", 12), ("N", 3)
    train: bool = True

    def label(self) -> str:
        sizes = getattr(self.spec, "sizes", None)
        if sizes is not None:
            arch = "-".join(map(str, sizes)) + f" {self.spec.hidden_activation}/{self.spec.output_activation}"
        else:
            s = self.spec
            arch = f"D{s.input_size} H{s.hidden_size} C{s.output_size} {s.nonlinearity}/{s.readout}"
            arch += f" k={s.truncation}" if s.truncation else ""
        dims = " ".join(f"{k}={v}" for k, v in self.shape)
        return f"{self.component} {arch} {self.spec.loss} {dims}" + ("" if self.train else " eval")

    def width(self) -> int:
        """The widest layer: the reference's block-diagonal cost grows with its square."""
        sizes = getattr(self.spec, "sizes", None)
        if sizes is not None:
            return max(sizes)
        return max(self.spec.input_size, self.spec.hidden_size, self.spec.output_size)


@dataclass
class Population:
    bucket: Bucket
    cases: list[Case] = field(default_factory=list)  # float64 masters, one per member
    _stacked: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.cases)

    def stacked(self, group: str, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """{name: (P, ...)} of one group of every member ("params", "inputs", "state"), stacked once."""
        if group not in self._stacked:
            names = list(getattr(self.cases[0], group))
            self._stacked[group] = {k: np.stack([getattr(c, group)[k] for c in self.cases]) for k in names}
        arrays = self._stacked[group]
        return dict(arrays) if keys is None else {k: arrays[k] for k in keys}


# A value regime maps a freshly drawn case to the case the hunt runs. "standard" keeps the
# strategies' values; add entries (extreme magnitudes, inputs near a kink, ...) to widen it.
# One population runs in every dtype of its task, so a regime's factors are those every dtype
# holds (conformance.strategies' extreme values, at float16's scale): cross-entropy logits of
# 3e3, tanh and sigmoid units saturated by first-layer weights times 100; a case the regime
# does not fit (an mse loss, a relu layer) is left as drawn. The property lane draws each
# dtype's own extremes (extreme-agreement).
Regime = Callable[[Case], Case]


def _readout(case: Case) -> tuple[str, str]:
    if case.component.startswith("rnn"):
        return "W_out", "b_out"
    depth = len(case.spec.sizes) - 1
    return f"W{depth}", f"b{depth}"


def _logits(case: Case) -> Case:
    if case.spec.loss != "cross_entropy":
        return case
    return replace(case, params=scaled(case.params, _readout(case), LOGIT_SCALES["float16"][0]))


def _saturated(case: Case) -> Case:
    if case.component.startswith("rnn"):
        names: tuple[str, ...]
        first, names = case.spec.nonlinearity, ("W_ih",)
    else:  # after batch norm the first layer's scale cancels
        first, names = case.spec.activation(1), (() if case.spec.batchnorm else ("W1",))
    if first not in ("tanh", "sigmoid"):
        return case
    return replace(case, params=scaled(case.params, names, extreme_scale("saturated", "float16")))


REGIMES: dict[str, Regime] = {"standard": lambda case: case, "logits": _logits, "saturated": _saturated}


class Drawer(Protocol):
    @property
    def components(self) -> tuple[str, ...]: ...

    def buckets(self, component: str) -> tuple[Bucket, ...]: ...

    def population(self, bucket: Bucket, seeds: Sequence[int], regime: str = "standard") -> Population: ...

    def shrink(self, case: Case) -> Iterator[Case]: ...


def _grid(
    rng: np.random.Generator, count: int, make: Callable[[np.random.Generator], Bucket | None]
) -> tuple[Bucket, ...]:
    found: list[Bucket] = []
    while len(found) < count:
        bucket = make(rng)
        if bucket is not None and bucket not in found:
            found.append(bucket)
    return tuple(found)


ACTS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
WIDTHS = (1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 48, 64)


def _mlp_bucket(rng: np.random.Generator) -> Bucket:
    depth = int(rng.integers(1, 5))
    sizes = tuple(int(w) for w in rng.choice(WIDTHS, depth + 1))
    spec = MLPSpec(
        sizes,
        str(rng.choice(ACTS)),
        str(rng.choice(ACTS)),
        str(rng.choice(("mse", "cross_entropy"))),
        slope=float(rng.choice((0.01, 0.2))),
    )
    return Bucket("mlp", spec, (("N", int(rng.choice((1, 2, 3, 4, 8, 16)))),))


def _activation_bucket(activation: str) -> Callable[[np.random.Generator], Bucket]:
    """The MLP with `activation` in its hidden layers (in the output layer too without one),
    ELU's α and softplus's β either at 1 or where the two sides of 0 (the switch) differ."""

    def make(rng: np.random.Generator) -> Bucket:
        depth = int(rng.integers(1, 4))
        sizes = tuple(int(w) for w in rng.choice(WIDTHS, depth + 1))
        output = str(rng.choice(OUTPUTS)) if depth > 1 else activation
        spec = MLPSpec(
            sizes,
            activation,
            output,
            str(rng.choice(("mse", "cross_entropy"))),
            elu_alpha=float(rng.choice((1.0, 1.5))),
            softplus_beta=float(rng.choice((1.0, 2.0))),
        )
        if activation != "elu":
            spec = replace(spec, elu_alpha=1.0)
        if activation != "softplus":
            spec = replace(spec, softplus_beta=1.0)
        return Bucket(component_name(activation), spec, (("N", int(rng.choice((1, 2, 3, 4, 8, 16)))),))

    return make


def _bn_bucket(rng: np.random.Generator) -> Bucket | None:
    depth = int(rng.integers(2, 5))
    hidden = (3, 5, 8, 16, 32) if depth == 2 else (5, 8, 16, 32)  # strategies.bn_specs: why
    acts = ACTS if depth == 2 else ("tanh", "sigmoid")
    sizes = (
        int(rng.choice((2, 3, 5, 8))),
        *(int(w) for w in rng.choice(hidden, depth - 1)),
        int(rng.choice((1, 2, 3, 5))),
    )
    spec = MLPSpec(
        sizes,
        str(rng.choice(acts)),
        str(rng.choice(ACTS)),
        str(rng.choice(("mse", "cross_entropy"))),
        batchnorm=True,
    )
    return Bucket("mlp_bn", spec, (("N", int(rng.choice((3, 4, 8, 16)))),), train=bool(rng.random() < 0.8))


def _rnn_bucket(component: str) -> Callable[[np.random.Generator], Bucket]:
    def make(rng: np.random.Generator) -> Bucket:
        T = int(rng.choice((1, 2, 5, 12, 32, 64)))
        k = int(rng.integers(1, T + 2)) if component == "rnn_truncated" else None
        spec = RNNSpec(
            int(rng.integers(1, 6)),
            int(rng.choice((1, 3, 6, 16, 32))),
            int(rng.integers(2, 5)),
            str(rng.choice(("tanh", "relu"))),
            str(rng.choice(("last", "every"))),
            str(rng.choice(("mse", "cross_entropy"))),
            truncation=k,
        )
        return Bucket(component, spec, (("T", T), ("N", int(rng.integers(1, 5)))))

    return make


# Sizes across vector widths (conformance.layouts.VECTOR_WIDTHS): widths and batches one
# off a register's multiple, so a kernel's vectorized body and its scalar tail both run, and
# a single example. Up to 65 wide: the reference's block-diagonal call holds 256 units, so
# 127 to 129 (a member to a block) is left to the property lane's size-agreement.
# fmt: off
WIDE_BUCKETS: dict[str, tuple[Bucket, ...]] = {
    "mlp": (
        Bucket("mlp", MLPSpec((9, 65, 17), "tanh", "identity", "mse"), (("N", 33),)),
        Bucket("mlp", MLPSpec((17, 33, 63, 3), "relu", "identity", "cross_entropy"), (("N", 1),)),
        Bucket("mlp", MLPSpec((63, 7, 1), "sigmoid", "sigmoid", "mse"), (("N", 65),)),
        Bucket("mlp", MLPSpec((15, 31, 8), "leaky_relu", "identity", "cross_entropy"), (("N", 9),)),
    ),
    "mlp_bn": (
        Bucket("mlp_bn", MLPSpec((17, 33, 3), "tanh", "identity", "mse", batchnorm=True), (("N", 9),)),
        Bucket("mlp_bn", MLPSpec((7, 65, 15, 2), "tanh", "identity", "cross_entropy", batchnorm=True),
               (("N", 17),)),
    ),
    "rnn": (
        Bucket("rnn", RNNSpec(33, 17, 9, "tanh", "every", "cross_entropy"), (("T", 3), ("N", 1))),
        Bucket("rnn", RNNSpec(7, 65, 3, "relu", "last", "mse"), (("T", 9), ("N", 17))),
    ),
}
# fmt: on


class MLPDrawer:
    """The MLP with and without batch norm (strategies.mlp_case, strategies.bn_case) and with
    each smooth activation (activations.strategies.activation_case)."""

    components = ("mlp", "mlp_bn", *(component_name(a) for a in SMOOTH))
    _buckets: ClassVar[dict[str, tuple[Bucket, ...]]] = {
        "mlp": _grid(np.random.default_rng(16), 48, _mlp_bucket) + WIDE_BUCKETS["mlp"],
        "mlp_bn": _grid(np.random.default_rng(17), 16, _bn_bucket) + WIDE_BUCKETS["mlp_bn"],
        **{
            component_name(a): _grid(np.random.default_rng([20, i]), 8, _activation_bucket(a))
            for i, a in enumerate(SMOOTH)
        },
    }

    def buckets(self, component: str) -> tuple[Bucket, ...]:
        return self._buckets[component]

    def population(self, bucket: Bucket, seeds: Sequence[int], regime: str = "standard") -> Population:
        N = dict(bucket.shape)["N"]
        if bucket.component == "mlp":
            cases = [mlp_case(bucket.spec, N, s) for s in seeds]
        elif bucket.component == "mlp_bn":
            cases = [bn_case(bucket.spec, N, s, train=bucket.train) for s in seeds]
        else:
            cases = [activation_case(bucket.spec, N, s) for s in seeds]
        return Population(bucket, [REGIMES[regime](c) for c in cases])

    def shrink(self, case: Case) -> Iterator[Case]:
        return shrink_mlp(case)


class RNNDrawer:
    """The Elman RNN, full and truncated BPTT (strategies.rnn_case)."""

    components = ("rnn", "rnn_truncated")
    _buckets: ClassVar[dict[str, tuple[Bucket, ...]]] = {
        "rnn": _grid(np.random.default_rng(18), 16, _rnn_bucket("rnn")) + WIDE_BUCKETS["rnn"],
        "rnn_truncated": _grid(np.random.default_rng(19), 8, _rnn_bucket("rnn_truncated")),
    }

    def buckets(self, component: str) -> tuple[Bucket, ...]:
        return self._buckets[component]

    def population(self, bucket: Bucket, seeds: Sequence[int], regime: str = "standard") -> Population:
        shape = Shape(bucket.spec, dict(bucket.shape)["T"], dict(bucket.shape)["N"])
        return Population(bucket, [REGIMES[regime](rnn_case(shape, s, bucket.component)) for s in seeds])

    def shrink(self, case: Case) -> Iterator[Case]:
        return shrink_rnn(case)


DRAWERS: tuple[Drawer, ...] = (MLPDrawer(), RNNDrawer())


def drawer_of(component: str) -> Drawer | None:
    for drawer in DRAWERS:
        if component in drawer.components:
            return drawer
    return None
