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
