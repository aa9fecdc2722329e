"""The pitfalls of docs/pitfalls.md, measured on the reference: each number held to what the
math says it must be (refimpl/pitfalls/*.py derive the bounds in their docstrings)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.pitfalls import clipping, depth, dying, recurrent

L = depth.DEPTH


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("gain", ["torch", "lecun", "he", "2he"])
def test_relu_stacks_scale_by_chi_per_layer(activation: str, gain: str) -> None:
    """‖∂L/∂b¹‖ / ‖∂L/∂bᴸ‖ ≈ χ^{(L-1)/2}, χ = g²/2: 5e-5 at torch's init, ~1 at He's, ~2e3 at twice
    He's. Within 10x either way: eleven random layers of width 64 each move ‖δ‖ by a few percent."""
    predicted = depth.chi(activation, depth.GAINS[gain]) ** ((L - 1) / 2)
    assert predicted / 10 < depth.first_to_last(activation, depth.GAINS[gain]) < predicted * 10


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_saturating_stacks_vanish_at_torch_init(activation: str) -> None:
    """f' <= 1/4 (sigmoid) or 1 (tanh) makes χ at most g²/16 or g²: at torch's g² = 1/3 the first
    layer gets below 10 χ^{11/2}: < 6e-9 for sigmoid, < 3e-2 for tanh."""
    bound = 10 * depth.chi(activation, depth.TORCH_GAIN) ** ((L - 1) / 2)
    assert depth.first_to_last(activation, depth.TORCH_GAIN) < bound


def test_sigmoid_delta_obeys_its_strict_bound() -> None:
    """‖δˡ‖ / ‖δᴸ‖ <= ∏ ‖Wᵏ‖₂ / 4 for every layer and any weights; at torch's init the spectral
    norm of a 64x64 U(±1/8) matrix is about 2/√3, so the first layer is below (0.3)^11 ≈ 2e-6."""
    for gain in depth.GAINS.values():
        case = depth.depth_case("sigmoid", L, gain=gain)
        deltas = depth.delta_profile(case)
        assert np.all(deltas / deltas[-1] <= depth.sigmoid_bound(case) * (1 + 1e-12))
    assert depth.sigmoid_bound(depth.depth_case("sigmoid", L))[0] < 2e-6


def test_no_gain_rescues_sigmoid_and_large_gains_explode_tanh() -> None:
    assert all(depth.first_to_last("sigmoid", g) < 1e-3 for g in depth.GAINS.values())
    assert depth.first_to_last("tanh", depth.GAINS["2he"]) > 10  # χ = 8 E[tanh'²] > 1: chaos


def test_large_steps_kill_relus_for_good_and_leave_leaky_relus_alive() -> None:
    relu, leaky = dying.dying_case("relu"), dying.dying_case("leaky_relu")
    before = dying.count_units(relu, relu.params)
    after = dying.count_units(relu, dying.large_steps(relu))
    assert np.array_equal(after.off, after.dead)  # relu: off on every example <=> zero gradient
    assert np.all(after.dead[before.dead]) and after.dead.mean() > 0.5
    leaky_after = dying.count_units(leaky, dying.large_steps(leaky))
    assert leaky_after.off.mean() > 0.5 and not leaky_after.dead.any()  # off, never dead: f' = a > 0


def test_dead_relus_never_move_again() -> None:
    """A dead unit's row of W1 and b1 gets an exact zero gradient, so ordinary steps after the
    large ones leave it bit for bit as it was, and the dead set only grows."""
    case = dying.dying_case("relu")
    params = dying.large_steps(case)
    dead = dying.count_units(case, params).dead
    run = dying.dying_run(case)
    assert np.all(np.diff(run.dead) >= 0)
    later = dying.large_steps(case, params)
    np.testing.assert_array_equal(later["W1"][dead], params["W1"][dead])
    np.testing.assert_array_equal(later["b1"][dead], params["b1"][dead])


