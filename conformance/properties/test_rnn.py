"""Elman RNN properties: full BPTT ("rnn") and truncated BPTT ("rnn_truncated"), one line each."""

from conformance import checks_rnn  # noqa: F401  (registers the RNN properties)
from conformance.strategies_rnn import rnn_cases, truncated_cases
from conformance.testing import conformance_test

# full BPTT
test_forward = conformance_test("rnn", "forward-agreement", rnn_cases())
test_gradient = conformance_test("rnn", "gradient-agreement", rnn_cases())
test_loss_gradient = conformance_test("rnn", "loss-gradient-agreement", rnn_cases())
test_finite_differences = conformance_test("rnn", "finite-differences", rnn_cases())
test_reverse_vs_forward = conformance_test("rnn", "reverse-vs-forward", rnn_cases())
test_upstream_linearity = conformance_test("rnn", "upstream-linearity", rnn_cases())
test_two_bias_mapping = conformance_test("rnn", "two-bias-mapping", rnn_cases())
test_one_step_dense = conformance_test("rnn", "one-step-dense", rnn_cases(steps="one"))
test_hidden_gradient_profile = conformance_test(
    "rnn", "hidden-gradient-profile", rnn_cases()
)

# truncated BPTT, window k = spec.truncation
test_truncated_forward = conformance_test("rnn_truncated", "forward-agreement", truncated_cases())
test_truncated_gradient = conformance_test("rnn_truncated", "gradient-agreement", truncated_cases())
test_truncated_loss_gradient = conformance_test(
    "rnn_truncated", "loss-gradient-agreement", truncated_cases()
)
test_truncated_finite_differences = conformance_test(
    "rnn_truncated", "truncated-finite-differences", truncated_cases(steps="long")
)
test_truncated_reverse_vs_forward = conformance_test(
    "rnn_truncated", "reverse-vs-forward", truncated_cases()
)
test_truncated_upstream_linearity = conformance_test(
    "rnn_truncated", "upstream-linearity", truncated_cases()
)
test_window_covers_sequence = conformance_test(
    "rnn_truncated", "truncation-covers-sequence", truncated_cases(window="covering")
)
test_window_one = conformance_test(
    "rnn_truncated", "truncation-window-one", truncated_cases(window="one")
)
