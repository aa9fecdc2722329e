"""The generic properties, each under a stable id, written once as functions of the backend.

A property takes a Context (which case, component, framework, dtype, device) and
the backend, computes what it needs, and asserts through conformance.compare.
Components bind these (and their own, in their folder's properties.py) to their
case strategies in their record; `conformance.runner.run_property` runs one on one
case, for the pytest tests and for `python -m conformance replay`.

Ids (stable: reports, known issues and reproducers refer to them):
  forward-agreement        outputs and loss vs the float64 reference
  gradient-agreement       every parameter and input gradient, random upstream gradient
  loss-gradient-agreement  gradient of the loss itself
  finite-differences       <∇f, v> vs central differences along random v (float64)
  reverse-vs-forward       <u, J v> from forward mode = <Jᵀ u, v> from reverse mode
  upstream-linearity       grads(a u + b w) = a grads(u) + b grads(w)
  batch-decomposition      mean-loss gradient = mean of per-example gradients
  kink-convention          gradients with pre-activations exactly 0, under the framework's convention
  extreme-agreement        outputs and gradients vs the reference on extreme values of the dtype
"""

from __future__ import annotations

from dataclasses import replace
from typing import NoReturn

import numpy as np
from hypothesis import reject
from hypothesis.control import currently_in_test_context

from conformance.backend import Backend, Unsupported
from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree, assert_identity
from conformance.component import Component, NotApplicable, Property
from conformance.tolerances import (
    EPS,
    FINITE_DIFFERENCE_RTOL,
    FINITE_DIFFERENCE_STEP,
    IDENTITY_RTOL,
)

# ---------------------------------------------------------------- helpers


def directions(case: Case, keys: list[str], salt: int) -> Arrays:
    """Random directions for `keys`, drawn from the case's seed (so replays see the same)."""
    rng = np.random.default_rng([case.seed, salt])
    shapes = {**case.params, **case.inputs}
    return {k: rng.standard_normal(shapes[k].shape) for k in keys}


def upstream(case: Case, name: str = "dY") -> Arrays:
    return {"Y": case.inputs[name]}


def dot(a: Arrays, b: Arrays) -> tuple[float, float]:
    """Σ_k <a_k, b_k> and Σ_k <|a_k|, |b_k|> (the scale of the terms)."""
    keys = list(b)
    value = float(sum(np.sum(a[k] * b[k]) for k in keys))
    scale = float(sum(np.sum(np.abs(a[k] * b[k])) for k in keys))
    return value, scale


def grad_keys(component: Component, case: Case) -> list[str]:
    return [*case.params, *component.inputs]


def perturbed(case: Case, direction: Arrays, step: float) -> Case:
    params = {k: v + step * direction[k] if k in direction else v for k, v in case.params.items()}
    inputs = {k: v + step * direction[k] if k in direction else v for k, v in case.inputs.items()}
    return replace(case, params=params, inputs=inputs)


# ---------------------------------------------------------------- properties


def forward_agreement(ctx: Context, backend: Backend) -> None:
    r64, bound = reference_and_bound(ctx.component, ctx.case)
    got = backend.run(ctx.case)
    assert_agree(ctx, got.outputs, r64.outputs, bound.outputs, kind="forward", label="output ")


def gradient_agreement(ctx: Context, backend: Backend) -> None:
    cot = upstream(ctx.case)
    r64, bound = reference_and_bound(ctx.component, ctx.case, cot)
    assert_agree(ctx, backend.run(ctx.case, cot).grads, r64.grads, bound.grads, kind="gradient")


def loss_gradient_agreement(ctx: Context, backend: Backend) -> None:
    cot = {"loss": np.ones(())}
    r64, bound = reference_and_bound(ctx.component, ctx.case, cot)
    assert_agree(ctx, backend.run(ctx.case, cot).grads, r64.grads, bound.grads, kind="gradient")


