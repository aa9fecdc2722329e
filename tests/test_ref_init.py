"""refimpl.init: the two initialization schemes, drawn through mlp, mlp_bn and rnn's init_params."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refimpl import init, mlp, mlp_bn, rnn
from refimpl.mlp import MLPSpec
from refimpl.rnn import RNNSpec

MLP = MLPSpec((3, 7, 2))
BN = MLPSpec((3, 7, 5, 2), batchnorm=True)
RNN = RNNSpec(2, 6, 3)


def test_torch_scheme_draws_uniform_fan_in_in_layer_order() -> None:
    """The default: nn.Linear's U(±1/√fan_in) for W and b, drawn W1, b1, W2, b2 from one generator."""
    rng = np.random.default_rng(4)
    expected = {}
    for l, (n_in, n_out) in enumerate([(3, 7), (7, 2)], start=1):
        a = 1 / math.sqrt(n_in)
        expected[f"W{l}"] = rng.uniform(-a, a, (n_out, n_in))
        expected[f"b{l}"] = rng.uniform(-a, a, n_out)
    got = mlp.init_params(MLP, np.random.default_rng(4))
    assert list(got) == list(expected)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


def test_torch_scheme_rnn_draws_every_tensor_with_the_hidden_size() -> None:
    got = rnn.init_params(RNN, np.random.default_rng(1))
    rng, a = np.random.default_rng(1), 1 / math.sqrt(6)
    for name, shape in RNN.param_shapes().items():
        np.testing.assert_array_equal(got[name], rng.uniform(-a, a, shape))


def test_batch_norm_constants_take_no_draws() -> None:
    params = mlp_bn.init_params(BN, np.random.default_rng(0), "flax")
    plain = mlp.init_params(BN, np.random.default_rng(0), "flax")
    assert sorted(plain) == ["W1", "W2", "W3", "b3"]
    assert all(np.array_equal(params[k], plain[k]) for k in plain)
    for l, D in ((1, 7), (2, 5)):
        np.testing.assert_array_equal(params[f"gamma{l}"], np.ones(D))
        np.testing.assert_array_equal(params[f"beta{l}"], np.zeros(D))


def test_truncated_std_is_that_of_a_standard_normal_cut_at_two() -> None:
    """0.87962566103423978 is the constant jax's variance_scaling divides by."""
    assert abs(init.TRUNCATED_STD - 0.87962566103423978) < 1e-15


def test_flax_scheme_lecun_normal_zero_bias() -> None:
    """Kernels within ±2s, variance 1/fan_in (the relative standard error of a variance over
    70,000 draws is below 0.5%: 2.5% is 5 of them), biases exactly 0."""
    spec = MLPSpec((10, 7000, 10))
    params = mlp.init_params(spec, np.random.default_rng(2), "flax")
    for name, fan_in in (("W1", 10), ("W2", 7000)):
        s = 1 / (math.sqrt(fan_in) * init.TRUNCATED_STD)
        assert np.abs(params[name]).max() <= 2 * s
        assert params[name].var() * fan_in == pytest.approx(1.0, rel=0.025)
    assert not params["b1"].any() and not params["b2"].any()


def test_flax_scheme_rnn_has_an_orthogonal_recurrent_kernel() -> None:
    params = rnn.init_params(RNN, np.random.default_rng(3), "flax")
    W = params["W_hh"]
    np.testing.assert_allclose(W @ W.T, np.eye(6), atol=1e-14)
    assert not params["b_ih"].any() and not params["b_hh"].any() and not params["b_out"].any()
    assert np.abs(params["W_ih"]).max() <= 2 / (math.sqrt(2) * init.TRUNCATED_STD)


def test_orthogonal_is_haar_not_qr_signs() -> None:
    """With R's diagonal made positive, Q[0, 0] is symmetric about 0; the Q of LAPACK's
    Householder QR is not (its Q[0, 0] is negative in every draw)."""
    Q = init.Init("orthogonal", 1.0).sample((4000, 3, 3), np.random.default_rng(0))
    positive = float((Q[:, 0, 0] > 0).mean())
    assert 0.45 < positive < 0.55  # 4000 fair coins: sd 0.008
    np.testing.assert_allclose(Q @ np.swapaxes(Q, 1, 2), np.broadcast_to(np.eye(3), Q.shape), atol=1e-14)
    wide = init.Init("orthogonal", 2.0).sample((3, 5), np.random.default_rng(0))
    np.testing.assert_allclose(wide @ wide.T, 4 * np.eye(3), atol=1e-13)


def test_unknown_scheme_and_bad_generator_are_named() -> None:
    with pytest.raises(ValueError, match="scheme"):
        mlp.init_params(MLP, np.random.default_rng(0), "keras")
    with pytest.raises(ValueError, match="scheme"):
        rnn.init_params(RNN, np.random.default_rng(0), "keras")
    with pytest.raises(TypeError, match="rng"):
        rnn.init_params(RNN, 0, "flax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fan_in: expected an integer >= 1, received 0"):
        init.dense("torch", 0)
    with pytest.raises(ValueError, match=r"shapes: expected a shape for each of \['W1', 'b1'\]"):
        init.draw(init.mlp_inits((2, 3), False, "flax"), {"W1": (3, 2)}, np.random.default_rng(0), "float64")
