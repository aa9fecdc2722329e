"""The MLP in JAX: `flax.linen.Dense` layers, `jax.nn` activations, optax losses.

Activations: `jax.nn.sigmoid`, `jnp.tanh`, `jax.nn.relu`, `jax.nn.leaky_relu`, `jax.nn.gelu`
(`approximate=False` for "gelu", `True`, its default, for "gelu_tanh"), `jax.nn.elu(alpha)`,
`jax.nn.selu`, `jax.nn.silu`, `jax.nn.softplus` (no β, no threshold: CONVENTIONS).

flax's Dense computes y = x K + b with a kernel K of shape (in, out): the
reference's W (out, in) goes in as K = Wᵀ and its gradient comes back as
∂L/∂W = (∂L/∂K)ᵀ. Compiled functions are cached per spec (static) and shape
(jit's own cache), so cases drawn from a bounded set of shapes reuse them.
With spec.batchnorm, a `flax.linen.BatchNorm` follows each hidden Dense; the
component "mlp_bn" runs those specs (components/mlp_bn/jax_adapter.py), this module's
`run` only specs without.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from conformance.backend import Outcome, cast_floats
from conformance.case import Arrays, Case
from conformance.frameworks.jax import enable_float64
from conformance.frameworks.jax_paths import from_stored, layout_of, on_path, stored, unstored
from conformance.frameworks.jax_paths import paths as paths
from refimpl.mlp import MLPSpec

enable_float64()  # float64 cases need jax_enable_x64; float32 ones stay float32 (explicit dtypes)

CONVENTIONS: dict[str, object] = {
    "leaky_kink": "one",  # jax.nn.leaky_relu: where(x >= 0, x, slope * x)
    "elu_kink": "negative",  # jax.nn.elu: where(x > 0, x, α expm1(...)); selu = λ elu
    "softplus_beta": 1.0,  # jax.nn.softplus(x) = logaddexp(x, 0): no β ...
    "softplus_threshold": None,  # ... and no switch to the identity
    "init": "flax",  # Dense: lecun_normal kernel, zero bias; BatchNorm: scale 1, bias 0
}

ACTIVATIONS: dict[str, Callable[[jax.Array, MLPSpec], jax.Array]] = {
    "identity": lambda z, spec: z,
    "sigmoid": lambda z, spec: jax.nn.sigmoid(z),
    "tanh": lambda z, spec: jnp.tanh(z),
    "relu": lambda z, spec: jax.nn.relu(z),
    "leaky_relu": lambda z, spec: jax.nn.leaky_relu(z, negative_slope=spec.slope),
    "gelu": lambda z, spec: jax.nn.gelu(z, approximate=False),  # jax.nn.gelu's default is True
    "gelu_tanh": lambda z, spec: jax.nn.gelu(z, approximate=True),
    "elu": lambda z, spec: jax.nn.elu(z, alpha=spec.elu_alpha),
    "selu": lambda z, spec: jax.nn.selu(z),
    "silu": lambda z, spec: jax.nn.silu(z),
    "softplus": lambda z, spec: jax.nn.softplus(z),
}


def normalized_layers(spec: MLPSpec) -> range:
    """The layers l (1-based) a BatchNorm follows: the hidden ones, 1 .. L-1, with spec.batchnorm."""
    return range(1, len(spec.sizes) - 1) if spec.batchnorm else range(0)


class Standardized(nn.Module):
    """jax.nn.standardize, JAX's functional normalization, between the scale and bias a flax
    BatchNorm holds (the path "functional" of "mlp_bn"): in training over the batch's
    statistics (algorithm "fast", E[z²] - E[z]², or "stable", as use_fast_variance), in eval
    over the running ones; it keeps no running statistics of its own."""

    epsilon: float
    fast: bool
    train: bool
    dtype: Any

    @nn.compact
    def __call__(self, Z: jax.Array) -> jax.Array:
        shape = (Z.shape[-1],)
        scale = self.param("scale", nn.initializers.ones, shape, self.dtype)
        bias = self.param("bias", nn.initializers.zeros, shape, self.dtype)
        if self.train:
            algorithm = "fast" if self.fast else "stable"
            xhat = jax.nn.standardize(Z, axis=0, epsilon=self.epsilon, algorithm=algorithm)
        else:
            mean = self.variable("batch_stats", "mean", jnp.zeros, shape, self.dtype).value
            var = self.variable("batch_stats", "var", jnp.ones, shape, self.dtype).value
            xhat = jax.nn.standardize(Z, axis=0, mean=mean, variance=var, epsilon=self.epsilon)
        return xhat * scale + bias


class FlaxMLP(nn.Module):
    """A Dense per width after the first in spec.sizes, the hidden activation after each but
    the last, the output activation after the last; with spec.batchnorm a BatchNorm after every
    hidden Dense, which then has no bias (β takes its place)."""

    spec: MLPSpec
    train: bool = True  # batch norm: batch statistics (True) or the running ones
    fast_variance: bool = True  # BatchNorm's use_fast_variance (flax's default: True)
    functional: bool = False  # jax.nn.standardize in place of each BatchNorm (Standardized)

    @nn.compact
    def __call__(self, X: jax.Array) -> jax.Array:
        dtype = jnp.dtype(self.spec.dtype)
        normalized = normalized_layers(self.spec)
        for l, width in enumerate(self.spec.sizes[1:], start=1):
            Z = nn.Dense(
                width, use_bias=l not in normalized, dtype=dtype, param_dtype=dtype, name=f"Dense_{l}"
            )(X)
            if self.spec.batchnorm:  # ∂L/∂Zˡ is the gradient of this zero perturbation
                Z = self.perturb(f"Z{l}", Z)
            if l in normalized and self.functional:
                Z = Standardized(
                    self.spec.bn_eps, self.fast_variance, self.train, dtype, name=f"BatchNorm_{l}"
                )(Z)
            elif l in normalized:
                Z = nn.BatchNorm(
                    use_running_average=not self.train,
                    momentum=self.spec.bn_momentum,
                    epsilon=self.spec.bn_eps,
                    use_fast_variance=self.fast_variance,
                    dtype=dtype,
                    param_dtype=dtype,
                    name=f"BatchNorm_{l}",
                )(Z)
            last = l == len(self.spec.sizes) - 1
            activation = self.spec.output_activation if last else self.spec.hidden_activation
            X = ACTIVATIONS[activation](Z, self.spec)
        return X


def loss_of(spec: MLPSpec, Y: jax.Array, targets: jax.Array) -> jax.Array:
    if spec.loss == "mse":
        return optax.squared_error(Y, targets).mean()  # mean over all elements, as F.mse_loss
    return optax.softmax_cross_entropy_with_integer_labels(Y, targets).mean()  # mean over rows


def check_conventions(spec: MLPSpec, *, batchnorm: bool = False) -> None:
    """The spec's conventions are jax's; batchnorm=False (the "mlp" component) refuses
    batch-norm specs, whose running statistics only "mlp_bn" carries."""
    used = {spec.hidden_activation, spec.output_activation}
    if "leaky_relu" in used and spec.leaky_kink != "one":
        raise ValueError(f"leaky_kink: jax implements 'one', received {spec.leaky_kink!r}")
    if used & {"elu", "selu"} and spec.elu_kink != "negative":
        raise ValueError(f"elu_kink: jax implements 'negative', received {spec.elu_kink!r}")
    if "softplus" in used and (spec.softplus_beta, spec.softplus_threshold) != (1.0, None):
        raise ValueError(
            "softplus_beta, softplus_threshold: jax.nn.softplus implements (1.0, None),"
            f" received {(spec.softplus_beta, spec.softplus_threshold)}"
        )
    if spec.batchnorm and not batchnorm:
        raise ValueError(
            "batchnorm: the 'mlp' component runs specs without batch norm,"
            " received batchnorm=True (use the 'mlp_bn' component)"
        )


def to_variables(spec: MLPSpec, params: Arrays) -> dict[str, Any]:
    """Flax's variables, put on the device by `jax.device_put`, which compiles nothing (an eager
    jnp.asarray or jnp.zeros compiles a program per shape)."""
    layers: dict[str, Any] = {}
    for l in range(1, len(spec.sizes)):
        layers[f"Dense_{l}"] = {"kernel": params[f"W{l}"].T}
        if f"b{l}" in params:  # none before batch norm
            layers[f"Dense_{l}"]["bias"] = params[f"b{l}"]
    return jax.device_put({"params": layers})


def from_variables(spec: MLPSpec, variables: dict[str, Any]) -> Arrays:
    grads = {}
    for l in range(1, len(spec.sizes)):
        layer = variables["params"][f"Dense_{l}"]
        grads[f"W{l}"] = np.asarray(layer["kernel"], dtype=np.float64).T
        if "bias" in layer:  # none before batch norm
            grads[f"b{l}"] = np.asarray(layer["bias"], dtype=np.float64)
    return grads


def _outputs(spec: MLPSpec, layout: str, targets: jax.Array, variables: Any, X: jax.Array) -> Any:
    """(Y, loss) from X stored in `layout` (conformance.frameworks.jax_paths)."""
    Y = FlaxMLP(spec).apply(variables, unstored(X, layout))
    return Y, loss_of(spec, Y, targets)


@partial(jax.jit, static_argnums=(0, 1))
def _vjp(spec: MLPSpec, layout: str, variables: Any, X: Any, targets: Any, cot_Y: Any, cot_loss: Any) -> Any:
    (Y, loss), pullback = jax.vjp(partial(_outputs, spec, layout, targets), variables, X)
    d_variables, dX = pullback((cot_Y, cot_loss))
    return Y, loss, d_variables, dX


@partial(jax.jit, static_argnums=(0, 1))
def _jvp(spec: MLPSpec, layout: str, variables: Any, X: Any, targets: Any, t_vars: Any, t_X: Any) -> Any:
    _, tangents_out = jax.jvp(partial(_outputs, spec, layout, targets), (variables, X), (t_vars, t_X))
    return tangents_out


def layouts(case: Case, device: Any = None) -> tuple[str, ...]:
    """X stored contiguous, strided or transposed, taken out inside the program."""
    return ("contiguous", "strided", "transposed")


def _prepare(case: Case) -> tuple[MLPSpec, str, Any, np.ndarray, jax.Array]:
    """spec, layout, variables, X as stored for the layout, targets."""
    spec: MLPSpec = case.spec
    check_conventions(spec)
    params = cast_floats(case.params, spec.dtype)
    inputs = cast_floats(case.inputs, spec.dtype)
    layout = layout_of(case)
    return (
        spec,
        layout,
        to_variables(spec, params),
        stored(inputs["X"], layout),
        jax.device_put(inputs["targets"]),
    )


def run(case: Case, cotangents: Arrays | None, device: Any = None) -> Outcome:
    spec, layout, variables, X, targets = _prepare(case)
    cot = cast_floats(cotangents or {}, spec.dtype)
    N = case.inputs["X"].shape[0]
    cot_Y = cot["Y"] if "Y" in cot else np.zeros((N, spec.sizes[-1]), spec.dtype)
    cot_loss = np.asarray(cot.get("loss", 0.0), dtype=spec.dtype)
    with on_path(case):
        Y, loss, d_variables, dX = _vjp(spec, layout, variables, X, targets, cot_Y, cot_loss)
    outputs = {"Y": np.asarray(Y, np.float64), "loss": np.asarray(loss, np.float64)}
    if not cotangents:
        return Outcome(outputs, {}, {})
    grads = from_variables(spec, d_variables)
    grads["X"] = from_stored(np.asarray(dX, np.float64), layout)
    return Outcome(outputs, grads, {})


def jvp(case: Case, tangents: Arrays, device: Any = None) -> Arrays:
    spec, layout, variables, X, targets = _prepare(case)
    t = cast_floats(tangents, spec.dtype)
    t_vars = to_variables(spec, t)
    with on_path(case):
        dY, dloss = _jvp(spec, layout, variables, X, targets, t_vars, stored(t["X"], layout))
    return {"Y": np.asarray(dY, np.float64), "loss": np.asarray(dloss, np.float64)}


@partial(jax.jit, static_argnums=0)
def _per_example(spec: MLPSpec, variables: Any, X: Any, targets: Any) -> Any:
    def loss_of_row(v: Any, x: jax.Array, t: jax.Array) -> jax.Array:
        return loss_of(spec, FlaxMLP(spec).apply(v, x[None]), t[None])

    return jax.vmap(jax.grad(loss_of_row, argnums=(0, 1)), in_axes=(None, 0, 0))(variables, X, targets)


def per_example_grads(case: Case, device: Any = None) -> Arrays:
    """∂L_n/∂θ and ∂L_n/∂x_n of every row's own loss L_n, by jax.vmap(jax.grad) over the rows:
    {name: (N, *shape)}, kernels transposed to W, "X" as (N, 1, D) (per-example-gradients)."""
    spec, _, variables, _, targets = _prepare(case)
    X = cast_floats(case.inputs, spec.dtype)["X"]
    d_variables, dX = _per_example(spec, variables, X, targets)
    grads = {}
    for l in range(1, len(spec.sizes)):
        layer = d_variables["params"][f"Dense_{l}"]
        grads[f"W{l}"] = np.swapaxes(np.asarray(layer["kernel"], np.float64), 1, 2)
        grads[f"b{l}"] = np.asarray(layer["bias"], np.float64)
    grads["X"] = np.asarray(dX, np.float64).reshape(X.shape[0], 1, -1)
    return grads


# default_init's programs run once per network: compiled at XLA's backend optimization level 0,
# a quarter of the compile time (0.44 s of CPU against 1.6 s for a 3-5-2 MLP and 1,000 draws; the
# three ci networks' init-distribution rows 2.4 s against 5.7 s), and the same draws up to the
# rounding of erf_inv's polynomial (at most 1.7e-12 relative in float64, 2.7e-7 in float32).
QUICK_COMPILE: dict[str, str | bool] = {"xla_backend_optimization_level": "0"}


def compiled(draws: Callable[[Any], Any]) -> Callable[[int], Any]:
    """draws(seed) jitted, compiled under QUICK_COMPILE."""
    return jax.jit(draws).lower(0).compile(QUICK_COMPILE)


@cache
def _initializer(spec: MLPSpec, draws: int) -> Callable[[int], Any]:
    X = jnp.zeros((2, spec.sizes[0]), jnp.dtype(spec.dtype))

    def initialized(seed: Any) -> Any:
        keys = jax.random.split(jax.random.PRNGKey(seed), draws)
        return jax.vmap(lambda key: FlaxMLP(spec).init(key, X)["params"])(keys)

    return compiled(initialized)


def default_init(case: Case, device: Any = None) -> Arrays:
    """case.meta["init_draws"] FlaxMLPs as flax initializes them (`init` under keys split from
    PRNGKey(case.seed)): {reference name: (draws, *shape)}, kernels transposed to W (the
    property init-distribution)."""
    spec: MLPSpec = case.spec
    layers = _initializer(spec, case.meta["init_draws"])(case.seed)
    drawn: Arrays = {}
    for l in range(1, len(spec.sizes)):
        dense = {k: np.asarray(v, np.float64) for k, v in layers[f"Dense_{l}"].items()}
        drawn[f"W{l}"] = np.swapaxes(dense["kernel"], 1, 2)
        if l in normalized_layers(spec):
            norm = layers[f"BatchNorm_{l}"]
            drawn[f"gamma{l}"] = np.asarray(norm["scale"], np.float64)
            drawn[f"beta{l}"] = np.asarray(norm["bias"], np.float64)
        else:
            drawn[f"b{l}"] = dense["bias"]
    return drawn
