"""init-distribution fails when an initialization is wrong, on either side, and its test is sound.

The reference's scheme with fan-out for fan-in or a doubled bound, torch's nn.Linear with
fan-out, flax held to torch's scheme: each fails the property through the real frameworks.
The Kolmogorov-Smirnov bound is checked against SciPy's exact two-sample p-value, and its
false-alarm rate and power are measured on fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from runs import META_RUN

from conformance.compare import ConformanceFailure
from conformance.components.mlp import test_mlp
from conformance.initialization import ks_critical, ks_false_alarm_bound, ks_statistic
from refimpl import init

MODULES = {"torch": "torch", "jax": "flax"}


# ---------------------------------------------------------------- the statistics


@pytest.mark.parametrize(("n", "c"), [(10, 5), (50, 12), (200, 30), (1000, 60), (2000, 170)])
def test_false_alarm_bound_is_above_the_exact_p_value_and_close_to_it(n: int, c: int) -> None:
    """Samples shifted to D = c/n exactly; SciPy's exact P(D >= c/n) under one law. The bound
    (the first term of the alternating sum) is above it, up to rounding (1e-12 relative),
    and within 1% of it where it matters (p < 0.2)."""
    stats = pytest.importorskip("scipy.stats")
    a, b = np.arange(n, dtype=float), np.arange(n) + c - 0.5
    assert ks_statistic(a, b) == c / n
    exact = stats.ks_2samp(a, b, method="exact").pvalue
    bound = ks_false_alarm_bound(n, c)
    assert exact * (1 - 1e-12) <= bound <= exact * 1.01, (exact, bound)


def test_false_alarm_rate_and_power_on_fixed_seeds() -> None:
    """400 pairs of samples of one law (U(-1, 1), n = 500) at alpha = 0.05: at most 5% rejected
    in expectation, so 8% (2.8 standard deviations above) is never exceeded with these seeds;
    U(±1) against U(±2) (D = 0.25) at alpha = 1e-6 with n = 2000 is rejected every time."""
    critical = ks_critical(500, alpha=0.05)
    rejected = 0
    for seed in range(400):
        rng = np.random.default_rng(seed)
        rejected += ks_statistic(rng.uniform(-1, 1, 500), rng.uniform(-1, 1, 500)) >= critical
    assert rejected / 400 <= 0.08
    for seed in range(20):
        rng = np.random.default_rng(seed)
        assert ks_statistic(rng.uniform(-1, 1, 2000), rng.uniform(-2, 2, 2000)) >= ks_critical(2000)


# ---------------------------------------------------------------- faults, through the frameworks


def run_init(framework: str) -> None:
    test_mlp.test_init_distribution(framework=framework, dtype="float64", conformance_run=META_RUN)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_the_reference_as_it_is_passes(framework: str) -> None:
    pytest.importorskip(MODULES[framework])
    run_init(framework)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_reference_with_fan_out_fails(monkeypatch: pytest.MonkeyPatch, framework: str) -> None:
    """Wˡ drawn for D_l inputs instead of D_{l-1}: the (3, 5, 2) network's W1 comes out narrower,
    and the framework's draws fall outside the bound the reference declares."""
    pytest.importorskip(MODULES[framework])
    mlp_inits = init.mlp_inits

    def fan_out(sizes: tuple[int, ...], batchnorm: bool, scheme: str) -> dict[str, init.Init]:
        inits = mlp_inits(sizes, batchnorm, scheme)
        return {**inits, **{f"W{l}": init.dense(scheme, sizes[l])[0] for l in range(1, len(sizes))}}

    monkeypatch.setattr(init, "mlp_inits", fan_out)
    failure = rf"init-distribution.*{framework}.*\n  parameter W1: .*outside"
    with pytest.raises(ConformanceFailure, match=failure):
        run_init(framework)


def test_reference_with_a_doubled_bound_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """U(±2a) in the reference: torch's draws stay inside, and the distributions differ (D ~ 0.25)."""
    pytest.importorskip("torch")
    dense = init.dense

    def doubled(scheme: str, fan_in: int) -> tuple[init.Init, init.Init]:
        return tuple(init.Init(d.kind, 2 * d.scale) for d in dense(scheme, fan_in))  # type: ignore[return-value]

    monkeypatch.setattr(init, "dense", doubled)
    with pytest.raises(ConformanceFailure, match=r"init-distribution.*torch.*\n  parameter W1: .*Kolmogorov"):
        run_init("torch")


def test_torch_linear_with_fan_out_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch whose nn.Linear scaled by fan-out: W1 (5, 3) narrower than U(±1/√3)."""
    torch = pytest.importorskip("torch")

    def reset_parameters(self: torch.nn.Linear) -> None:
        torch.nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5), mode="fan_out")
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight.shape[0])
            torch.nn.init.uniform_(self.bias, -bound, bound)

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", reset_parameters)
    with pytest.raises(ConformanceFailure, match=r"init-distribution.*torch.*\n  parameter W1: .*Kolmogorov"):
        run_init("torch")


def test_flax_held_to_torchs_scheme_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two schemes are told apart: lecun_normal reaches 2s = 1.31 for fan-in 3, past U(±0.577)."""
    pytest.importorskip("flax")
    from conformance.components.mlp import jax_adapter

    monkeypatch.setitem(jax_adapter.CONVENTIONS, "init", "torch")
    with pytest.raises(ConformanceFailure, match=r"init-distribution.*jax.*\n  parameter W1: .*outside"):
        run_init("jax")
