"""refimpl.train: SGD steps with clipping on MLPs and RNNs, against the math and finite differences.

What holds for one step θ' = θ - η ĝ (ĝ = clip(∂L/∂θ)):
- the update is θ - η clip(∇L) with ∇L from central differences (float64), so a wrong sign, a
  missed clip or a stale gradient is off by O(1) while the real step is off by ~1e-8;
- ‖θ' - θ‖ <= η M with clipping by global norm, max |θ' - θ| <= η v by value;
- frozen parameters stay and leave the clipping norm; a frozen b_hh is the one-bias RNN;
- steps compose (k steps, then the rest, from the returned parameters) and nothing is mutated.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import mlp, mlp_bn, rnn
from refimpl.clip import ClipSpec, apply_clip, global_norm
from refimpl.gradcheck import numerical_grads
from refimpl.train import SGDSpec, StepInfo, mlp_objective, rnn_objective, sgd_update, train, train_step

SEEDS = st.integers(0, 2**32 - 1)
SETTINGS = settings(max_examples=30, deadline=None)
MLPS = st.sampled_from(
    [
        mlp.MLPSpec((3, 5, 2), "tanh", "identity", "mse"),
        mlp.MLPSpec((4, 6, 6, 3), "sigmoid", "identity", "cross_entropy"),
        mlp.MLPSpec((2, 4, 1), "tanh", "tanh", "mse"),
    ]
)
CLIPS = st.sampled_from(
    [
        None,
        ClipSpec("global_norm", max_norm=0.05),
        ClipSpec("global_norm", max_norm=0.05, convention="optax"),
        ClipSpec("global_norm", max_norm=0.02, norm_type=float("inf")),
        ClipSpec("value", clip_value=0.01),
    ]
)
RNN = rnn.RNNSpec(3, 4, 2, "tanh", "every", "mse")


def mlp_problem(spec: mlp.MLPSpec, seed: int, steps: int = 3, N: int = 5) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    params = (mlp_bn if spec.batchnorm else mlp).init_params(spec, rng)
    C = spec.sizes[-1]
    batches = []
    for _ in range(steps):
        X = rng.standard_normal((N, spec.sizes[0]))
        T = rng.integers(0, C, N) if spec.loss == "cross_entropy" else rng.standard_normal((N, C))
        batches.append({"X": X, "targets": T})
    return mlp_objective(spec), params, batches


def rnn_problem(seed: int, steps: int = 3, T: int = 4, N: int = 2) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    params = rnn.init_params(RNN, rng)
    batches = [
        {
            "X": rng.standard_normal((T, N, 3)),
            "h0": rng.standard_normal((N, 4)),
            "targets": rng.standard_normal((T, N, 2)),
        }
        for _ in range(steps)
    ]
    return rnn_objective(RNN), params, batches


def update_error(
    step: Callable[..., Any], objective: Any, sgd: SGDSpec, params: Any, batch: Any, state: Any = None
) -> float:
    """max |θ' - (θ - η clip(∇L))| / (η max |clip(∇L)|), ∇L by central differences (float64)."""
    state = {} if state is None else state
    new, _, _ = step(objective, sgd, params, state, batch)
    numeric = numerical_grads(lambda p: objective(p, state, batch)[0], params)
    ghat = numeric if sgd.clip is None else apply_clip(sgd.clip, numeric)[0]
    scale = sgd.lr * max(float(np.max(np.abs(v))) for v in ghat.values())
    return max(float(np.max(np.abs(new[k] - (params[k] - sgd.lr * ghat[k])))) for k in params) / scale


@SETTINGS
@given(spec=MLPS, clip=CLIPS, seed=SEEDS)
def test_the_update_follows_the_clipped_gradient(spec: mlp.MLPSpec, clip: Any, seed: int) -> None:
    objective, params, batches = mlp_problem(spec, seed)
    sgd = SGDSpec(0.3, clip)
    assert update_error(train_step, objective, sgd, params, batches[0]) < 1e-6
    new, _, info = train_step(objective, sgd, params, {}, batches[0])
    loss, g, _ = objective(params, {}, batches[0])
    assert info.loss == loss and info.norm == global_norm(g, clip.norm_type if clip else 2.0)
    if clip is None:
        for k in params:
            np.testing.assert_allclose(new[k], params[k] - 0.3 * g[k], rtol=1e-14, atol=1e-16)
    step = {k: new[k] - params[k] for k in params}
    if clip is not None and clip.kind == "global_norm":
        assert global_norm(step, clip.norm_type) <= 0.3 * clip.max_norm * (1 + 1e-12)
    if clip is not None and clip.kind == "value":
        assert global_norm(step, float("inf")) <= 0.3 * clip.clip_value * (1 + 1e-12)