def kink_convention(ctx: Context, backend: Backend) -> None:
    gradient_agreement(ctx, backend)


def extreme_agreement(ctx: Context, backend: Backend) -> None:
    """Outputs, the random-upstream and the loss gradients on a case of extreme values
    (conformance.strategies: logits of 1e4 and beyond, saturated units, tiny inputs)."""
    forward_agreement(ctx, backend)
    gradient_agreement(ctx, backend)
    loss_gradient_agreement(ctx, backend)


def reject_case(reason: str) -> NoReturn:
    """Drop this case: in a hypothesis test, a rejected example (hypothesis draws another); outside
    one (a replay, a failure's rerun in another framework), NotApplicable with the reason."""
    if currently_in_test_context():
        reject()
    raise NotApplicable(reason)


def finite_differences(ctx: Context, backend: Backend) -> None:
    """Per gradient: <g_k, v_k> against the central difference of f = <u, Y> along v_k.

    D(h) = (f(x + h v) - f(x - h v)) / 2h = f' + c h² + O(h⁴) for a smooth f. Three steps
    (ε, 2ε, 4ε) show whether that holds here: the gaps D(4ε) - D(2ε) and D(2ε) - D(ε) are
    then 12cε² and 3cε², ratio 4, and (4 D(ε) - D(2ε)) / 3 removes the h² term (Richardson),
    which matters where the curvature is large (a batch-norm chain over N = 3 examples).
    Any other ratio means the steps crossed a kink or rounding dominates the gaps: D(ε)
    alone is used, and a gap larger than 1e-4 of the scale rejects the case.
    """
    cot = upstream(ctx.case)
    grads = backend.run(ctx.case, cot).grads
    keys = grad_keys(ctx.component, ctx.case)
    v = directions(ctx.case, keys, salt=1)

    def f(c: Case) -> float:
        return float(np.sum(backend.run(c).outputs["Y"] * cot["Y"]))

    # f itself is rounded to about ε64 · Σ|u ⊙ Y|; divided by the step, that is the
    # least error a central difference can have, however exact the gradient.
    Y = backend.run(ctx.case).outputs["Y"]
    rounding = 8 * EPS["float64"] * float(np.sum(np.abs(Y * cot["Y"]))) / FINITE_DIFFERENCE_STEP

    def central(k: str, eps: float) -> float:
        plus, minus = perturbed(ctx.case, {k: v[k]}, eps), perturbed(ctx.case, {k: v[k]}, -eps)
        return (f(plus) - f(minus)) / (2 * eps)

    for k in keys:
        d1, d2, d4 = (central(k, m * FINITE_DIFFERENCE_STEP) for m in (1, 2, 4))
        analytic, scale = dot(grads, {k: v[k]})
        numeric = richardson(d1, d2, d4, noise=rounding)
        if numeric is None:
            numeric = d1
            if abs(d1 - d4) > 1e-4 * (scale + abs(d1)):
                reject_case("the finite-difference steps crossed a kink: they say nothing of the derivative")
        assert_identity(
            ctx,
            f"{k} (directional)",
            analytic,
            numeric,
            scale=scale + abs(numeric) + rounding / FINITE_DIFFERENCE_RTOL,
            rtol=FINITE_DIFFERENCE_RTOL,
        )


def richardson(d1: float, d2: float, d4: float, noise: float) -> float | None:
    """(4 D(ε) - D(2ε)) / 3 where the gaps between D(ε), D(2ε), D(4ε) grow as h², else None.

    Gaps within a few times the rounding noise say nothing (and need no correction);
    a ratio outside [3, 5] is not the h² law of a smooth f.
    """
    near, far = d2 - d1, d4 - d2
    if abs(near) <= 4 * noise or not 3 * abs(near) <= abs(far) <= 5 * abs(near) or near * far < 0:
        return None
    return (4 * d1 - d2) / 3


