"""Strategy helpers every component shares: seeds, and the profile's choice of shapes.

Hypothesis draws the structure of a case (sizes, activations, a seed); NumPy draws
the values from that seed, in each component's strategies module
(conformance/components/<name>/strategies.py). Under a profile with bounded shapes
(ci) the architectures come from a component's fixed catalog, so each compiled JAX
function is reused by every property; other profiles draw freely within bounds.
"""

from __future__ import annotations

from typing import TypeVar

from hypothesis import strategies as st

from conformance.profiles import Profile

T = TypeVar("T")


def seeds() -> st.SearchStrategy[int]:
    """The NumPy seed a case's values are drawn from."""
    return st.integers(0, 2**32 - 1)


def catalog_or(profile: Profile, catalog: tuple[T, ...], free: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """The fixed catalog under a bounded profile (ci), else the free strategy."""
    return st.sampled_from(catalog) if profile.bounded_shapes else free
