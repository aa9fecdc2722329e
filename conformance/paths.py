"""Every path of the same math inside one framework: each against its twin, not only against
the reference, since two paths of one framework that disagree are a finding even when one
of them matches the reference.

A path is a field of the case the adapter honours, `case.meta["path"]`: absent, the
adapter's default (torch: modules run eagerly; JAX: flax modules under `jax.jit`); otherwise
one of the names its capability `paths(case, device)` returns:

  eager        JAX op by op, under `jax.disable_jit()`, against the jitted default
  functional   torch's functional API (`F.linear`, `F.batch_norm`) against its modules; JAX's
               `jax.nn.standardize` against flax's `BatchNorm` (no running statistics: the
               training state is compared only where the path returns one)
  cell         torch's `nn.RNNCell` (sharing `nn.RNN`'s parameters) stepped through time,
               against `nn.RNN` over the sequence
  loop         torch's clipping by a loop of per-tensor kernels (`foreach=False`), against
  foreach      `_foreach_norm` / `_foreach_mul_` (`foreach=True`): the other of the case's
  compiled     `torch.compile` of the same module (its own property: about 5 s of CPU per
               graph on 2 cores, so it runs in dev, thorough and hunt, never in ci)

Ids:
  path-agreement          outputs, gradients (random upstream) and state of every path the
                          adapter offers but "compiled", against the default path
  compiled-agreement      the same for "compiled" (dev, thorough, hunt)
  per-example-gradients   per-example gradients through the framework's vmap
                          (`torch.func.vmap(grad)`, `jax.vmap(jax.grad)`, the capability
                          `per_example_grads`) against a loop over the rows
  batch-blocks            one call on a batch against the same call on its row blocks (a
                          power of two and the rest): outputs and input gradients are the
                          blocks' side by side, parameter gradients their sum (cotangent on
                          Y; the loss the blocks' mean weighted by their sizes)

Paths of one framework compute the same math and may differ by rounding only: their
difference is held to the tolerance of the reference on the same case (`agree_with_twin`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

from conformance.backend import Backend, Outcome, Unsupported
from conformance.bounds import reference_and_bound
from conformance.case import Arrays, Case
from conformance.compare import Context, assert_agree
from conformance.component import NotApplicable, Property
from conformance.profiles import Profile
from conformance.properties import upstream

# the adapters' paths, then "vmap" and "blocks", the twins of per-example-gradients and batch-blocks
PATHS = ("eager", "functional", "cell", "loop", "foreach", "compiled", "vmap", "blocks")
COMPILED = "compiled"  # torch.compile: its own property, out of the ci profile
CI_PATHS = tuple(p for p in PATHS if p != COMPILED)


def path_choices(profile: Profile, ci: tuple[str, ...] = CI_PATHS) -> tuple[str, ...]:
    """The paths a case may run on under the profile (its meta "paths"): `ci` under a bounded
    profile, every one otherwise. torch.compile is never in ci: about 5 s of CPU per graph
    on 2 cores, and every spec and shape is a graph of its own. A component's strategy leaves
    out of `ci` what costs more than the ci budget allows there (JAX compiles every new
    program, about a second of CPU each for the RNN; op by op, every primitive per shape)."""
    return ci if profile.bounded_shapes else PATHS


def allowed_paths(case: Case) -> tuple[str, ...]:
    return tuple(case.meta.get("paths", CI_PATHS))


def require_path(ctx: Context, path: str) -> None:
    """NotApplicable unless the case may run on `path` under this profile."""
    if path not in allowed_paths(ctx.case):
        raise NotApplicable(
            f"{ctx.property}: {path!r} is not among the paths this profile runs for"
            f" {ctx.component.name} ({list(allowed_paths(ctx.case))}; see its strategies)"
        )


def with_meta(case: Case, **fields: Any) -> Case:
    """The case with meta fields set (a path, a layout)."""
    return replace(case, meta={**case.meta, **fields})


def offered(ctx: Context, backend: Backend, capability: str) -> tuple[str, ...]:
    """What the adapter's capability (`paths`, `layouts`) lists for this case; none: not applicable."""
    try:
        names = tuple(backend.call(ctx.case, capability))
    except Unsupported as err:
        raise NotApplicable(str(err)) from err
    return names


def agree_with_twin(
    ctx: Context, twin: Arrays, base: Arrays, bound: Arrays, *, kind: str, label: str
) -> None:
    """Every entry of `bound`: |twin - base| within the error the reference's rounding bound
    allows on this case (conformance.bounds): with the base path as the expected values, a
    twin is allowed what any implementation is."""
    __tracebackhide__ = True
    missing = sorted(set(bound) - set(base))
    if missing:
        raise ValueError(f"{label}: the base path returned no {missing}")
    assert_agree(
        ctx, twin, {k: np.asarray(base[k], np.float64) for k in bound}, bound, kind=kind, label=label
    )


def agree_outcomes(ctx: Context, twin: Outcome, base: Outcome, bound: Outcome, label: str) -> None:
    """Outputs, gradients and state of twin against base (bound: reference_and_bound's second)."""
    agree_with_twin(ctx, twin.outputs, base.outputs, bound.outputs, kind="forward", label=f"{label} output ")
    if bound.grads:
        agree_with_twin(ctx, twin.grads, base.grads, bound.grads, kind="gradient", label=label)
    if bound.state and twin.state:  # a path without running statistics returns none (jax.nn.standardize)
        agree_with_twin(ctx, twin.state, base.state, bound.state, kind="state", label=f"{label} state ")


