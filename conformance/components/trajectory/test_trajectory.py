"""Trajectories' conformance tests: one per check of its record (conformance/components/trajectory)."""

from conformance.testing import component_tests

globals().update(component_tests("trajectory"))
