"""nonfinite-isolation: a NaN or ±inf in one example leaves every other example alone.

The examples of a batch share no arithmetic in an MLP or an RNN until the loss takes
its mean, and <u, Y> (a random upstream gradient on the outputs) takes none. So for
every example m ≠ n, with X[n] holding NaN, inf or -inf at one entry,

    Y[m](X with the poison) = Y[m](X),    ∂<u, Y>/∂X[m] and ∂<u, Y>/∂h0[m] the same,

wherever the math is defined: the answer is the framework's own on the clean batch,
within the rounding bound. A kernel that mixes rows leaks the poison (a batch-wide
sum, a blocked product that multiplies one row's padding by another's value:
0 · NaN = NaN, a reduction for the loss that runs before the rows are done). The
poisoned example's own values and the parameters' gradients (sums over every
example) are NaN or ±inf and not compared. Frameworks only: the reference refuses
non-finite input (refimpl's validation), and its rows are independent by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from conformance.backend import Backend, Outcome
from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.compare import Context
from conformance.component import Property
from conformance.paths import Batching, agree_outcomes, with_meta
from conformance.profiles import Profile
from conformance.properties import upstream

POISONS = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def poisoned(case: Case, axis: int) -> Case:
    """X with the value meta["poison"] names at the first entry of example meta["example"]
    (step 0 of a sequence, so an RNN carries it through every step)."""
    X = np.array(case.inputs["X"], np.float64)
    index = [0] * X.ndim
    index[axis] = case.meta["example"]
    X[tuple(index)] = POISONS[case.meta["poison"]]
    return replace(case, inputs={**case.inputs, "X": X})


def nonfinite_isolation(batching: Batching) -> Property:
    def check(ctx: Context, backend: Backend) -> None:
        case, axes = ctx.case, batching.axes(ctx.case)
        others = [m for m in range(batching.size(case)) if m != case.meta["example"]]
        if not others:
            raise ValueError("nonfinite-isolation: needs a batch of 2 examples or more, received 1")

        def rows(arrays: Arrays) -> Arrays:
            return {k: np.take(np.asarray(v), others, axis=axes[k]) for k, v in arrays.items() if k in axes}

        def other_rows(o: Outcome) -> Outcome:
            return Outcome(rows(o.outputs), rows(o.grads), {})

        cot = upstream(case)
        _, bound = reference_and_bound(ctx.component, case, cot)
        clean, dirty = backend.run(case, cot), backend.run(poisoned(case, axes["X"]), cot)
        label = f"{case.meta['poison']} in example {case.meta['example']}, examples {others}:"
        agree_outcomes(ctx, other_rows(dirty), other_rows(clean), other_rows(bound), label)

    return Property("nonfinite-isolation", check, frameworks_only=True, low_precision=True)


@st.composite
def isolation_cases(
    draw: st.DrawFn, profile: Profile, cases: Callable[[Profile], st.SearchStrategy[Case]], batching: Batching
) -> Case:
    """A case of 2 examples or more from `cases`, with the example and the value to poison."""
    case = draw(cases(profile))
    N = batching.size(case)
    assume(N >= 2)
    return with_meta(case, example=draw(st.integers(0, N - 1)), poison=draw(st.sampled_from(tuple(POISONS))))
