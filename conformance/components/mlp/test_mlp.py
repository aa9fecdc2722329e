"""The MLP's conformance tests: one per check of its record (conformance/components/mlp)."""

from conformance.testing import component_tests

globals().update(component_tests("mlp"))
