"""Batch-norm properties, each under a stable id (bound to strategies in conformance.components.mlp_bn).

  state-agreement             the running mean and variance after one training step, and after
                              STEPS steps on fresh batches (each implementation feeding its own
                              new state back), vs the reference under the framework's convention
  eval-agreement              eval mode: outputs, every gradient, and the state returned unchanged
  bn-gradient-sums            per feature of every batch-norm input gradient dx = ∂L/∂Zˡ:
                              Σ_n dx_n = 0 and Σ_n dx_n ⊙ x̂_n = ε s³ γ ⊙ ∂L/∂γ (0 when ε = 0)
  bn-shift-scale-invariance   X → 2 X + t and Wˡ → 2 Wˡ for the later batch norms (every
                              normalization's input doubled, the first also shifted by W¹t per
                              feature) with ε gives the outputs of the case with ε/4
  bn-eval-affine              eval mode with identity activations: Y(a X + b X') = a Y(X) + b Y(X')
                              for a + b = 1, and ∂L/∂X is the same at X and X'
  bn-batch-of-one             a training batch of one row, under the framework's convention:
                              "raise" (torch's ValueError) or "allow" (flax: σ² = 0, Y = β)
  bn-ill-conditioned          a feature mean of 1e4 with spread ~0.6 at the first batch norm
                              (inputs of mean 1e4), the framework's default variance computation
                              (meta bn_variance "default"; flax: use_fast_variance=True,
                              E[x²] - E[x]²), vs the two-pass reference: Y and the state
  bn-ill-conditioned-two-pass the same with the two-pass variance ("two-pass"; flax:
                              use_fast_variance=False; torch has one computation for both)

The sums: with g = ∂L/∂Ẑ the gradient of the normalization's output and s = 1/√(σ² + ε),
dx = s/N (N γg - Σ γg - x̂ Σ γg x̂) (refimpl/batchnorm.py, terms [1] [2] [3]). Summing over n,
Σ x̂ = 0 cancels the rest; multiplying by x̂ first, Σ x̂² = N σ² s² leaves
Σ dx ⊙ x̂ = s (1 - σ² s²) γ Σ g x̂ = ε s³ γ ⊙ ∂L/∂γ: zero only when ε = 0, and bounded by
ε s² times the size of s γ Σ |g| |x̂|. Both sides come from the framework's own gradients; x̂ and
s from the float64 reference forward (the framework's own differ by its rounding, far inside
the identity tolerance). The tolerance scales with the terms summed: Σ|dx| (1 + |x̂|) and
s|γ| Σ|g| (2 + m)(1 + m) with m = max |x̂|, where |g| ≤ |δˡ⁺¹| |Wˡ⁺¹| (δˡ⁺¹ the framework's
own, and every activation here has |f'| ≤ 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from conformance.backend import Backend, Outcome
from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree, assert_identity
from conformance.component import NotApplicable, Property
from conformance.components.mlp_bn.rounding import rounded_state, step_rounding
from conformance.properties import upstream
from conformance.tolerances import IDENTITY_RTOL
from refimpl.batchnorm import BatchNormCache
from refimpl.mlp_bn import mlp_bn_forward

STEPS = 4  # state-agreement: the running statistics after 1 and after STEPS steps


def _require_train(case: Case, property_id: str, train: bool = True) -> None:
    if case.train != train:
        mode = "training" if train else "eval"
        raise NotApplicable(f"{property_id}: needs a {mode}-mode case")


def _agree(
    ctx: Context,
    backend: Backend,
    case: Case,
    run_case: Case | None = None,
    *,
    label: str = "",
    forward_only: bool = False,
) -> None:
    """Outputs, gradients (random upstream) and state of the backend on run_case (default:
    case) vs the reference on case; forward_only: "Y" and the state."""
    cot = upstream(case)
    r64, bound = reference_and_bound(ctx.component, case, cot)
    got = backend.run(run_case or case, cot)
    outputs = ("Y",) if forward_only else tuple(r64.outputs)
    assert_agree(
        ctx,
        got.outputs,
        {k: r64.outputs[k] for k in outputs},
        bound.outputs,
        kind="forward",
        label=f"{label}output ",
    )
    if not forward_only:
        assert_agree(ctx, got.grads, r64.grads, bound.grads, kind="gradient", label=label)
    assert_agree(ctx, got.state, r64.state, bound.state, kind="state", label=f"{label}state ")


def _assert_same(
    ctx: Context, lhs: Arrays, rhs: Arrays, what: str, scale: dict[str, float] | None = None
) -> None:
    """Per entry of rhs: the worst element of lhs - rhs within IDENTITY_RTOL of the tensor's
    size (max |lhs|, |rhs|), or of scale[k] where given."""
    __tracebackhide__ = True
    for k, r in rhs.items():
        a = np.asarray(lhs[k], np.float64)
        size = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(r), initial=0.0)))
        if scale and k in scale:
            size = scale[k]
        worst = np.unravel_index(np.argmax(np.abs(a - r)), r.shape) if r.size else ()
        assert_identity(
            ctx,
            f"{k}{list(map(int, worst))} ({what})",
            float(a[worst]),
            float(r[worst]),
            scale=size,
            rtol=IDENTITY_RTOL[ctx.dtype],
        )


# ---------------------------------------------------------------- running statistics, eval mode


def _batches(case: Case, steps: int) -> list[np.ndarray]:
    """The case's X, then steps - 1 fresh batches of its shape, drawn from its seed."""
    rng = np.random.default_rng([case.seed, 0xB4])
    X = case.inputs["X"]
    return [X] + [rng.standard_normal(X.shape) for _ in range(steps - 1)]


