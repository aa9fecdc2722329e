"""The benchmark summary: ratios to torch and JAX, GFLOP/s against the matmul peak.

Printed at the end of the benchmark run (tests/benchmarks/conftest.py), or from
a saved run:

    pytest tests/benchmarks ... --benchmark-json=bench.json
    python -m tests.benchmarks.summary bench.json

Times are the fastest of pytest-benchmark's rounds, the round least disturbed
by whatever else the machine runs (the medians are in pytest-benchmark's own
table). "ref/torch" above 1 means the reference is slower than torch eager.
"GFLOP/s" counts only the matrix products of a pass (cases.py), against
np.matmul of two 512 x 512 matrices of the same dtype measured in the same run.
"scan" is the share of the reference's time spent in the finiteness checks of
its input validation.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _openblas_by_ctypes() -> dict[str, Any]:
    """OpenBLAS's own answer (threads, the kernel it chose), where threadpoolctl is missing."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return {}
    paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_", ""):
            for suffix in ("64_", ""):
                corename = getattr(lib, f"{prefix}openblas_get_corename{suffix}", None)
                threads = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                if corename is not None and threads is not None:
                    corename.restype = ctypes.c_char_p
                    return {"blas threads": int(threads()), "blas kernel": corename().decode()}
    return {}


def environment() -> dict[str, Any]:
    """The machine and the thread counts each implementation runs with."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "numpy": np.__version__,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    info["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info["blas threads"] = pools[0]["num_threads"]
            info["blas kernel"] = pools[0].get("architecture", "?")
    except ImportError:
        info.update(_openblas_by_ctypes())
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = f"{torch.__version__}, {torch.get_num_threads()} intra-op threads"
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        info["jax"] = f"{jax.__version__}, devices {[str(d) for d in jax.devices()]}"
    return info


def _fastest(bench: dict[str, Any]) -> float:
    return float(bench["stats"]["min"])


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def _ms(seconds: float | None) -> str:
    return f"{1e3 * seconds:.3f}" if seconds else "-"


def render(benchmarks: list[dict[str, Any]], env: dict[str, Any]) -> str:
    """The summary text from pytest-benchmark's per-benchmark dicts (the JSON's "benchmarks")."""
    times: dict[str, dict[str, float]] = {}
    flops: dict[str, float] = {}
    first_call: dict[str, float] = {}
    dtypes: dict[str, str] = {}
    peaks: dict[str, float] = {}
    hunt: list[str] = []
    for bench in benchmarks:
        extra = bench.get("extra_info", {})
        if "case" in extra:
            case = extra["case"]
            times.setdefault(case, {})[extra["implementation"]] = _fastest(bench)
            flops[case], dtypes[case] = extra["flops"], extra["dtype"]
            if extra.get("first_call_s") is not None:
                first_call[case] = extra["first_call_s"]
        elif "peak" in extra:
            peaks[extra["peak"]] = extra["flops"] / _fastest(bench) / 1e9
        elif "hunt" in extra:
            hunt.append(
                f"| {extra['hunt']:<8} | {extra['cases'] / _fastest(bench):>8,.0f} "
                f"| {extra['first_round_s']:>13.1f} | "
                + ", ".join(f"{k} {v:.0%}" for k, v in sorted(extra["split"].items(), key=lambda kv: -kv[1]))
                + " |"
            )

    timer = benchmarks[0].get("options", {}).get("timer", "?") if benchmarks else "?"
    lines = ["", "benchmark summary (fastest rounds; ratios = reference time / framework time)"]
    lines += [f"  {key}: {value}" for key, value in {**env, "timer": timer}.items()]
    lines += [
        f"  np.matmul {n} x {n} peak, {dtype}: {gflops:.1f} GFLOP/s"
        for dtype, gflops in sorted(peaks.items())
        for n in [512]
    ]
    header = (
        f"| {'case':<38} | ref ms | torch ms | jax ms | ref/torch | ref/jax | jax 1st call s "
        f"| ref GFLOP/s | % peak | scan |"
    )
    lines += ["", header, "|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|"]
    for case, t in times.items():
        ref = t.get("reference")
        gflops = flops[case] / ref / 1e9 if ref and flops[case] else None
        peak = peaks.get(dtypes[case])
        noscan = t.get("reference-noscan")
        scan = f"{100 * (1 - noscan / ref):.0f}%" if ref and noscan else "-"
        lines.append(
            f"| {case:<38} | {_ms(ref):>6} | {_ms(t.get('torch')):>8} | {_ms(t.get('jax')):>6} "
            f"| {_ratio(ref, t.get('torch')):>9} | {_ratio(ref, t.get('jax')):>7} "
            f"| {first_call.get(case, 0.0):>14.2f} "
            f"| {f'{gflops:.3g}' if gflops else '-':>11} "
            f"| {f'{100 * gflops / peak:.0f}%' if gflops and peak else '-':>6} | {scan:>4} |"
        )
    if hunt:  # bench_hunt.py: the hunt's fast lane, cases checked in torch and JAX, both dtypes
        lines += [
            "",
            "| hunt     | cases/s  | 1st round s   | share of a round |",
            "|----------|----------|---------------|------------------|",
            *hunt,
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.benchmarks.summary BENCHMARK_JSON", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text())
    machine = data.get("machine_info", {})
    env = machine.get("backprop_conformance") or {"cpu": machine.get("cpu", {}).get("brand_raw", "?")}
    print(render(data["benchmarks"], env))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