def test_the_aliasing_clip_replaces_the_weights_and_stalls() -> None:
    """θ_{t+1} = (c_t - η) g_t: the loss stops moving in the second half, while the correct clip
    keeps descending; both start from the same weights and clip at the same M."""
    case = clipping.clip_case()
    runs = clipping.clip_runs(case)
    correct, aliasing = runs["correct"].losses, runs["aliasing"].losses
    half = case.steps // 2
    assert np.all(np.diff(correct) < 0) and correct[-1] < 0.6 * correct[0]
    assert abs(aliasing[-1] - aliasing[half]) < 1e-3 * aliasing[half]
    assert aliasing[-1] > correct[0]


def test_the_aliasing_step_is_a_multiple_of_the_gradient() -> None:
    case = clipping.clip_case()
    params, grads = case.params, clipping.gradients(case, case.params)
    new, seen, norm = clipping.clip_flat_aliasing(params, grads, case.max_norm)
    c = min(1.0, case.max_norm / (norm + 1e-6))
    for k in params:
        np.testing.assert_allclose(new[k] - case.lr * seen[k], (c - case.lr) * grads[k], rtol=1e-12)
        assert new[k].base is not None and new[k].base is new["W1"].base  # views of one buffer


@pytest.mark.parametrize("rho", [0.9, 1.1])
@pytest.mark.parametrize("scale", [0.01, 1.0])
def test_each_step_back_scales_the_gradient_between_the_bounds(rho: float, scale: float) -> None:
    """ρ min(d_t) <= ‖g_{t-1}‖ / ‖g_t‖ <= ρ at every step (W_hh = ρ Q, d_t = 1 - h_t²)."""
    case = recurrent.recurrent_case(rho, scale)
    norms = recurrent.profile(case)
    ratio = norms[:-1] / norms[1:]
    low, high = recurrent.step_bounds(case)
    assert np.all(low * (1 - 1e-12) <= ratio) and np.all(ratio <= high * (1 + 1e-12))


def test_rnn_gradients_vanish_below_one_and_explode_above_while_unsaturated() -> None:
    T = 32
    assert recurrent.profile(recurrent.recurrent_case(0.9, 1.0)).min() > 0
    vanishing = recurrent.profile(recurrent.recurrent_case(0.9, 0.01))
    assert vanishing[0] / vanishing[-1] <= 0.9 ** (T - 1)  # ≈ 0.038, whatever the inputs
    exploding = recurrent.profile(recurrent.recurrent_case(1.1, 0.01))
    assert exploding[0] / exploding[-1] > 0.5 * 1.1 ** (T - 1)  # states < 0.3: d_t > 0.9
    saturated = recurrent.profile(recurrent.recurrent_case(1.1, 1.0))
    assert saturated[0] / saturated[-1] < 1  # ρ > 1 is necessary, not sufficient


def test_truncation_restarts_the_profile_at_each_boundary() -> None:
    case = recurrent.recurrent_case(0.9, 0.1, T=48, readout="every")
    np.testing.assert_array_equal(recurrent.truncated_profile(case, 48), recurrent.profile(case))
    truncated = recurrent.truncated_profile(case, 8)
    np.testing.assert_array_equal(truncated[40:], recurrent.profile(case)[40:])  # the last chunk
    assert np.all(truncated[:40] < recurrent.profile(case)[:40])


def test_clipping_bounds_every_update_of_the_exploding_rnn() -> None:
    """‖θ_{t+1} - θ_t‖ = η ‖ĝ_t‖ <= η M: S clipped steps move the weights at most S η M."""
    case = recurrent.clipping_case()
    runs = recurrent.clipping_runs(case)
    assert runs["unclipped"].norms[0] > 50 * recurrent.CLIP_MAX_NORM
    moved = np.sqrt(sum(np.sum((runs["clipped"].params[k] - case.params[k]) ** 2) for k in case.params))
    assert moved <= recurrent.CLIP_STEPS * recurrent.CLIP_LR * recurrent.CLIP_MAX_NORM
    assert runs["unclipped"].losses[-1] > 1e3 * runs["clipped"].losses[-1]
