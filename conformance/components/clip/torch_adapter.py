"""Clipping in torch: `clip_grad_norm_` and `clip_grad_value_` on the .grad of real parameters.

The gradients reach the parameters through a real backward pass: with an
"activation" a_k holding the case's gradient k, Σ_k <p_k, a_k> has ∂/∂p_k = a_k
exactly (autograd's MulBackward computes 1 · a_k into a new tensor). Then, as a
training loop does, the adapter clips in place and reads back the clipped .grad
and the witnesses: the parameters as the optimizer will step them (read
through the Parameter objects after the call, so a routine that swaps their
storage, as `vector_to_parameters` does with `param.data = ...`, is seen as well
as one that writes into it), the activations autograd saved, and a clone of
each .grad taken before clipping. `spec.foreach` selects torch's code path (True: _foreach_norm
and _foreach_mul_; False: a loop of vector_norm and mul_).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.clip.reference import ClipCaseSpec, error_outcome
from conformance.frameworks.torch import from_numpy, to_numpy
from conformance.frameworks.torch_paths import laid_out, path_of

CONVENTIONS: dict[str, object] = {
    "convention": "torch",  # coef = clamp(M / (n + eps), max=1), always multiplied in
    "eps": 1e-6,  # hard-coded in torch.nn.utils.clip_grad._clip_grads_with_norm_
}

# Looked up at call time, so a test can swap in a faulty clipping function.
CLIP_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "global_norm": lambda params, spec: torch.nn.utils.clip_grad_norm_(
        params,
        spec.max_norm,
        norm_type=spec.norm_type,
        error_if_nonfinite=spec.error_if_nonfinite,
        foreach=spec.foreach,
    ),
    "value": lambda params, spec: torch.nn.utils.clip_grad_value_(
        params, spec.clip_value, foreach=spec.foreach
    ),
}


def _numpy(t: torch.Tensor) -> np.ndarray:
    return to_numpy(t)


def paths(case: Case, device: torch.device) -> tuple[str, ...]:
    """The other of torch's two code paths: "loop" (foreach=False) for a foreach case, and
    "foreach" for a loop case (conformance.paths)."""
    return ("loop",) if case.spec.foreach else ("foreach",)


def layouts(case: Case, device: torch.device) -> tuple[str, ...]:
    """Every .grad replaced by its values as a strided view or transposed before clipping."""
    return ("contiguous", "strided", "transposed")


def run(case: Case, cotangents: Arrays | None, device: torch.device) -> Outcome:
    spec: ClipCaseSpec = case.spec
    if spec.convention != "torch":
        raise ValueError(f"convention: torch implements 'torch', received {spec.convention!r}")
    path = path_of(case, ("foreach", "loop"))
    if path is not None:
        spec = replace(spec, foreach=path == "foreach")
    params = cast_floats(case.params, spec.dtype)
    grads = cast_floats(case.inputs, spec.dtype)
    own = {k: nn.Parameter(from_numpy(params[k]).to(device)) for k in grads}
    activations = {k: from_numpy(grads[k]).to(device) for k in grads}
    objective = sum((own[k] * activations[k]).sum() for k in grads)
    assert isinstance(objective, torch.Tensor)
    objective.backward()
    layout = case.meta.get("layout", "contiguous")
    for p in own.values():
        p.grad = laid_out(p.grad, layout)
    saved = {k: p.grad.clone() for k, p in own.items() if p.grad is not None}
    try:
        norm = CLIP_FUNCTIONS[spec.kind](list(own.values()), spec)
    except RuntimeError as err:
        if "non-finite" not in str(err):
            raise
        return error_outcome()
    outputs: dict[str, np.ndarray] = {}
    for k, p in own.items():
        assert p.grad is not None
        outputs[f"clipped/{k}"] = _numpy(p.grad)
    if spec.kind == "global_norm":
        outputs["norm"] = _numpy(norm)
    outputs["nonfinite_error"] = np.zeros(())
    for k in grads:
        outputs[f"unclipped/{k}"] = _numpy(saved[k])
        outputs[f"param/{k}"] = _numpy(own[k])  # after the call: p.data may be new storage
        outputs[f"activation/{k}"] = _numpy(activations[k])
    return Outcome(outputs, {}, {})
