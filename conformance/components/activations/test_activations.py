"""The activations' conformance tests, one component per activation of refimpl.smooth
(conformance/components/activations)."""

from conformance.components.activations.strategies import CATALOG, component_name
from conformance.testing import component_tests

globals().update(component_tests(*(component_name(a) for a in CATALOG)))