def _paths_against_default(
    ctx: Context, backend: Backend, paths: tuple[str, ...], intermediates: bool = True
) -> None:
    """Each path's outcome against the default's; intermediates=False leaves out the gradients
    at a network's intermediates (∂L/∂Zˡ, "Z1", ...), which a compiled graph keeps to itself."""
    cot = upstream(ctx.case) if ctx.component.inputs else None
    _, bound = reference_and_bound(ctx.component, ctx.case, cot)
    if not intermediates:
        grads = {k: v for k, v in bound.grads.items() if not re.fullmatch(r"Z\d+", k)}
        bound = Outcome(bound.outputs, grads, bound.state)
    base = backend.run(ctx.case, cot)
    for path in paths:
        twin = backend.run(with_meta(ctx.case, path=path), cot)
        agree_outcomes(ctx, twin, base, bound, f"path {path} vs the default:")


def path_agreement(ctx: Context, backend: Backend) -> None:
    allowed = allowed_paths(ctx.case)
    offers = tuple(p for p in offered(ctx, backend, "paths") if p != COMPILED)
    paths = tuple(p for p in offers if p in allowed)
    if not paths:
        raise NotApplicable(
            f"path-agreement: {ctx.framework}'s adapter for {ctx.component.name}"
            f" offers {list(offers)} beside its default, this profile runs"
            f" {list(allowed)} here"
        )
    _paths_against_default(ctx, backend, paths)


def compiled_agreement(ctx: Context, backend: Backend) -> None:
    if COMPILED not in allowed_paths(ctx.case):
        raise NotApplicable(
            "compiled-agreement: torch.compile costs about 5 s of CPU per graph on"
            " 2 cores, every spec and shape a graph: dev, thorough and hunt only"
        )
    if COMPILED not in offered(ctx, backend, "paths"):
        raise NotApplicable(
            f"compiled-agreement: {ctx.framework}'s adapter for"
            f" {ctx.component.name} has no compiled path beside its default"
        )
    _paths_against_default(ctx, backend, (COMPILED,), intermediates=False)


# ---------------------------------------------------------------- the batch and its pieces


@dataclass(frozen=True)
class Batching:
    """Where a component's batch lies: axes(case) maps each input, output and gradient that
    has a batch axis to it; every other gradient (the parameters') sums over the batch."""

    axes: Callable[[Case], dict[str, int]]

    def size(self, case: Case) -> int:
        return int(case.inputs["X"].shape[self.axes(case)["X"]])

    def take(self, case: Case, rows: slice) -> Case:
        """The case restricted to `rows` of its batch (every input that has a batch axis)."""
        axes = self.axes(case)
        inputs = {
            k: v[(slice(None),) * axes[k] + (rows,)] if k in axes else v for k, v in case.inputs.items()
        }
        return replace(case, inputs=inputs)


def blocks(N: int) -> list[slice]:
    """A power of two, then the rest: 129 -> 128 + 1, 33 -> 32 + 1, 6 -> 4 + 2."""
    head = 1 << (N - 1).bit_length() - 1
    return [slice(0, head), slice(head, N)]


def batch_blocks(batching: Batching) -> Property:
    def check(ctx: Context, backend: Backend) -> None:
        require_path(ctx, "blocks")
        case, N = ctx.case, batching.size(ctx.case)
        if N < 2:
            raise ValueError(f"batch-blocks: needs a batch of 2 rows or more, received {N}")
        axes = batching.axes(case)
        cot = upstream(case)
        _, bound = reference_and_bound(ctx.component, case, cot)
        whole = backend.run(case, cot)
        parts = []
        for rows in blocks(N):
            part = batching.take(case, rows)
            parts.append((rows.stop - rows.start, backend.run(part, upstream(part))))
        joined = Outcome(
            {
                k: (
                    np.concatenate([p.outputs[k] for _, p in parts], axis=axes[k])
                    if k in axes
                    else cast(np.ndarray, sum(n / N * p.outputs[k] for n, p in parts))
                )
                for k in whole.outputs
            },
            {
                k: (
                    np.concatenate([p.grads[k] for _, p in parts], axis=axes[k])
                    if k in axes
                    else cast(np.ndarray, sum(p.grads[k] for _, p in parts))
                )
                for k in whole.grads
            },
            {},
        )
        agree_outcomes(
            ctx,
            joined,
            whole,
            Outcome(bound.outputs, bound.grads, {}),
            f"row blocks {[(s.start, s.stop) for s in blocks(N)]} vs the batch:",
        )

    # frameworks only: the reference's own row structure is batch-decomposition's (an identity)
    return Property("batch-blocks", check, frameworks_only=True)


def per_example_gradients(batching: Batching) -> Property:
    def check(ctx: Context, backend: Backend) -> None:
        require_path(ctx, "vmap")
        case = ctx.case
        try:
            vmapped = backend.call(case, "per_example_grads")
        except Unsupported as err:
            raise NotApplicable(str(err)) from err
        cot = {"loss": np.ones(())}
        for n in range(batching.size(case)):
            row = batching.take(case, slice(n, n + 1))
            _, bound = reference_and_bound(ctx.component, row, cot)
            looped = backend.run(row, cot).grads
            agree_with_twin(
                ctx,
                {k: v[n] for k, v in vmapped.items()},
                looped,
                bound.grads,
                kind="gradient",
                label=f"vmap vs a loop, example {n}: ",
            )

    return Property("per-example-gradients", check, frameworks_only=True)


PATH_AGREEMENT = Property("path-agreement", path_agreement, frameworks_only=True)
COMPILED_AGREEMENT = Property("compiled-agreement", compiled_agreement, frameworks_only=True)