def reverse_vs_forward(ctx: Context, backend: Backend) -> None:
    keys = grad_keys(ctx.component, ctx.case)
    v = directions(ctx.case, keys, salt=2)
    try:
        tangent_out = backend.jvp(ctx.case, v)
    except Unsupported as err:
        raise NotApplicable(str(err)) from err
    cot = upstream(ctx.case)
    grads = backend.run(ctx.case, cot).grads
    forward, scale_f = dot(tangent_out, cot)
    reverse, scale_r = dot(grads, v)
    assert_identity(
        ctx, "<u, J v> vs <Jᵀ u, v>", forward, reverse, scale=scale_f + scale_r, rtol=IDENTITY_RTOL[ctx.dtype]
    )


def upstream_linearity(ctx: Context, backend: Backend) -> None:
    a, b = 0.75, -1.5  # exact in binary: the identity is about the backward, not rounding of a, b
    u, w = ctx.case.inputs["dY"], ctx.case.inputs["dY2"]
    g_u = backend.run(ctx.case, {"Y": u}).grads
    g_w = backend.run(ctx.case, {"Y": w}).grads
    g_mix = backend.run(ctx.case, {"Y": a * u + b * w}).grads
    for k in g_mix:
        combined = a * g_u[k] + b * g_w[k]
        scale = float(np.max(np.abs(a * g_u[k]) + np.abs(b * g_w[k]), initial=0.0))
        worst = np.unravel_index(np.argmax(np.abs(g_mix[k] - combined)), combined.shape)
        assert_identity(
            ctx,
            f"{k}{list(map(int, worst))}",
            float(g_mix[k][worst]),
            float(combined[worst]),
            scale=scale,
            rtol=IDENTITY_RTOL[ctx.dtype],
        )


def batch_decomposition(ctx: Context, backend: Backend) -> None:
    """∇ mean_n L_n = mean_n ∇L_n, and ∂L/∂x_n = (∂L_n/∂x_n) / N."""
    case, cot = ctx.case, {"loss": np.ones(())}
    full = backend.run(case, cot).grads
    N = case.inputs["X"].shape[0]
    rows = [
        backend.run(replace(case, inputs={k: v[n : n + 1] for k, v in case.inputs.items()}), cot).grads
        for n in range(N)
    ]
    for k in full:
        parts = np.concatenate([r[k] for r in rows]) / N if k == "X" else sum(r[k] for r in rows) / N
        scale = float(np.max(np.abs(parts), initial=0.0)) * max(N, 1)
        worst = np.unravel_index(np.argmax(np.abs(full[k] - parts)), parts.shape)
        assert_identity(
            ctx,
            f"{k}{list(map(int, worst))}",
            float(full[k][worst]),
            float(parts[worst]),
            scale=scale,
            rtol=IDENTITY_RTOL[ctx.dtype],
        )


# ---------------------------------------------------------------- the properties, by id

FORWARD_AGREEMENT = Property("forward-agreement", forward_agreement, frameworks_only=True, low_precision=True)
GRADIENT_AGREEMENT = Property(
    "gradient-agreement", gradient_agreement, frameworks_only=True, low_precision=True
)
LOSS_GRADIENT_AGREEMENT = Property(
    "loss-gradient-agreement", loss_gradient_agreement, frameworks_only=True, low_precision=True
)
KINK_CONVENTION = Property("kink-convention", kink_convention, frameworks_only=True, low_precision=True)
EXTREME_AGREEMENT = Property("extreme-agreement", extreme_agreement, frameworks_only=True, low_precision=True)
FINITE_DIFFERENCES = Property("finite-differences", finite_differences, float64_only=True)
REVERSE_VS_FORWARD = Property("reverse-vs-forward", reverse_vs_forward, frameworks_only=True)
UPSTREAM_LINEARITY = Property("upstream-linearity", upstream_linearity)
BATCH_DECOMPOSITION = Property("batch-decomposition", batch_decomposition)
