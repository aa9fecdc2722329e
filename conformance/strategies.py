"""Strategy helpers every component shares: seeds, the profile's choice of shapes, parameter draws.

Hypothesis draws the structure of a case (sizes, activations, a seed); NumPy draws
the values from that seed, in each component's strategies module
(conformance/components/<name>/strategies.py). Under a profile with bounded shapes
(ci) the architectures come from a component's fixed catalog, so each compiled JAX
function is reused by every property; other profiles draw freely within bounds.

Parameters are drawn by the suite, as torch initializes its layers, and not by
refimpl: a fault in the reference's initialization must not change the cases every
implementation sees (the property init-distribution holds refimpl.init to the
frameworks' own initializations).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from hypothesis import strategies as st

from conformance.dtypes import finfo
from conformance.profiles import Profile

T = TypeVar("T")


def seeds() -> st.SearchStrategy[int]:
    """The NumPy seed a case's values are drawn from."""
    return st.integers(0, 2**32 - 1)


def catalog_or(profile: Profile, catalog: tuple[T, ...], free: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """The fixed catalog under a bounded profile (ci), else the free strategy."""
    return st.sampled_from(catalog) if profile.bounded_shapes else free


def uniform_fan_in(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """U(-1/√fan_in, 1/√fan_in) of `shape`, float64: torch's nn.Linear (weight and bias) and
    nn.RNN (every tensor, fan_in = the hidden size) defaults."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


# ---------------------------------------------------------------- extreme values
#
# A regime scales some of a case's arrays by a factor taken from the dtype's range, so that a
# float16 run meets its own extremes and a float64 run its own (conformance.profiles: the
# profile carries the test's dtype). Every answer stays representable in the dtype: the
# outputs, the loss and every gradient (a float16 loss of 1e6 would be an overflow of the
# math, not of an implementation).
#
#   logits     the readout's weights and bias times s: cross-entropy logits of about s
#              (1e4 and beyond; float16: 3e3, its loss and logit gaps stay below 65504), where
#              a softmax without the max shift overflows
#   saturated  the first layer's weights times 100: tanh and sigmoid pre-activations of
#              about ±100, outputs exactly ±1, 0 or 1 and derivatives 0 (or subnormal)
#   tiny       the inputs times 8 × the dtype's smallest normal number: products and
#              gradients near and below it (subnormal, or flushed to zero by XLA on CPU)
EXTREME_REGIMES = ("logits", "saturated", "tiny")
LOGIT_SCALES = {"float16": (3e3,), "bfloat16": (1e4, 1e6), "float32": (1e4, 1e6), "float64": (1e4, 1e8)}


def extreme_scale(regime: str, dtype: str, pick: int = 0) -> float:
    """The factor of `regime` in `dtype` (the pick-th of its choices, cyclically)."""
    if regime == "logits":
        choices = LOGIT_SCALES[dtype]
        return choices[pick % len(choices)]
    if regime == "saturated":
        return 100.0
    if regime == "tiny":
        return 8.0 * float(finfo(dtype).tiny)
    raise ValueError(f"regime: expected one of {list(EXTREME_REGIMES)}, received {regime!r}")


def scaled(arrays: dict[str, np.ndarray], names: tuple[str, ...], factor: float) -> dict[str, np.ndarray]:
    """The arrays with those named multiplied by `factor` (the rest unchanged)."""
    return {k: (v * factor if k in names else v) for k, v in arrays.items()}
