"""A long run's compiled JAX programs are dropped before they exhaust the process's memory
mappings (conformance.frameworks.jax.release_compiled_programs): every XLA CPU program keeps
mappings until it is dropped, and at vm.max_map_count XLA's compiler dies of SIGSEGV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance.frameworks.jax import release_compiled_programs

jax = pytest.importorskip("jax")

if not Path("/proc/self/maps").exists():
    pytest.skip("no /proc: the mapping count is a Linux file", allow_module_level=True)


def mappings() -> int:
    with open("/proc/self/maps", "rb") as maps:
        return sum(1 for _ in maps)


def test_programs_are_dropped_beyond_the_share_of_the_limit_and_kept_below() -> None:
    @jax.jit
    def f(x: jax.Array) -> jax.Array:
        return jax.numpy.tanh(x @ x.T).sum()

    for n in range(1, 41):  # forty programs, one per shape
        f(np.ones((n, 3)))
    assert f._cache_size() == 40
    assert release_compiled_programs(share=1.0) is False  # below the whole limit: kept
    assert f._cache_size() == 40
    held = mappings()
    assert release_compiled_programs(share=0.0) is True
    assert f._cache_size() == 0
    assert mappings() < held - 40  # each program had mappings of its own
