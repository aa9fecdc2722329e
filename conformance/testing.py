"""Binding a property to a component's case strategy as a pytest test, in one line.

    test_gradient_agreement = conformance_test("mlp", "gradient-agreement", mlp_cases())

gives a test parametrized by the plugin over the selected frameworks and dtypes
(`framework`, `dtype` arguments), marked with the property and component so the
report has one row per (property, component, framework, dtype, device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.backends import Unsupported, skip_reason
from conformance.case import Case
from conformance.checks import PROPERTIES, NotApplicable, run_property

_device = ["cpu"]


def set_device(device: str) -> None:
    _device[0] = device


def current_device() -> str:
    return _device[0]


def conformance_test(
    component: str, property_id: str, cases: st.SearchStrategy[Case]
) -> Callable[..., Any]:
    if property_id not in PROPERTIES:
        raise ValueError(f"property: expected one of {sorted(PROPERTIES)}, received {property_id!r}")

    @given(case=cases)
    def examples(framework: str, dtype: str, case: Case) -> None:
        run_property(property_id, case, framework, dtype, current_device())

    @pytest.mark.conformance(property=property_id, component=component)
    def test(framework: str, dtype: str) -> None:
        reason = skip_reason(framework, current_device())
        reason = reason or PROPERTIES[property_id].not_applicable(framework, dtype)
        if reason:
            pytest.skip(reason)
        try:
            examples(framework, dtype)
        except (NotApplicable, Unsupported) as err:
            pytest.skip(str(err))

    test.__name__ = f"test_{component}_{property_id.replace('-', '_')}"
    return test
