"""The batch-normalized MLP's conformance tests: one per check of its record
(conformance/components/mlp_bn)."""

from conformance.testing import component_tests

globals().update(component_tests("mlp_bn"))
