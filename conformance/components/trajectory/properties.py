"""Trajectory properties, each under a stable id (bound to strategies in conformance.components.trajectory).

trajectory-agreement  every step's loss and pre-clip norm, the final parameters and the final
                      state equal the reference's, run under the framework's conventions
trajectory-restart    S steps in one run equal k steps, then the remaining S - k steps started
                      from the returned parameters and state: nothing is carried between runs
                      but what the contract passes (no stale gradient, optimizer or module state)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from conformance.backend import Backend
from conformance.bounds import reference_and_bound
from conformance.case import Case
from conformance.compare import Context, assert_agree, assert_identity
from conformance.component import Property
from conformance.tolerances import IDENTITY_RTOL


def trajectory_agreement(ctx: Context, backend: Backend) -> None:
    r64, bound = reference_and_bound(ctx.component, ctx.case)
    got = backend.run(ctx.case)
    assert_agree(ctx, got.outputs, r64.outputs, bound.outputs, kind="forward", label="output ")
    assert_agree(ctx, got.state, r64.state, bound.state, kind="state", label="state ")


def _steps(case: Case, start: int, stop: int) -> Case:
    return replace(case, inputs={n: v[start:stop] for n, v in case.inputs.items()})


def trajectory_restart(ctx: Context, backend: Backend) -> None:
    case = ctx.case
    S = next(iter(case.inputs.values())).shape[0]
    k = case.seed % (S + 1)  # 0..S: a run of zero steps returns the parameters it was given
    full = backend.run(case)
    first = backend.run(_steps(case, 0, k))
    params = {n[len("final/") :]: v for n, v in first.outputs.items() if n.startswith("final/")}
    rest = backend.run(replace(_steps(case, k, S), params=params, state=first.state))
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {
        n: (np.concatenate([first.outputs[n], rest.outputs[n]]), full.outputs[n])
        for n in ("loss", "norm")
        if n in full.outputs
    }
    pairs.update({n: (rest.outputs[n], v) for n, v in full.outputs.items() if n.startswith("final/")})
    pairs.update({f"state {n}": (rest.state[n], v) for n, v in full.state.items()})
    for name, (split, whole) in pairs.items():
        worst = np.unravel_index(np.argmax(np.abs(split - whole)), whole.shape)
        assert_identity(
            ctx,
            f"{name}{list(map(int, worst))} ({k} steps, then {S - k})",
            float(split[worst]),
            float(whole[worst]),
            scale=float(np.max(np.abs(whole), initial=0.0)),
            rtol=IDENTITY_RTOL[ctx.dtype],
        )


# ---------------------------------------------------------------- the properties, by id

TRAJECTORY_AGREEMENT = Property("trajectory-agreement", trajectory_agreement, frameworks_only=True)
TRAJECTORY_RESTART = Property("trajectory-restart", trajectory_restart)