def unclipped_step(objective: Any, sgd: SGDSpec, params: Any, state: Any, batch: Any) -> Any:
    return train_step(objective, replace(sgd, clip=None), params, state, batch)


def ascending_step(objective: Any, sgd: SGDSpec, params: Any, state: Any, batch: Any) -> Any:
    new, state, info = train_step(objective, sgd, params, state, batch)
    return {k: 2 * params[k] - new[k] for k in params}, state, info


def stale_step(objective: Any, sgd: SGDSpec, params: Any, state: Any, batch: Any) -> Any:
    """The gradient of a perturbed point (as if computed before the previous update)."""
    old = {k: v + 0.1 for k, v in params.items()}
    moved, state, info = train_step(objective, sgd, old, state, batch)
    return {k: params[k] - (old[k] - moved[k]) for k in params}, state, info


@pytest.mark.parametrize("wrong", [unclipped_step, ascending_step, stale_step])
@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
def test_a_wrong_step_is_detected(wrong: Any, seed: int) -> None:
    """The check against clip(finite differences) fails for an unclipped, ascending or stale update."""
    objective, params, batches = mlp_problem(mlp.MLPSpec((3, 5, 2), "tanh", "identity", "mse"), seed)
    sgd = SGDSpec(0.3, ClipSpec("global_norm", max_norm=0.01))
    _, g, _ = objective(params, {}, batches[0])
    if wrong is unclipped_step and global_norm(g) <= 0.02:
        return  # the clip would not bite: nothing to detect
    assert update_error(wrong, objective, sgd, params, batches[0]) > 1e-3


@SETTINGS
@given(spec=MLPS, clip=CLIPS, seed=SEEDS, split=st.integers(0, 3))
def test_steps_compose_and_nothing_is_mutated(spec: mlp.MLPSpec, clip: Any, seed: int, split: int) -> None:
    objective, params, batches = mlp_problem(spec, seed)
    before = copy.deepcopy((params, batches))
    sgd = SGDSpec(0.2, clip)
    final, _, infos = train(objective, sgd, params, {}, batches)
    mid, mid_state, first = train(objective, sgd, params, {}, batches[:split])
    again, _, rest = train(objective, sgd, mid, mid_state, batches[split:])
    assert infos == first + rest and all(isinstance(i, StepInfo) for i in infos)
    for k in params:
        np.testing.assert_array_equal(final[k], again[k])
        np.testing.assert_array_equal(params[k], before[0][k])
        assert final[k] is not params[k]
    for b, b0 in zip(batches, before[1], strict=True):
        for k in b:
            np.testing.assert_array_equal(b[k], b0[k])


