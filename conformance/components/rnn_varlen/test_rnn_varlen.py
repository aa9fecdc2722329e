"""The padded-sequence RNN's conformance tests, one per check of its record
(conformance/components/rnn_varlen)."""

from conformance.testing import component_tests

globals().update(component_tests("rnn_varlen"))
