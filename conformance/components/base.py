"""What a component is: data the suite needs to run any property on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conformance.backends.base import Outcome
from conformance.case import Arrays, Case


@dataclass(frozen=True)
class Component:
    name: str
    spec_class: type[Any]
    inputs: tuple[str, ...]  # differentiable inputs: gradients are reported for these
    outputs: tuple[str, ...]
    reference: Callable[[Case, Arrays | None], Outcome]  # refimpl answering the backend contract
    golden_case: Callable[[int], Case]  # seed -> a deterministic case, for the golden set
