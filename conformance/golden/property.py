"""The property "golden-agreement": every implementation against the stored golden values.

The float64 reference (the numpy float64 row) must reproduce its stored values within a
few float64 roundings (storage.reproduce_allowed); a framework, and the reference's own
float32 run, are held to the suite's tolerance table: the component's rounding bound on
the golden case (the stored float32 reference's difference, sampled, for a component
without a rounding module). The variant compared with is the one of the spec as the framework
runs it (its conventions applied), never a fresh recomputation.
"""

from __future__ import annotations

import json

import numpy as np

from conformance import record
from conformance.backend import Backend
from conformance.case import Arrays, Case
from conformance.compare import ConformanceFailure, Context, assert_agree, fail, observe
from conformance.component import Component, Property
from conformance.golden.storage import (
    KIND,
    GoldenDataError,
    _group,
    _prefixed,
    changed_fields,
    read_component,
    reproduce_allowed,
    variant_label,
    worst,
)
from conformance.tolerances import sampled_bound


def _assert_reproduces(ctx: Context, actual: Arrays, r64: Arrays, r32: Arrays, label: str) -> None:
    """The float64 reference against its stored values, under the tight bound."""
    __tracebackhide__ = True
    for name, expected in r64.items():
        if name not in actual:
            raise ConformanceFailure(f"{ctx.header()}: {label}{name} missing from the reference")
        allowed = reproduce_allowed(expected, r32[name])
        ratio, index = worst(actual[name], expected, allowed)
        a = np.asarray(actual[name], np.float64)
        got = float(a[index]) if a.shape == expected.shape else float("nan")
        stored = float(expected[index]) if expected.size else 0.0
        observe(ctx, record.Worst(ratio, label + name, index, got, stored))
        if not ratio <= 1.0:
            fail(
                ctx,
                f"parameter {label}{name}: the reference no longer reproduces its stored"
                f" golden value at {list(index)}: now {got!r}, stored {stored!r};"
                f" |difference| = {abs(got - stored):.3g} = {ratio:.3g} tolerances"
                f" (allowed {allowed:.3g}, golden float64)",
            )


def _stored_for(component: Component, case: Case) -> tuple[Arrays, str, list[str]]:
    """(the case's stored arrays, the variant label of case.spec, cotangent sets)."""
    entry, arrays = read_component(case.component)
    found = [c for c in entry["cases"] if c["seed"] == case.seed]
    if not found:
        raise GoldenDataError(
            f"golden seed: expected one of {[c['seed'] for c in entry['cases']]},"
            f" received {case.seed} for component {case.component!r}"
        )
    stored = _group(arrays, f"{found[0]['id']}/")
    for k, v in {**_prefixed("params/", case.params), **_prefixed("inputs/", case.inputs)}.items():
        if k not in stored or not np.array_equal(stored[k], v):
            raise GoldenDataError(f"golden case {k}: the case is not the stored golden case {found[0]['id']}")
    base = component.spec_class.from_json(json.dumps(found[0]["spec"]))
    label = variant_label(changed_fields(case.spec, base))
    if label not in found[0]["variants"]:
        raise GoldenDataError(
            f"golden variant: expected one of {sorted(found[0]['variants'])}, received {label!r}"
            f" for {case.component} {found[0]['id']}; regenerate with the framework installed:"
            " python -m conformance golden --write"
        )
    return stored, label, list(found[0]["cotangents"])


def golden_agreement(ctx: Context, backend: Backend) -> None:
    """Outputs, state and every stored gradient set against the stored reference."""
    stored, label, sets = _stored_for(ctx.component, ctx.case)
    r64 = _group(stored, f"reference/{label}/float64/")
    r32 = _group(stored, f"reference/{label}/float32/")
    tight = ctx.framework == "numpy" and ctx.dtype == "float64"
    plain = backend.run(ctx.case)
    checks: list[tuple[str, Arrays, str, Arrays | None]] = [
        ("outputs/", plain.outputs, "output ", None),
        ("state/", plain.state, "state ", None),
    ]
    for s in sets:
        cot = _group(stored, f"cotangents/{s}/")
        checks.append((f"grads/{s}/", backend.run(ctx.case, cot).grads, f"[{s}] ", cot))
    for prefix, actual, text, cotangents in checks:
        ref64, ref32 = _group(r64, prefix), _group(r32, prefix)
        if tight:
            _assert_reproduces(ctx, actual, ref64, ref32, text)
        elif ref64:
            bound = _bound(ctx, prefix, cotangents, ref64, ref32)
            assert_agree(ctx, actual, ref64, bound, kind=KIND[prefix.split("/")[0]], label=text)


def _bound(ctx: Context, prefix: str, cotangents: Arrays | None, ref64: Arrays, ref32: Arrays) -> Arrays:
    """The rounding bound of the stored entries under `prefix` on the golden case."""
    rounding = ctx.component.rounding
    if rounding is None:
        return {k: sampled_bound(ctx.dtype, v, [ref32[k]]) for k, v in ref64.items()}
    found = rounding(ctx.case, cotangents)
    part = {"outputs/": found.outputs, "state/": found.state}.get(prefix, found.grads)
    return {k: part[k] for k in ref64}


GOLDEN_AGREEMENT = Property("golden-agreement", golden_agreement)
