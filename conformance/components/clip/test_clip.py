"""Clipping's conformance tests: one per check of its record (conformance/components/clip)."""

from conformance.testing import component_tests

globals().update(component_tests("clip"))
