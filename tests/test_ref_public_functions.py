"""Every public function of refimpl validates what it gets: called with nonsense for each
required argument, it raises ValueError or TypeError naming a field, what it expected and
what it received, before any arithmetic; nothing answers, nothing fails inside NumPy.

Public means defined in a refimpl module under a name without a leading underscore. Helpers
that do not check their input are private (`_chunks`, `_log_softmax`, `_statistics`, the
module `refimpl._range`) and documented as such; this sweep keeps a new public function
from skipping its checks. (Each argument's own checks, one by one: test_ref_bad_input.py.)

The sweep covers the reference's layer modules and the entry points of its subpackages
(`refimpl.figures.render`), not the modules inside `refimpl.figures` (drawing functions,
each handed a matplotlib figure by `render`) and `refimpl.pitfalls` (measurements that
take the cases their own constructors build).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from typing import Any

import pytest

import refimpl


class Nonsense:
    """An argument no function of refimpl can accept: not a number, array, dict, spec or callable."""

    def __repr__(self) -> str:
        return "<nonsense>"


def public_functions() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for info in pkgutil.iter_modules(refimpl.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"refimpl.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                found.append((f"{info.name}.{name}", obj))
    return sorted(found, key=lambda item: item[0])


FUNCTIONS = public_functions()


def test_the_sweep_finds_the_functions_of_every_module() -> None:
    names = {name for name, _ in FUNCTIONS}
    assert {
        "clip.global_norm",
        "batchnorm.batch_statistics",
        "bptt.truncated_bptt",
        "train.sgd_update",
        "rnn.rnn_step_backward",
        "gradcheck.worst_mismatch",
        "losses.log_softmax",
    } <= names
    assert len(FUNCTIONS) >= 60


@pytest.mark.parametrize("function", [f for _, f in FUNCTIONS], ids=[name for name, _ in FUNCTIONS])
def test_nonsense_is_rejected_with_a_named_field(function: Callable[..., Any]) -> None:
    required = [
        p for p in inspect.signature(function).parameters.values() if p.default is inspect.Parameter.empty
    ]
    args = [Nonsense() for p in required if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    kwargs = {p.name: Nonsense() for p in required if p.kind is inspect.Parameter.KEYWORD_ONLY}
    with pytest.raises((TypeError, ValueError)) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert re.match(r"^[\w\[\]'.,() ]+: expected ", message), message
    assert "received" in message, message
