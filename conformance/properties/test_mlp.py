"""MLP properties: one line each, bound to the MLP case strategy."""

from conformance.strategies import mlp_cases
from conformance.testing import conformance_test

test_forward = conformance_test("mlp", "forward-agreement", mlp_cases())
test_gradient = conformance_test("mlp", "gradient-agreement", mlp_cases())
test_loss_gradient = conformance_test("mlp", "loss-gradient-agreement", mlp_cases())
test_finite_differences = conformance_test("mlp", "finite-differences", mlp_cases())
test_reverse_vs_forward = conformance_test("mlp", "reverse-vs-forward", mlp_cases())
test_upstream_linearity = conformance_test("mlp", "upstream-linearity", mlp_cases())
test_batch_decomposition = conformance_test("mlp", "batch-decomposition", mlp_cases())
test_kink_convention = conformance_test("mlp", "kink-convention", mlp_cases(kinks=True))
