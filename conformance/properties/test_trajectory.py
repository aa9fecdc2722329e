"""Trajectory properties: one line each, bound to the trajectory case strategy."""

from conformance.strategies_trajectory import trajectory_cases
from conformance.testing import conformance_test

test_agreement = conformance_test("trajectory", "trajectory-agreement", trajectory_cases())
test_restart = conformance_test("trajectory", "trajectory-restart", trajectory_cases())
