"""The Elman RNN's conformance tests: full BPTT ("rnn") and truncated BPTT ("rnn_truncated"),
one per check of their records (conformance/components/rnn)."""

from conformance.testing import component_tests

globals().update(component_tests("rnn", "rnn_truncated"))
