"""Clipping's spec and reference runner: refimpl.clip answering the backend contract.

A case holds a dict of gradient tensors (case.inputs, keyed like parameters:
"W1", "b1", ...), the parameters they belong to (case.params, same keys: torch
attaches the gradients to real parameters) and a `ClipCaseSpec`. Nothing is
differentiated: the outputs are

    "clipped/<k>"      the clipped gradient of tensor k
    "norm"             the pre-clip global norm of order norm_type (kind "global_norm" only)
    "nonfinite_error"  1.0 when the norm is NaN or inf and error_if_nonfinite=True made
                       the implementation raise (then the only output), else 0.0
    "unclipped/<k>"    witnesses: the caller's unclipped gradient (the reference's argument,
    "param/<k>"        torch's saved clone, optax's input) and the parameters, read after
    "activation/<k>"   clipping; the property clip-isolation demands they are unchanged

The reference runs under the spec's `convention` ("torch" or "optax", see
refimpl/clip.py); each framework adapter declares its own in CONVENTIONS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.backend import Outcome, as_float64, cast_floats
from conformance.case import Arrays, Case
from refimpl._validate import SPEC_DTYPES, describe, require_choice
from refimpl.clip import (
    TORCH_EPS,
    ClipSpec,
    NonFiniteNormError,
    apply_clip,
    spec_from_json,
    spec_to_json,
)

PRIMARY = ("clipped/", "norm", "nonfinite_error")  # what agreement compares; the rest are witnesses
WITNESSES = ("unclipped/", "param/", "activation/")


@dataclass(frozen=True)
class ClipCaseSpec:
    """A clipping step (the fields of refimpl.clip.ClipSpec), torch's code path and the dtype."""

    kind: str = "global_norm"  # "global_norm" (max_norm) or "value" (clip_value)
    max_norm: float | None = 1.0  # M; None for kind "value"
    clip_value: float | None = None  # v; None for kind "global_norm"
    norm_type: float = 2.0  # 2.0 or inf; optax clips by the L2 norm only
    convention: str = "torch"  # "torch" (clip_grad_norm_), "optax" or "tensorflow" (clip_by_global_norm)
    eps: float = TORCH_EPS  # torch's 1e-6; unused by the optax convention
    error_if_nonfinite: bool = False  # torch's flag; optax has none
    foreach: bool = True  # torch's code path: _foreach_norm/_foreach_mul_ or a loop of mul_; math unchanged
    dtype: str = "float64"  # "float32" or "float64", for gradients and parameters

    def __post_init__(self) -> None:
        self.clip_spec()  # validates every clipping field, naming it
        if not isinstance(self.foreach, bool):
            raise TypeError(f"foreach: expected a bool, received {describe(self.foreach)}")
        require_choice("dtype", self.dtype, SPEC_DTYPES)

    def clip_spec(self) -> ClipSpec:
        return ClipSpec(
            kind=self.kind,
            max_norm=self.max_norm,
            clip_value=self.clip_value,
            norm_type=self.norm_type,
            convention=self.convention,
            eps=self.eps,
            error_if_nonfinite=self.error_if_nonfinite,
        )

    @property
    def threshold(self) -> float:
        """M for kind "global_norm", v for kind "value"."""
        value = self.max_norm if self.kind == "global_norm" else self.clip_value
        assert value is not None  # guaranteed by ClipSpec's validation
        return value

    def to_json(self) -> str:
        return spec_to_json(self)

    @classmethod
    def from_json(cls, text: str) -> ClipCaseSpec:
        result: ClipCaseSpec = spec_from_json(cls, text)
        return result


def primary(outputs: Arrays) -> Arrays:
    """The outputs agreement compares: clipped tensors, norm, nonfinite_error."""
    return {k: v for k, v in outputs.items() if k.startswith(PRIMARY)}


def error_outcome() -> Outcome:
    """What an implementation that raised on a non-finite norm reports."""
    return Outcome({"nonfinite_error": np.ones(())}, {}, {})


def clip_reference(case: Case, cotangents: Arrays | None = None) -> Outcome:
    """refimpl.clip.apply_clip in case.spec.dtype; no gradients (nothing is differentiated)."""
    spec: ClipCaseSpec = case.spec
    grads = cast_floats(case.inputs, spec.dtype)
    try:
        clipped, norm = apply_clip(spec.clip_spec(), grads)
    except NonFiniteNormError:
        return error_outcome()
    outputs: dict[str, Any] = {f"clipped/{k}": v for k, v in clipped.items()}
    if spec.kind == "global_norm":
        outputs["norm"] = np.asarray(norm)
    outputs["nonfinite_error"] = np.zeros(())
    outputs.update({f"unclipped/{k}": v for k, v in grads.items()})  # the argument, after the call
    return Outcome(as_float64(outputs), {}, {})


# The golden set's layouts (conformance/golden): fixed, since changing one changes stored data.
GOLDEN_LAYOUTS = (
    (("W1", (5, 3)), ("b1", (5,)), ("W2", (2, 5)), ("b2", (2,))),
    (("w", (7,)),),
    (("W_ih", (4, 3)), ("W_hh", (4, 4)), ("b_ih", (4,)), ("b_hh", (4,)), ("W_out", (2, 4)), ("b_out", (2,))),
    (("scale", ()), ("kernel", (3, 2, 2))),
)
