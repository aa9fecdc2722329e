"""The reproducer of the known issues keras-float64-computed-in-float32 and
keras-simplernn-float64-scan-carry: NumPy and Keras only (KERAS_BACKEND=jax, jax_enable_x64).

Each test pins the behaviour as it is; when a Keras release fixes it, the test fails with
a message saying so, and the known issues should go (the suite's strict xfails say the same).
"""

from __future__ import annotations

import numpy as np
import pytest

import conformance_keras  # sets KERAS_BACKEND=jax before keras is imported

conformance_keras.enable_float64()
keras = pytest.importorskip("keras")

FIXED = "Keras computes float64 in float64 now: remove the float64 known issues from known_issues.toml"


def test_float64_layers_compute_in_float32() -> None:
    x = np.linspace(-2.0, 2.0, 12).reshape(4, 3)  # float64
    tanh = keras.layers.Activation("tanh", dtype="float64")(x)
    mse = keras.losses.MeanSquaredError(dtype="float64")(np.zeros_like(x), x)
    norm = keras.layers.BatchNormalization(dtype="float64")
    norm.build((None, 3))
    y, _ = norm.stateless_call(
        [v.value for v in norm.trainable_variables],
        [v.value for v in norm.non_trainable_variables],
        x,
        training=True,
    )
    exact_y = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    errors = {
        "tanh": float(np.max(np.abs(np.asarray(tanh, np.float64) - np.tanh(x)))),
        "mse": abs(float(mse) - float(np.mean(x**2))),
        "batch norm": float(np.max(np.abs(np.asarray(y, np.float64) - exact_y))),
    }
    assert str(tanh.dtype) == "float32", FIXED
    assert all(1e-12 < e < 1e-5 for e in errors.values()), (FIXED, errors)  # float32 roundings


def test_float64_simple_rnn_with_tanh_fails_in_scan() -> None:
    rnn = keras.layers.SimpleRNN(3, dtype="float64")
    x = np.ones((2, 4, 2))
    with pytest.raises(TypeError, match="carry input and carry output must have equal types"):
        rnn(x)
    relu = keras.layers.SimpleRNN(3, activation="relu", dtype="float64")
    assert str(relu(x).dtype) == "float64"  # the relu step keeps the carry's dtype