def _chain(run: Callable[..., Outcome], case: Case, batches: list[np.ndarray]) -> list[Arrays]:
    """The state after each step, every step started from the state the previous returned."""
    states, state = [], case.state
    for X in batches:
        state = run(replace(case, inputs={**case.inputs, "X": X}, state=state)).state
        states.append(state)
    return states


def state_agreement(ctx: Context, backend: Backend) -> None:
    case = ctx.case
    _require_train(case, "state-agreement")
    if not case.state:
        raise NotApplicable("state-agreement: the case carries no state")
    batches = _batches(case, STEPS)
    got = _chain(backend.run, case, batches)
    r64 = _chain(ctx.component.reference, case.with_dtype("float64"), batches)
    bounds, state = [], rounded_state(case)
    for X in batches:  # each step starts from the state (and its rounding) the previous returned
        bound, state = step_rounding(replace(case, inputs={**case.inputs, "X": X}), None, state)
        bounds.append(bound.state)
    for step in (0, STEPS - 1):
        assert_agree(
            ctx,
            got[step],
            r64[step],
            bounds[step],
            kind="state",
            label=f"state after {step + 1} step{'s' if step else ''}: ",
        )


def eval_agreement(ctx: Context, backend: Backend) -> None:
    """Eval mode: outputs and gradients with the running statistics, which come back unchanged."""
    _require_train(ctx.case, "eval-agreement", train=False)
    _agree(ctx, backend, ctx.case, label="eval ")


# ---------------------------------------------------------------- invariants


def _bn_caches(case: Case) -> dict[int, BatchNormCache]:
    """The float64 reference forward's batch-norm caches (x̂, s, γ), by layer."""
    spec = replace(case.spec, dtype="float64")
    _, _, cache = mlp_bn_forward(spec, case.params, case.inputs["X"], case.state, train=True)
    caches = {}
    for l in spec.bn_layers():
        layer = cache.layers[l - 1].batchnorm
        assert isinstance(layer, BatchNormCache)  # training mode
        caches[l] = layer
    return caches


