"""Bugs that once survived the whole suite, planted again: the tests written for them must fail.

A mutant is the reference function's own source with one line changed, compiled in its
module's namespace; its code object replaces the original's for the test (monkeypatch
restores it), so every caller sees it, including the test modules that imported the
function by name. Each planted bug is a plausible slip of a hand derivation:

* train_step reports the pre-clip norm of every gradient, frozen ones included, when it
  does not clip (every frozen test used to clip, where the norm comes from apply_clip);
* rnn_step_backward carries ∂L/∂h_t W_hh back instead of δ_t W_hh: f'(z) dropped on the
  recurrent path (the sequence backward does not call the step, so nothing else noticed).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any

import pytest
import test_ref_rnn_step  # tests/ is on sys.path (its conftest.py), as for `gradients`
import test_ref_train

from refimpl import rnn, train


def mutant_code(function: Callable[..., Any], line: str, replacement: str) -> CodeType:
    """The code of `function` with `line` (which occurs exactly once) replaced."""
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(line) == 1, f"{function.__name__} no longer contains {line!r}"
    namespace: dict[str, Any] = {}
    exec(
        compile(source.replace(line, replacement), inspect.getfile(function), "exec"),
        function.__globals__,
        namespace,
    )
    return namespace[function.__name__].__code__  # type: ignore[no-any-return]


@pytest.fixture
def plant(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[..., Any], str, str], None]]:
    def planted(function: Callable[..., Any], line: str, replacement: str) -> None:
        monkeypatch.setattr(function, "__code__", mutant_code(function, line, replacement))

    yield planted


FROZEN_IN_THE_NORM = (
    "clipped, norm = trained, global_norm(trained)",
    "clipped, norm = trained, global_norm(grads)",
)
STEP_BUGS = {
    "dh_prev from dh_t": (
        "return StepGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)",
        "return StepGrads(dx, dh_t @ cache.hh.W, dW_ih, dW_hh, db_ih, db_hh)",
    ),
    "recurrent linear fed dh_t": (
        "dh_prev, dW_hh, db_hh = linear_backward(delta, cache.hh)",
        "dh_prev, dW_hh, db_hh = linear_backward(dh_t, cache.hh)",
    ),
}


def test_the_survivor_tests_pass_on_the_reference() -> None:
    test_ref_train.test_frozen_gradients_leave_the_unclipped_norm(("W2", "b2"), 0)
    for seed, nonlinearity in test_ref_rnn_step.CASES:
        test_ref_rnn_step.test_step_backward_matches_finite_differences(seed, nonlinearity)
        test_ref_rnn_step.test_the_sequence_backward_is_the_step_backward_chained(seed, nonlinearity, 2)


@pytest.mark.parametrize("frozen", [("b1",), ("W2", "b2"), ("W1",)])
def test_frozen_gradients_in_the_unclipped_norm_fail(plant: Any, frozen: tuple[str, ...]) -> None:
    plant(train.train_step, *FROZEN_IN_THE_NORM)
    with pytest.raises(AssertionError, match="the norm must leave frozen out"):
        test_ref_train.test_frozen_gradients_leave_the_unclipped_norm(frozen, 0)


@pytest.mark.parametrize("bug", sorted(STEP_BUGS))
@pytest.mark.parametrize(("seed", "nonlinearity"), test_ref_rnn_step.CASES)
def test_a_step_backward_without_f_prime_on_the_recurrent_path_fails(
    plant: Any, bug: str, seed: int, nonlinearity: str
) -> None:
    plant(rnn.rnn_step_backward, *STEP_BUGS[bug])
    with pytest.raises(AssertionError, match="h_prev"):
        test_ref_rnn_step.test_step_backward_matches_finite_differences(seed, nonlinearity)
    for T in (1, 3):
        with pytest.raises(AssertionError, match=rf"{nonlinearity}, T = {T}"):
            test_ref_rnn_step.test_the_sequence_backward_is_the_step_backward_chained(seed, nonlinearity, T)
