"""Batch-normalized MLP properties ("mlp_bn"): one line each, training mode unless named eval."""

from conformance import checks_bn  # noqa: F401  (registers the batch-norm properties)
from conformance.strategies_bn import EVAL_SPECS, FIRST, bn_cases
from conformance.testing import conformance_test

# training mode: the generic properties (not batch-decomposition: batch statistics couple rows)
test_forward = conformance_test("mlp_bn", "forward-agreement", bn_cases())
test_gradient = conformance_test("mlp_bn", "gradient-agreement", bn_cases())
test_loss_gradient = conformance_test("mlp_bn", "loss-gradient-agreement", bn_cases())
test_finite_differences = conformance_test("mlp_bn", "finite-differences", bn_cases())
test_reverse_vs_forward = conformance_test("mlp_bn", "reverse-vs-forward", bn_cases(ci=FIRST))
test_upstream_linearity = conformance_test("mlp_bn", "upstream-linearity", bn_cases())

# running statistics, eval mode
test_state = conformance_test("mlp_bn", "state-agreement", bn_cases())
test_eval = conformance_test("mlp_bn", "eval-agreement", bn_cases(train=False, ci=EVAL_SPECS))

# invariants and conventions
test_gradient_sums = conformance_test("mlp_bn", "bn-gradient-sums", bn_cases())
test_shift_scale = conformance_test("mlp_bn", "bn-shift-scale-invariance", bn_cases(ci=FIRST))
test_eval_affine = conformance_test(
    "mlp_bn", "bn-eval-affine", bn_cases(train=False, ci=EVAL_SPECS, affine=True)
)
test_batch_of_one = conformance_test("mlp_bn", "bn-batch-of-one", bn_cases(ci=FIRST, batch=1))
test_ill_conditioned = conformance_test(
    "mlp_bn", "bn-ill-conditioned", bn_cases(ci=FIRST, ill_conditioned=True)
)
test_ill_conditioned_two_pass = conformance_test(
    "mlp_bn", "bn-ill-conditioned-two-pass", bn_cases(ci=FIRST, ill_conditioned=True)
)