def bn_gradient_sums(ctx: Context, backend: Backend) -> None:
    case, spec = ctx.case, ctx.case.spec
    _require_train(case, "bn-gradient-sums")
    if case.inputs["X"].shape[0] < 2:
        raise NotApplicable("bn-gradient-sums: needs a batch of two rows or more")
    grads = backend.run(case, upstream(case)).grads
    for l, bn in _bn_caches(case).items():
        dx, xhat, s, gamma = grads[f"Z{l}"], bn.xhat, bn.inv_std, case.params[f"gamma{l}"]
        bound_g = np.abs(grads[f"Z{l + 1}"]) @ np.abs(case.params[f"W{l + 1}"])  # >= |∂L/∂Ẑˡ|
        m = np.max(np.abs(xhat), axis=0)
        size = (np.abs(dx) * (1 + np.abs(xhat))).sum(axis=0) + (
            s * np.abs(gamma) * (2 + m) * (1 + m) * bound_g.sum(axis=0)
        )
        sides = {
            f"Σ_n ∂L/∂Z{l}": (dx.sum(axis=0), np.zeros_like(s)),
            f"Σ_n ∂L/∂Z{l} ⊙ x̂ vs ε s³ γ ∂L/∂γ{l}": (
                (dx * xhat).sum(axis=0),
                spec.bn_eps * s**3 * gamma * grads[f"gamma{l}"],
            ),
        }
        for name, (lhs, rhs) in sides.items():
            off = np.abs(lhs - rhs)
            # a feature with no gradient at all (every unit dead) has size 0: only 0 = 0 passes
            ratio = np.divide(off, size, out=np.where(off > 0, np.inf, 0.0), where=size > 0)
            d = int(np.argmax(ratio))
            assert_identity(
                ctx,
                f"{name}, feature {d}",
                float(lhs[d]),
                float(rhs[d]),
                scale=float(size[d] + abs(rhs[d])),
                rtol=IDENTITY_RTOL[ctx.dtype],
            )


def bn_shift_scale_invariance(ctx: Context, backend: Backend) -> None:
    """x̂ of 2Z + c with ε is x̂ of Z with ε/4, exactly: (2Z + c - 2μ - c)/√(4σ² + ε). The case
    moves to X' = 2X + t (Z¹' = 2Z¹ + W¹t) and Wˡ' = 2Wˡ for the later batch-norm layers
    (Zˡ' = 2Zˡ), so that every normalization sees twice its input; ε/4 applies to all of
    them. The outputs are compared; the gradients' counterpart is bn-gradient-sums."""
    case, spec = ctx.case, ctx.case.spec
    _require_train(case, "bn-shift-scale-invariance")
    X, p = case.inputs["X"], case.params
    t = np.random.default_rng([case.seed, 0x5C]).normal(0.0, 2.0, X.shape[1])
    later = {f"W{l}": 2.0 * p[f"W{l}"] for l in spec.bn_layers() if l > 1}
    moved = replace(case, inputs={**case.inputs, "X": 2.0 * X + t}, params={**p, **later})
    narrow = replace(case, spec=replace(spec, bn_eps=spec.bn_eps / 4))
    _assert_same(ctx, backend.run(moved).outputs, backend.run(narrow).outputs, "2 X + t, 2 Wˡ vs ε/4")


def bn_eval_affine(ctx: Context, backend: Backend) -> None:
    case, spec = ctx.case, ctx.case.spec
    _require_train(case, "bn-eval-affine", train=False)
    if {spec.hidden_activation, spec.output_activation} != {"identity"}:
        raise NotApplicable("bn-eval-affine: needs identity activations")
    X = case.inputs["X"]
    X2 = np.random.default_rng([case.seed, 0xAF]).standard_normal(X.shape)
    a, b = 0.75, 0.25  # exact in binary, a + b = 1

    def at(Xv: np.ndarray) -> Case:
        return replace(case, inputs={**case.inputs, "X": Xv})

    cot = upstream(case)
    one, two = backend.run(at(X), cot), backend.run(at(X2), cot)
    mix = backend.run(at(a * X + b * X2)).outputs["Y"]
    Y1, Y2 = one.outputs["Y"], two.outputs["Y"]
    size = float(np.max(np.abs(a * Y1) + np.abs(b * Y2)))
    _assert_same(ctx, {"Y": mix}, {"Y": a * Y1 + b * Y2}, "Y(a X + b X') vs a Y(X) + b Y(X')", {"Y": size})
    _assert_same(ctx, {"X": one.grads["X"]}, {"X": two.grads["X"]}, "∂L/∂X at X vs at X'")


