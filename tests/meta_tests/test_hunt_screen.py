"""The hunt's own comparison machinery, tested as the suite's helpers are: the block-diagonal
reference is each member's own reference, and the screen flags a wrong gradient, a NaN and
nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import registry
from conformance.hunt.populations import drawer_of
from conformance.hunt.reference import run_population
from conformance.hunt.screen import Expected, screen


def smallest(component: str, count: int = 2) -> list:
    drawer = drawer_of(component)
    assert drawer is not None
    return sorted(drawer.buckets(component), key=lambda b: (b.width(), b.label()))[:count]


@pytest.mark.parametrize("component", ["mlp", "mlp_bn", "rnn", "rnn_truncated", "mlp_elu", "mlp_softplus"])
def test_the_block_diagonal_reference_is_each_members_own(component: str) -> None:
    drawer = drawer_of(component)
    assert drawer is not None
    reference = registry.component(component).reference
    for bucket in smallest(component):
        population = drawer.population(bucket, range(9))
        wide = run_population(population, bucket.spec, "float64")
        for p in (0, 4, 8):
            case = population.cases[p]
            one = reference(case, {"Y": case.inputs["dY"]})
            by_loss = reference(case, {"loss": np.ones(())})
            pairs = [
                (wide["forward"], one.outputs),
                (wide["gradient"], one.grads),
                (wide["loss-gradient"], by_loss.grads),
                (wide.get("state", {}), one.state),
            ]
            for got, expected in pairs:
                for name, value in expected.items():
                    if name.startswith("Z"):
                        continue  # δˡ: not part of the population's results
                    scale = max(float(np.max(np.abs(value), initial=0.0)), 1e-300)
                    assert np.max(np.abs(got[name][p] - value), initial=0.0) <= 1e-12 * scale, (bucket, name)


def test_the_screen_flags_a_wrong_gradient_and_a_nan_and_nothing_else() -> None:
    drawer = drawer_of("mlp")
    assert drawer is not None
    bucket = smallest("mlp", 1)[0]
    population = drawer.population(bucket, range(8))
    r64 = run_population(population, bucket.spec, "float64")
    expected = Expected(r64, run_population(population, bucket.spec, "float32"))
    same = {g: {k: v.copy() for k, v in a.items()} for g, a in r64.items()}
    assert screen(same, expected, "float64") == []
    wrong = {g: {k: v.copy() for k, v in a.items()} for g, a in r64.items()}
    wrong["gradient"]["W1"][3] *= 1 + 1e-6  # a layer's gradient off by one part in a million
    wrong["forward"]["Y"][5, 0, 0] = np.nan
    suspects = screen(wrong, expected, "float64")
    flagged = [(s.member, s.group, s.parameter) for s in suspects]
    assert flagged == [(3, "gradient", "W1"), (5, "forward", "Y")]
    assert suspects[0].property == "gradient-agreement" and suspects[1].ratio == np.inf
