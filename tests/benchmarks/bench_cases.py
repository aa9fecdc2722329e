"""Each case of cases.py, for each implementation, one benchmark; the matmul peak per dtype."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from .cases import CASES, IMPLEMENTATIONS, PEAK_SIZE, finiteness_scan_off, matmul_peak

FRAMEWORK_MODULES = {"torch": "torch", "jax": "flax"}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", CASES, ids=[case.name.replace(" ", "_") for case in CASES])
def test_case(benchmark: Any, case: Any, implementation: str) -> None:
    if implementation in FRAMEWORK_MODULES:
        pytest.importorskip(FRAMEWORK_MODULES[implementation])
    built = case.build(implementation)
    benchmark.group = case.name
    benchmark.extra_info.update(
        case=case.name,
        implementation=implementation,
        dtype=case.dtype,
        flops=case.flops,
        first_call_s=built.first_call_s,
    )
    scan_off = finiteness_scan_off() if implementation == "reference-noscan" else contextlib.nullcontext()
    with scan_off:
        benchmark(built.step)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_peak(benchmark: Any, dtype: str) -> None:
    step, flops = matmul_peak(dtype)
    step()
    benchmark.group = f"np.matmul {PEAK_SIZE} x {PEAK_SIZE}"
    benchmark.extra_info.update(peak=dtype, flops=flops)
    benchmark(step)