# ---------------------------------------------------------------- conventions, conditioning


def bn_batch_of_one(ctx: Context, backend: Backend) -> None:
    case, spec = ctx.case, ctx.case.spec
    _require_train(case, "bn-batch-of-one")
    if case.inputs["X"].shape[0] != 1:
        raise NotApplicable("bn-batch-of-one: needs a batch of one row")
    if spec.bn_single_example == "allow":
        _agree(ctx, backend, case, label="N = 1: ")
        return
    try:
        backend.run(case, upstream(case))
        raised = 0.0
    except ValueError:
        raised = 1.0
    assert_identity(
        ctx,
        "ValueError on a training batch of one (bn_single_example='raise')",
        raised,
        1.0,
        scale=1.0,
        rtol=0.5,
    )


# The variance formula shows in Y and the running variance, which these properties compare
# (the gradients are gradient-agreement's subject); with inputs of 1e4 every float32 result
# errs by ~1e-3 of its size (the rounding of Z¹ = X W¹ᵀ), which the rounding bound carries.


def _ill_conditioned(case: Case, property_id: str) -> None:
    _require_train(case, property_id)
    if abs(float(case.inputs["X"].mean())) < 1e3:
        raise NotApplicable(f"{property_id}: needs an ill-conditioned case (X ~ 1e4)")


def _variance(case: Case, choice: str) -> Case:
    return replace(case, meta={**case.meta, "bn_variance": choice})


def bn_ill_conditioned(ctx: Context, backend: Backend) -> None:
    """The framework as users get it (flax: use_fast_variance=True, E[x²] - E[x]²)."""
    _ill_conditioned(ctx.case, "bn-ill-conditioned")
    _agree(ctx, backend, ctx.case, _variance(ctx.case, "default"), label="mean 1e4: ", forward_only=True)


def bn_ill_conditioned_two_pass(ctx: Context, backend: Backend) -> None:
    """The same case with σ² = E[(x - μ)²], as the reference (flax: use_fast_variance=False)."""
    _ill_conditioned(ctx.case, "bn-ill-conditioned-two-pass")
    _agree(
        ctx,
        backend,
        ctx.case,
        _variance(ctx.case, "two-pass"),
        label="mean 1e4, two-pass: ",
        forward_only=True,
    )


# ---------------------------------------------------------------- the properties, by id

STATE_AGREEMENT = Property("state-agreement", state_agreement, frameworks_only=True, low_precision=True)
EVAL_AGREEMENT = Property("eval-agreement", eval_agreement, frameworks_only=True)
BN_GRADIENT_SUMS = Property("bn-gradient-sums", bn_gradient_sums)
BN_SHIFT_SCALE_INVARIANCE = Property("bn-shift-scale-invariance", bn_shift_scale_invariance)
BN_EVAL_AFFINE = Property("bn-eval-affine", bn_eval_affine)
BN_BATCH_OF_ONE = Property("bn-batch-of-one", bn_batch_of_one)
BN_ILL_CONDITIONED = Property("bn-ill-conditioned", bn_ill_conditioned, frameworks_only=True)
BN_ILL_CONDITIONED_TWO_PASS = Property(
    "bn-ill-conditioned-two-pass", bn_ill_conditioned_two_pass, frameworks_only=True
)
