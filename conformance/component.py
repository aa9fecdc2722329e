"""What a component is: one record that tells the suite everything it needs about it.

A component is a unit of the matrix (the MLP, the batch-normalized MLP, the RNN with
full or truncated BPTT, clipping, training trajectories). Its folder
`conformance/components/<name>/` holds the reference runner, the strategies, its own
properties, one adapter module per framework and a one-line test module; its package
exports the `Component` records (a folder may hold variants, such as the truncated RNN),
and `conformance.registry` lists the packages.

A property is a check with a stable id, written once as a function of a Context (which
case, component, framework, dtype) and a Backend. A `Check` binds a property to the
strategy that draws its cases; the record's checks become its tests, one report row per
(property, framework, dtype, device).
"""

from __future__ import annotations

import builtins
import unittest
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from conformance.backend import Outcome
from conformance.case import Arrays, Case
from conformance.dtypes import LOW_PRECISION
from conformance.profiles import Profile

if TYPE_CHECKING:
    from conformance.backend import Backend
    from conformance.compare import Context


class NotApplicable(unittest.SkipTest):
    """The property does not apply to this case, framework or dtype (reported as a skip). A
    unittest.SkipTest, which hypothesis lets through at once: a case that does not apply is
    not shrunk like a failure (a hundred draws for nothing)."""


@dataclass(frozen=True)
class Property:
    """A check with a stable id (reports, known issues and reproducers refer to it)."""

    id: str
    check: Callable[[Context, Backend], None]
    frameworks_only: bool = False  # the reference would only be compared with itself
    float64_only: bool = False  # finite differences lose every digit in lower precision
    float64_why: str = "finite differences lose all digits in {dtype}"  # the skip's reason
    # Rows in float16 and bfloat16: the properties that compare with the float64 reference under
    # the per-entry bound. An identity inside one framework holds to n ε Σ|terms|, which is of
    # the order of the terms themselves in float16 at the suite's sizes: it would check nothing.
    low_precision: bool = False

    def not_applicable(self, framework: str, dtype: str, reference: str = "numpy") -> str | None:
        if self.frameworks_only and framework == reference:
            return f"{self.id}: the NumPy reference is the oracle here, not a subject"
        if self.float64_only and dtype != "float64":
            return f"{self.id}: needs float64 ({self.float64_why.format(dtype=dtype)})"
        if dtype in LOW_PRECISION and not self.low_precision:
            return f"{self.id}: float32 and float64 only (an identity in {dtype} holds to n ε, about 1)"
        return None


Cases = Callable[[Profile], st.SearchStrategy[Case]]


@dataclass(frozen=True)
class Check:
    """A property bound to the strategy that draws its cases (given the run's profile)."""

    property: Property
    cases: Cases
    name: str = ""  # the test's name, test_<name>; default: the property id

    @builtins.property  # the field `property` hides the builtin in this class's body
    def test_name(self) -> str:
        return "test_" + (self.name or self.property.id).replace("-", "_")


@dataclass(frozen=True)
class Boundary:
    """The cases `python -m conformance stress` runs for a component: shapes at the edges
    (1-element tensors, width 1, N = 1..4, vanished gradients, deep batch-norm chains), many
    seeds each, so a compiled function serves every seed of its shape."""

    shapes: tuple[Any, ...]  # whatever `case` takes: a spec with its sizes, a plan, a layout
    case: Callable[[Any, int], Case]  # (shape, seed) -> a case
    properties: tuple[Property, ...]  # the agreement properties to check on each case


@dataclass(frozen=True)
class Component:
    name: str
    spec_class: type[Any]  # a frozen dataclass with to_json / from_json
    inputs: tuple[str, ...]  # differentiable inputs: gradients are reported for these
    outputs: tuple[str, ...]
    reference: Callable[[Case, Arrays | None], Outcome]  # refimpl answering the backend contract
    golden_case: Callable[[int], Case]  # seed -> a deterministic case, for the golden set
    checks: tuple[Check, ...] = ()
    # framework -> module path of its adapter, imported only when that framework runs
    adapters: Mapping[str, str] = field(default_factory=dict)
    # the reference's contract answered with rounding bounds: for every output, gradient and
    # state entry, the most a correct implementation in case.spec.dtype can differ from the
    # exact result (conformance.rounding); None: the table's sampled fallback bound
    rounding: Callable[[Case, Arrays | None], Outcome] | None = None
    boundary: Boundary | None = None  # the stress command's cases; None: not stressed

    def property(self, property_id: str) -> Property:
        for check in self.checks:
            if check.property.id == property_id:
                return check.property
        known = sorted({c.property.id for c in self.checks})
        raise ValueError(
            f"property: expected one of {known} for component {self.name!r}, received {property_id!r}"
        )