@SETTINGS
@given(seed=SEEDS, dtype=st.sampled_from(["float32", "float64"]))
def test_a_frozen_b_hh_is_the_one_bias_rnn(seed: int, dtype: str) -> None:
    """b_hh frozen: the sum b_ih + b_hh trains as flax's one bias b (b_hh = 0, b = b_ih + b_hh)."""
    objective, params, batches = rnn_problem(seed)
    clip = ClipSpec("global_norm", max_norm=0.05, convention="optax")
    sgd = SGDSpec(0.2, clip, frozen=("b_hh",))
    final, _, infos = train(objective, sgd, params, {}, batches)
    one = {**params, "b_ih": params["b_ih"] + params["b_hh"], "b_hh": np.zeros(4)}
    final_one, _, infos_one = train(objective, sgd, one, {}, batches)
    np.testing.assert_array_equal(final["b_hh"], params["b_hh"])
    np.testing.assert_allclose(final["b_ih"] + params["b_hh"], final_one["b_ih"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose([i.norm for i in infos], [i.norm for i in infos_one], rtol=1e-12)
    _, g, _ = objective(params, {}, batches[0])
    assert infos[0].norm == global_norm({k: v for k, v in g.items() if k != "b_hh"})
    both, _, _ = train_step(objective, SGDSpec(0.2), params, {}, batches[0])  # torch: both move
    moved = (both["b_ih"] + both["b_hh"]) - (params["b_ih"] + params["b_hh"])
    np.testing.assert_allclose(moved, -2 * 0.2 * g["b_ih"], rtol=1e-10, atol=1e-14)
    cast = {k: v.astype(dtype) for k, v in params.items()}
    casted, _, _ = train(
        rnn_objective(replace(RNN, dtype=dtype)),
        sgd,
        cast,
        {},
        [{k: v.astype(dtype) for k, v in b.items()} for b in batches],
    )
    assert all(v.dtype == np.dtype(dtype) for v in casted.values())


@pytest.mark.parametrize("frozen", [("b1",), ("W2", "b2"), ("W1",)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frozen_gradients_leave_the_unclipped_norm(frozen: tuple[str, ...], seed: int) -> None:
    """Without clipping too, the reported pre-clip norm is that of the trained gradients only
    (torch: parameters with requires_grad=False; optax: outside the optimized pytree)."""
    objective, params, batches = mlp_problem(mlp.MLPSpec((3, 5, 2)), seed)
    sgd = SGDSpec(0.3, frozen=frozen)
    new, _, info = train_step(objective, sgd, params, {}, batches[0])
    _, g, _ = objective(params, {}, batches[0])
    trained = [x for k, v in g.items() if k not in frozen for x in v.reshape(-1)]
    everything = [x for v in g.values() for x in v.reshape(-1)]
    assert info.norm == pytest.approx(math.hypot(*trained), rel=1e-13), "the norm must leave frozen out"
    assert abs(math.hypot(*everything) - math.hypot(*trained)) > 1e-6 * math.hypot(*trained)
    for k in params:
        expected = params[k] if k in frozen else params[k] - 0.3 * g[k]
        np.testing.assert_allclose(new[k], expected, rtol=1e-14, atol=1e-16, err_msg=k)


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, clip=CLIPS, split=st.integers(0, 3))
def test_batch_norm_state_is_threaded_through_the_steps(seed: int, clip: Any, split: int) -> None:
    """Each step returns the running statistics of its forward (at θ_t), the next starts from them."""
    spec = mlp.MLPSpec((3, 6, 5, 2), "tanh", "identity", "mse", batchnorm=True)
    objective, params, batches = mlp_problem(spec, seed)
    rng = np.random.default_rng(seed)
    state = {k: rng.uniform(0.5, 2.0, size=v.shape) for k, v in mlp_bn.init_state(spec).items()}
    sgd = SGDSpec(0.2, clip)
    assert update_error(train_step, objective, sgd, params, batches[0], state) < 1e-6
    theta, s = params, state
    for batch in batches:
        _, _, forward_state = mlp_bn.loss_and_grads_state(
            spec, theta, batch["X"], batch["targets"], s, train=True
        )
        theta, s, _ = train_step(objective, sgd, theta, s, batch)
        for k in state:
            np.testing.assert_array_equal(s[k], forward_state[k])
    final, final_state, _ = train(objective, sgd, params, state, batches)
    for k in state:
        np.testing.assert_array_equal(final_state[k], s[k])
        assert not np.array_equal(final_state[k], state[k])
    mid, mid_state, _ = train(objective, sgd, params, state, batches[:split])
    again, again_state, _ = train(objective, sgd, mid, mid_state, batches[split:])
    for k in final:
        np.testing.assert_array_equal(final[k], again[k])
    for k in state:
        np.testing.assert_array_equal(final_state[k], again_state[k])


def test_sgd_update_keeps_the_dtype_and_untouched_parameters() -> None:
    params = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([3.0])}
    new = sgd_update(params, {"w": np.array([0.5, -1.0], np.float32)}, 0.1)
    assert new["w"].dtype == np.float32 and new["b"] is params["b"]
    np.testing.assert_array_equal(
        new["w"], np.array([1.0, 2.0], np.float32) - np.float32(0.1) * np.array([0.5, -1.0], np.float32)
    )


OBJ, PARAMS, BATCHES = mlp_problem(mlp.MLPSpec((3, 5, 2)), 0)


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda: SGDSpec(0.0), ValueError, "lr"),
        (lambda: SGDSpec(float("nan")), ValueError, "lr"),
        (lambda: SGDSpec(0.1, clip="global_norm"), TypeError, "clip"),  # type: ignore[arg-type]
        (lambda: SGDSpec(0.1, frozen=["b1"]), TypeError, "frozen"),  # type: ignore[arg-type]
        (lambda: train_step(OBJ, SGDSpec(0.1, frozen=("b9",)), PARAMS, {}, BATCHES[0]), ValueError, "frozen"),
        (lambda: train_step(OBJ, 0.1, PARAMS, {}, BATCHES[0]), TypeError, "sgd"),  # type: ignore[arg-type]
        (lambda: train_step("f", SGDSpec(0.1), PARAMS, {}, BATCHES[0]), TypeError, "objective"),
        (lambda: train_step(OBJ, SGDSpec(0.1), [1.0], {}, BATCHES[0]), TypeError, "params"),
        (lambda: train_step(OBJ, SGDSpec(0.1), PARAMS, {"r": [0.0]}, BATCHES[0]), TypeError, "state"),
        (lambda: train(OBJ, SGDSpec(0.1), PARAMS, {}, iter(BATCHES)), TypeError, "batches"),
        (lambda: sgd_update(PARAMS, {"W9": np.ones(1)}, 0.1), ValueError, "grads"),
        (lambda: sgd_update(PARAMS, {"W1": [1.0]}, 0.1), TypeError, "grads"),
    ],
)
def test_bad_input(call: Any, error: type[Exception], field: str) -> None:
    with pytest.raises(error, match=field):
        call()
