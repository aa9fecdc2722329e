"""The contract every implementation answers, whatever the framework.

For a case (spec, float64 master parameters, batch, state, mode) and a dtype,
an adapter returns an `Outcome`:

* outputs: the component's outputs by name ("Y", "loss", ...);
* grads: for cotangents c (a dict keyed by output names), the gradient of
  Σ_k <c_k, output_k> with respect to every parameter and every
  differentiable input, keyed by the reference's names ("W1", "b1", "X", ...);
  a random cotangent on "Y" is the random upstream gradient, {"loss": 1} the
  loss gradient;
* state: the new non-trainable state (batch-norm running statistics).

`jvp` returns the forward-mode derivative of the outputs along tangents keyed
like grads (the framework's forward mode, checked against its reverse mode).
`call` asks for anything else a component's properties need from a framework
(the RNN's per-step hidden-state gradients, say): the component names it, each
adapter that can answers it, and no property asks which framework it is talking to.
Results come back as float64 NumPy arrays, converted only after the framework
computed in the dtype under test.

A framework's adapter for a component is a module (conformance.framework describes
it): `CONVENTIONS`, `run(case, cotangents, device)`, optionally `jvp(case, tangents,
device)` and any capability `name(case, device)` that `call` reaches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from conformance.case import Arrays, Case
from conformance.dtypes import numpy_dtype


class Outcome(NamedTuple):
    outputs: Arrays
    grads: Arrays
    state: Arrays


class Unsupported(Exception):
    """This backend cannot answer this question (a skip, with the reason)."""


class Backend(ABC):
    name: str
    device: str

    @abstractmethod
    def version(self) -> str:
        """The framework version, as reported in the matrix."""

    def conventions(self, component: str) -> dict[str, object]:
        """Spec fields this framework fixes for a component (leaky_kink, momentum, ...)."""
        return {}

    @abstractmethod
    def run(self, case: Case, cotangents: Arrays | None = None) -> Outcome:
        """Outputs, gradients of Σ <cotangent, output> (if cotangents given) and new state."""

    def jvp(self, case: Case, tangents: Arrays) -> Arrays:
        """Forward-mode derivative of every output along `tangents`."""
        raise Unsupported(f"{self.name} has no forward mode")

    def call(self, case: Case, capability: str) -> Any:
        """A component-specific answer (e.g. "hidden_grad_norms"), or Unsupported."""
        raise Unsupported(f"{self.name} cannot answer {capability!r} for {case.component}")


def require_conventions(
    framework: str, spec: object, conventions: dict[str, object], names: tuple[str, ...]
) -> None:
    """Each named spec field holds the framework's value: a reference setting it cannot follow."""
    for name in names:
        if getattr(spec, name) != conventions[name]:
            raise ValueError(
                f"{name}: {framework} implements {conventions[name]!r}, received {getattr(spec, name)!r}"
            )


def as_float64(arrays: Mapping[str, object]) -> Arrays:
    return {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}


def cast_floats(arrays: Arrays, dtype: str) -> Arrays:
    """Floating arrays cast to dtype; integer arrays (labels) unchanged."""
    cast = numpy_dtype(dtype)  # bfloat16 through ml_dtypes
    return {k: (v.astype(cast) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
