"""The Elman RNN in JAX: flax `nn.RNN` over `nn.SimpleCell`, an `nn.Dense` readout, optax losses.

Layout and parameters (flax.linen 0.12, recurrent.py): `SimpleCell` computes
h' = f(x K_i + b + h K_h), a Dense "i" with the one bias and a Dense "h" without
one; `nn.RNN` is batch-major by default (time_major=False) and starts from
`initial_carry`. The reference maps in as

    i.kernel = W_ihᵀ (D, H),  h.kernel = W_hhᵀ (H, H),  i.bias = b_ih + b_hh,
    readout kernel = W_outᵀ (H, C), readout bias = b_out,  X (T, N, D) -> (N, T, D),

and flax's one bias gradient ∂L/∂b is reported under both "b_ih" and "b_hh":
since z = ... + b_ih + b_hh, each of torch's biases has exactly the gradient of
the sum (the property `two-bias-mapping` checks it in every framework).

Truncated BPTT with window k (refimpl/bptt.py): `WindowedCell` wraps the
SimpleCell and applies `lax.stop_gradient` to the carry entering the first step
of every chunk but the first, inside nn.RNN's scan. The window is data (part of
the carry), so one compiled program per (spec without window, shapes, dtype)
serves full BPTT, every window k and every property: on this suite's 2-core CI a
flax RNN's VJP+JVP takes about a second to compile, while its run takes 0.3 ms.
The same program returns ∂L/∂h_t for every step through flax's `Module.perturb`
(a zero added to each h_t, whose gradient is the gradient arriving at h_t).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache, partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.components.mlp import jax_adapter as jax_mlp
from conformance.frameworks.jax import enable_float64
from conformance.frameworks.jax_paths import from_stored, layout_of, on_path, stored, unstored
from conformance.frameworks.jax_paths import paths as paths
from refimpl.rnn import RNNSpec

enable_float64()  # float64 cases need jax_enable_x64; float32 ones stay float32 (explicit dtypes)

CONVENTIONS: dict[str, object] = {  # the one-bias mapping is in the parameters, not the spec
    "init": "flax",  # SimpleCell: lecun_normal input kernel, orthogonal recurrent kernel, zero bias
}

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,  # SimpleCell's default activation_fn
    "relu": jax.nn.relu,  # relu'(0) = 0 (custom JVP)
}


def window(spec: RNNSpec, T: int) -> int:
    """Steps per chunk: k = spec.truncation, or T (one chunk) for full BPTT."""
    return T if spec.truncation is None else spec.truncation


def initial_carry(h0: jax.Array) -> jax.Array:
    """The state h0 (N, H) that nn.RNN starts from."""
    return h0


def cut(t: jax.Array, k: jax.Array) -> jax.Array:
    """Whether the state entering step t + 1 (t steps taken) crosses a chunk boundary."""
    return (t > 0) & (t % k == 0)


class WindowedCell(nn.RNNCellBase):
    """SimpleCell with carry (h, t, k): h the state, t the steps taken, k the window."""

    features: int
    activation_fn: Callable[[jax.Array], jax.Array]
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, carry: Any, x: jax.Array) -> Any:
        h, t, k = carry
        h = jnp.where(cut(t, k), jax.lax.stop_gradient(h), h)  # no gradient back across
        cell = nn.SimpleCell(
            features=self.features,
            activation_fn=self.activation_fn,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="simple",
        )
        h, _ = cell(h, x)
        h = self.perturb("h", h)  # + 0; its gradient is ∂L/∂h_t
        return (h, t + 1, k), h

    @property
    def num_feature_axes(self) -> int:
        return 1


def modules(spec: RNNSpec, time_major: bool = False) -> tuple[nn.RNN, nn.Dense]:
    """nn.RNN over the windowed cell (batch-major unless time_major) and the readout Dense."""
    dtype = jnp.dtype(spec.dtype)
    cell = WindowedCell(spec.hidden_size, ACTIVATIONS[spec.nonlinearity], dtype, dtype)
    rnn = nn.RNN(cell, time_major=time_major, variable_axes={"perturbations": 0})  # one per step
    return rnn, nn.Dense(spec.output_size, dtype=dtype, param_dtype=dtype)


def layouts(case: Case, device: Any = None) -> tuple[str, ...]:
    """X and h0 stored contiguous, strided or transposed (taken out inside the program), or X
    handed time-major to nn.RNN(time_major=True) ("reordered")."""
    return ("contiguous", "strided", "transposed", "reordered")


def _layout(case: Case) -> str:
    layout = str(case.meta.get("layout", "contiguous"))
    return layout if layout == "reordered" else layout_of(case)


def to_variables(params: Arrays, T: int, N: int) -> dict[str, Any]:
    """NumPy arrays: jit takes them as they are (jnp.asarray would compile a copy per shape)."""

    def c(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a)

    simple = {
        "i": {"kernel": c(params["W_ih"].T), "bias": params["b_ih"] + params["b_hh"]},
        "h": {"kernel": c(params["W_hh"].T)},
    }
    zeros = np.zeros((T, N, params["W_hh"].shape[0]), params["W_hh"].dtype)
    readout = {"kernel": c(params["W_out"].T), "bias": c(params["b_out"])}
    return {
        "rnn": {"params": {"cell": {"simple": simple}}, "perturbations": {"cell": {"h": zeros}}},
        "readout": {"params": readout},
    }


def from_variables(variables: dict[str, Any]) -> Arrays:
    simple = variables["rnn"]["params"]["cell"]["simple"]
    readout = variables["readout"]["params"]
    b = np.asarray(simple["i"]["bias"], np.float64)  # ∂L/∂b of the one bias b = b_ih + b_hh
    return {
        "W_ih": np.asarray(simple["i"]["kernel"], np.float64).T,
        "W_hh": np.asarray(simple["h"]["kernel"], np.float64).T,
        "b_ih": b,
        "b_hh": b.copy(),
        "W_out": np.asarray(readout["kernel"], np.float64).T,
        "b_out": np.asarray(readout["bias"], np.float64),
    }


def loss_of(spec: RNNSpec, Y: jax.Array, targets: jax.Array) -> jax.Array:
    if spec.loss == "mse":
        return optax.squared_error(Y, targets).mean()  # mean over all elements, as F.mse_loss
    rows = Y.reshape(-1, spec.output_size)
    return optax.softmax_cross_entropy_with_integer_labels(rows, targets.reshape(-1)).mean()


def _outputs(
    spec: RNNSpec, layout: str, targets: jax.Array, k: jax.Array, variables: Any, X: jax.Array, h0: jax.Array
) -> Any:
    """(Y, loss) from time-major X (T, N, D) stored in `layout`: through flax's batch-major
    layout, or handed as it is to nn.RNN(time_major=True) ("reordered")."""
    time_major = layout == "reordered"
    if not time_major:
        X, h0 = unstored(X, layout), unstored(h0, layout)
    rnn, dense = modules(spec, time_major)
    carry = (initial_carry(h0), jnp.zeros((), jnp.int32), k)
    H: Any = rnn.apply(variables["rnn"], X if time_major else X.swapaxes(0, 1), initial_carry=carry)
    H = H if time_major else H.swapaxes(0, 1)  # (T, N, H)
    Y: Any = dense.apply(variables["readout"], H[-1] if spec.readout == "last" else H)
    return Y, loss_of(spec, Y, targets)  # Y (N, C) or (T, N, C)


@partial(jax.jit, static_argnums=(0, 1))
def _evaluate(
    spec: RNNSpec, layout: str, variables: Any, X: Any, h0: Any, targets: Any, k: Any, cot: Any, tangents: Any
) -> Any:
    """Outputs, the VJP of the cotangents (cot_Y, cot_loss) and the JVP of the tangents.
    `spec` carries no window (the static part); the window k is an argument."""
    f = partial(_outputs, spec, layout, targets, k)
    (Y, loss), pullback = jax.vjp(f, variables, X, h0)
    _, tangents_out = jax.jvp(f, (variables, X, h0), tangents)
    return Y, loss, pullback(cot), tangents_out


def _call(case: Case, cotangents: Arrays | None, tangents: Arrays | None, k: int | None = None) -> Any:
    spec: RNNSpec = case.spec
    params = cast_floats(case.params, spec.dtype)
    x = cast_floats(case.inputs, spec.dtype)
    T, N = x["X"].shape[:2]
    dtype = np.dtype(spec.dtype)
    cot = cast_floats(cotangents or {}, spec.dtype)
    Y_shape = (N, spec.output_size) if spec.readout == "last" else (T, N, spec.output_size)
    # NumPy zeros: an eager jnp.zeros would compile a small program per shape
    cot_Y = cot["Y"] if "Y" in cot else np.zeros(Y_shape, dtype)
    cot_loss = np.asarray(cot.get("loss", 0.0), dtype=dtype)
    d = (
        cast_floats(tangents, spec.dtype)
        if tangents is not None
        else {name: np.zeros_like(v) for name, v in {**params, **x}.items()}
    )
    layout = _layout(case)
    on_disk = (lambda a: a) if layout == "reordered" else partial(stored, layout=layout)
    t = (to_variables(d, T, N), on_disk(d["X"]), on_disk(d["h0"]))
    steps = np.int32(window(spec, T) if k is None else k)
    static = replace(spec, truncation=None)  # one program for every window
    variables = to_variables(params, T, N)
    with on_path(case):
        return _evaluate(
            static,
            layout,
            variables,
            on_disk(x["X"]),
            on_disk(x["h0"]),
            x["targets"],
            steps,
            (cot_Y, cot_loss),
            t,
        )


def _from_stored(case: Case, d: Any) -> np.ndarray:
    layout = _layout(case)
    d = np.asarray(d, np.float64)
    return d if layout == "reordered" else from_stored(d, layout)


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    Y, loss, (d_variables, dX, dh0), _ = _call(case, cotangents, None)
    outputs = {"Y": np.asarray(Y, np.float64), "loss": np.asarray(loss, np.float64)}
    if not cotangents:
        return Outcome(outputs, {}, {})
    grads = from_variables(d_variables)
    grads["X"], grads["h0"] = _from_stored(case, dX), _from_stored(case, dh0)
    return Outcome(outputs, grads, {})


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    _, _, _, (dY, dloss) = _call(case, None, tangents)
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}


def hidden_grad_norms(case: Case, device: Any = None) -> np.ndarray:
    """‖∂L/∂h_t‖ over (N, H), t = 1..T, full BPTT: the gradient of the per-step perturbations."""
    T = case.inputs["X"].shape[0]
    _, _, (d_variables, _, _), _ = _call(case, {"loss": np.ones(())}, None, k=T)
    dH = np.asarray(d_variables["rnn"]["perturbations"]["cell"]["h"], np.float64)  # (T, N, H)
    return np.linalg.norm(dH.reshape(T, -1), axis=1)


@partial(jax.jit, static_argnums=0)
def _per_example(spec: RNNSpec, variables: Any, X: Any, h0: Any, targets: Any, k: Any) -> Any:
    row_axis = 0 if spec.readout == "last" else 1  # of Y and the targets

    def loss_of_row(v: Any, x: jax.Array, h: jax.Array, t: jax.Array) -> jax.Array:
        _, loss = _outputs(spec, "contiguous", jnp.expand_dims(t, row_axis), k, v, x[:, None], h[None])
        return loss

    grad = jax.grad(loss_of_row, argnums=(0, 1, 2))
    return jax.vmap(grad, in_axes=(None, 1, 0, row_axis))(variables, X, h0, targets)


def per_example_grads(case: Case, device: Any = None) -> Arrays:
    """∂L_n/∂θ, ∂L_n/∂x_n and ∂L_n/∂h0_n of every sequence's own loss L_n, by jax.vmap(jax.grad)
    over the batch: {name: (N, *shape)}, "X" as (N, T, 1, D), "h0" as (N, 1, H)."""
    spec: RNNSpec = case.spec
    params = cast_floats(case.params, spec.dtype)
    x = cast_floats(case.inputs, spec.dtype)
    T, N = x["X"].shape[:2]
    steps = np.int32(window(spec, T))
    d_variables, dX, dh0 = _per_example(
        replace(spec, truncation=None), to_variables(params, T, 1), x["X"], x["h0"], x["targets"], steps
    )
    simple = d_variables["rnn"]["params"]["cell"]["simple"]
    grads = _by_reference_names(simple, d_variables["readout"]["params"], b_hh="b_ih")
    grads["X"] = np.asarray(dX, np.float64).reshape(N, T, 1, -1)
    grads["h0"] = np.asarray(dh0, np.float64).reshape(N, 1, -1)
    return grads


def _by_reference_names(simple: Any, readout: Any, b_hh: str) -> Arrays:
    """Stacked flax variables (a leading axis of draws or examples) by the reference's names,
    kernels transposed. SimpleCell has one bias b, the reference two: b_ih is b, and b_hh is
    b again ("b_ih": a gradient, which the one bias receives for both) or 0 ("zero": an
    initialization, where flax has no second bias)."""

    def W(kernel: Any) -> np.ndarray:
        return np.swapaxes(np.asarray(kernel, np.float64), 1, 2)

    b = np.asarray(simple["i"]["bias"], np.float64)
    return {
        "W_ih": W(simple["i"]["kernel"]),
        "W_hh": W(simple["h"]["kernel"]),
        "b_ih": b,
        "b_hh": b.copy() if b_hh == "b_ih" else np.zeros_like(b),
        "W_out": W(readout["kernel"]),
        "b_out": np.asarray(readout["bias"], np.float64),
    }


@cache
def _initializer(spec: RNNSpec, draws: int) -> Callable[[int], Any]:
    rnn, dense = modules(spec)
    dtype = jnp.dtype(spec.dtype)
    X, h = jnp.zeros((1, 1, spec.input_size), dtype), jnp.zeros((1, spec.hidden_size), dtype)
    carry = (h, jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32))

    def one(key: jax.Array) -> Any:
        k_rnn, k_readout = jax.random.split(key)
        return (
            rnn.init(k_rnn, X, initial_carry=carry)["params"]["cell"]["simple"],
            dense.init(k_readout, h)["params"],
        )

    return jax_mlp.compiled(lambda seed: jax.vmap(one)(jax.random.split(jax.random.PRNGKey(seed), draws)))


def default_init(case: Case, device: Any = None) -> Arrays:
    """case.meta["init_draws"] networks as flax initializes them (`init` under keys split from
    PRNGKey(case.seed)), by the reference's names, kernels transposed: SimpleCell's one bias b
    is b_ih, and b_hh, which flax does not have, is 0 (the property init-distribution)."""
    spec = replace(case.spec, truncation=None)  # the window plays no part in the layers
    simple, readout = _initializer(spec, case.meta["init_draws"])(case.seed)
    return _by_reference_names(simple, readout, b_hh="zero")
