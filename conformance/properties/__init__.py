"""Conformance properties: one test module per component (test_<component>.py).

Each property is a function of (context, backend) registered under a stable id
in conformance.checks; each test module binds properties to a component's
case strategy with `conformance_test`, one line per property.
"""
