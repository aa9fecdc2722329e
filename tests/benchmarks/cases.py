"""The benchmarked cases: one forward + backward pass, built for each implementation.

Every case is the same computation three ways, on the same machine in one run:

* "reference": refimpl's forward and backward, validation included;
* "reference-noscan": the same with the finiteness scan of `require_array` off
  (`finite=False`), to measure what the np.isfinite checks cost;
* "torch": eager torch, the framework's own layers and autograd;
* "jax": `jax.jit` of a `jax.vjp` through flax layers, steady state; the first
  call (trace and compile) is timed separately.

Each pass takes an upstream gradient dY on the outputs and computes every
parameter gradient and the input gradient, as the reference's backward does.
`flops` counts the matrix products of one pass (2 m n k each), the work a BLAS
should be doing; element-wise work is not counted.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

IMPLEMENTATIONS = ("reference", "reference-noscan", "torch", "jax")
WARMUP_CALLS = 3  # allocator, thread pools and caches settle before timing starts


@dataclass(frozen=True)
class Built:
    step: Callable[[], Any]  # one forward + backward pass
    first_call_s: float | None = None  # jax: trace + compile + first run


@dataclass(frozen=True)
class Case:
    name: str
    dtype: str
    flops: float  # matrix-product flops of one forward + backward pass
    builders: dict[str, Callable[[], Built]]

    def build(self, implementation: str) -> Built:
        """The step of an implementation; "reference-noscan" is the reference's, to be timed
        inside `finiteness_scan_off()`."""
        built = self.builders[implementation.removesuffix("-noscan")]()
        for _ in range(WARMUP_CALLS):
            built.step()
        return built


def _rng_arrays(dtype: str, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _jitted(call: Callable[[], Any]) -> Built:
    """Times the first call (trace, compile, run), then returns the steady-state step."""
    import jax

    started = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - started
    return Built(lambda: jax.block_until_ready(call()), first)


@contextmanager
def finiteness_scan_off() -> Iterator[None]:
    """Every refimpl module's `require_array` with finite=False, for the duration."""
    import sys

    from refimpl import _validate

    original = _validate.require_array

    def no_scan(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "finite": False})

    modules = [
        m
        for name, m in list(sys.modules.items())
        if name.startswith("refimpl.") and getattr(m, "require_array", None) is original
    ]
    for module in modules:
        module.require_array = no_scan  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in modules:
            module.require_array = original  # type: ignore[attr-defined]


def mlp_case(sizes: tuple[int, ...], N: int, dtype: str) -> Case:
    """Tanh hidden layers, identity output (MLPSpec's defaults); gradients of Σ dY ⊙ Y."""
    from refimpl import mlp

    spec = mlp.MLPSpec(sizes, dtype=dtype)
    params = mlp.init_params(spec, np.random.default_rng(1))
    X, dY = _rng_arrays(dtype, (N, sizes[0]), (N, sizes[-1]))

    def reference() -> Built:
        def step() -> Any:
            _, cache = mlp.mlp_forward(spec, params, X)
            return mlp.mlp_backward(spec, dY, cache)

        return Built(step)

    def torch_eager() -> Built:
        import torch

        from conformance.components.mlp.torch_adapter import TorchMLP, param_names

        model = TorchMLP(spec, torch.device("cpu"))
        own = dict(model.named_parameters())
        with torch.no_grad():
            for ref_name, torch_name in param_names(spec).items():
                own[torch_name].copy_(torch.from_numpy(params[ref_name]))
        Xt, dYt = torch.from_numpy(X).requires_grad_(), torch.from_numpy(dY)

        def step() -> Any:
            model.zero_grad(set_to_none=True)
            Xt.grad = None
            model(Xt).backward(dYt)
            return Xt.grad

        return Built(step)

    def jax_jit() -> Built:
        import jax
        import jax.numpy as jnp

        from conformance.components.mlp.jax_adapter import FlaxMLP, to_variables

        model = FlaxMLP(spec)

        @jax.jit
        def vjp(variables: Any, X: Any, dY: Any) -> Any:
            Y, pullback = jax.vjp(model.apply, variables, X)
            return Y, pullback(dY)

        variables, Xj, dYj = to_variables(spec, params), jnp.asarray(X), jnp.asarray(dY)
        return _jitted(lambda: vjp(variables, Xj, dYj))

    products = sum(a * b for a, b in itertools.pairwise(sizes))
    name = f"mlp {'-'.join(map(str, sizes))} N={N} {dtype}"
    return Case(
        name, dtype, 6.0 * N * products, {"reference": reference, "torch": torch_eager, "jax": jax_jit}
    )


def rnn_case(D: int, H: int, C: int, T: int, N: int, dtype: str) -> Case:
    """Elman tanh RNN, readout of h_T, full BPTT; gradients for every parameter, X and h0."""
    from refimpl import bptt, rnn

    spec = rnn.RNNSpec(D, H, C, dtype=dtype)
    params = rnn.init_params(spec, np.random.default_rng(1))
    X, h0, dY = _rng_arrays(dtype, (T, N, D), (N, H), (N, C))

    def reference() -> Built:
        return Built(lambda: bptt.vjp(spec, params, X, h0, dY))

    def torch_eager() -> Built:
        import torch
        from torch import nn

        torch_dtype = getattr(torch, dtype)
        cell, head = nn.RNN(D, H, dtype=torch_dtype), nn.Linear(H, C, dtype=torch_dtype)
        Xt, h0t = torch.from_numpy(X).requires_grad_(), torch.from_numpy(h0[None]).requires_grad_()
        dYt = torch.from_numpy(dY)

        def step() -> Any:
            cell.zero_grad(set_to_none=True)
            head.zero_grad(set_to_none=True)
            Xt.grad = h0t.grad = None
            out, _ = cell(Xt, h0t)  # time-major (T, N, H)
            head(out[-1]).backward(dYt)
            return Xt.grad

        return Built(step)

    def jax_jit() -> Built:
        import flax.linen as fnn
        import jax
        import jax.numpy as jnp

        from conformance.frameworks.jax import enable_float64

        enable_float64()

        jdtype = jnp.dtype(dtype)

        class FlaxRNN(fnn.Module):
            @fnn.compact
            def __call__(self, X: Any, h0: Any) -> Any:
                cell = fnn.SimpleCell(H, dtype=jdtype, param_dtype=jdtype)
                h_T, _ = fnn.RNN(cell, time_major=True, return_carry=True)(X, initial_carry=h0)
                return fnn.Dense(C, dtype=jdtype, param_dtype=jdtype)(h_T)

        model = FlaxRNN()
        Xj, h0j, dYj = jnp.asarray(X), jnp.asarray(h0), jnp.asarray(dY)
        variables = model.init(jax.random.key(0), Xj, h0j)

        @jax.jit
        def vjp(variables: Any, X: Any, h0: Any, dY: Any) -> Any:
            Y, pullback = jax.vjp(model.apply, variables, X, h0)
            return Y, pullback(dY)

        return _jitted(lambda: vjp(variables, Xj, h0j, dYj))

    flops = 6.0 * T * N * (D * H + H * H) + 6.0 * N * H * C
    return Case(
        f"rnn D={D} H={H} T={T} N={N} {dtype}",
        dtype,
        flops,
        {"reference": reference, "torch": torch_eager, "jax": jax_jit},
    )


def batchnorm_case(N: int, D: int, dtype: str) -> Case:
    """Training mode, torch's convention for the running statistics; gradients for γ, β and X."""
    from refimpl import batchnorm as bn

    params, state = bn.init_bn_params(D, dtype), bn.init_state(D, dtype)
    X, dY = _rng_arrays(dtype, (N, D), (N, D))

    def reference() -> Built:
        def step() -> Any:
            _, new_state, cache = bn.batchnorm_forward(X, params, state, train=True)
            return bn.batchnorm_backward(dY, cache), new_state

        return Built(step)

    def torch_eager() -> Built:
        import torch
        from torch import nn

        layer = nn.BatchNorm1d(D, dtype=getattr(torch, dtype)).train()
        Xt, dYt = torch.from_numpy(X).requires_grad_(), torch.from_numpy(dY)

        def step() -> Any:
            layer.zero_grad(set_to_none=True)
            Xt.grad = None
            layer(Xt).backward(dYt)
            return Xt.grad

        return Built(step)

    def jax_jit() -> Built:
        import flax.linen as fnn
        import jax
        import jax.numpy as jnp

        from conformance.frameworks.jax import enable_float64

        enable_float64()

        jdtype = jnp.dtype(dtype)
        model = fnn.BatchNorm(
            use_running_average=False, momentum=0.99, epsilon=1e-5, dtype=jdtype, param_dtype=jdtype
        )
        Xj, dYj = jnp.asarray(X), jnp.asarray(dY)
        variables = model.init(jax.random.key(0), Xj)

        @jax.jit
        def vjp(params: Any, stats: Any, X: Any, dY: Any) -> Any:
            def forward(params: Any, X: Any) -> Any:
                return model.apply({"params": params, "batch_stats": stats}, X, mutable=["batch_stats"])

            Y, pullback, new_stats = jax.vjp(forward, params, X, has_aux=True)
            return Y, pullback(dY), new_stats

        return _jitted(lambda: vjp(variables["params"], variables["batch_stats"], Xj, dYj))

    return Case(
        f"batchnorm N={N} D={D} {dtype}",
        dtype,
        0.0,
        {"reference": reference, "torch": torch_eager, "jax": jax_jit},
    )


def clip_case(sizes: tuple[int, ...], dtype: str) -> Case:
    """Clipping by global norm (L2, M = 1, so every call rescales) of the gradients of an MLP of
    these sizes: torch's convention against `clip_grad_norm_`, optax's against its own."""
    from refimpl import clip

    shapes = [shape for a, b in itertools.pairwise(sizes) for shape in ((b, a), (b,))]
    grads = dict(zip((f"g{i}" for i in range(len(shapes))), _rng_arrays(dtype, *shapes), strict=True))

    def reference() -> Built:
        return Built(lambda: clip.clip_by_global_norm(grads, 1.0))

    def torch_eager() -> Built:
        import torch

        params = [torch.zeros(g.shape, dtype=getattr(torch, dtype)) for g in grads.values()]
        for p, g in zip(params, grads.values(), strict=True):
            p.grad = torch.from_numpy(g.copy())  # clipped in place, call after call
        return Built(lambda: torch.nn.utils.clip_grad_norm_(params, 1.0))

    def jax_jit() -> Built:
        import jax
        import jax.numpy as jnp
        import optax

        from conformance.frameworks.jax import enable_float64

        enable_float64()
        tx = optax.clip_by_global_norm(1.0)
        updates = {k: jnp.asarray(g) for k, g in grads.items()}
        state = tx.init(updates)
        update = jax.jit(lambda updates, state: tx.update(updates, state)[0])
        return _jitted(lambda: update(updates, state))

    return Case(
        f"clip {'-'.join(map(str, sizes))} {dtype}",
        dtype,
        0.0,
        {"reference": reference, "torch": torch_eager, "jax": jax_jit},
    )


CASES = (
    mlp_case((256, 512, 512, 512, 10), 128, "float32"),
    mlp_case((256, 512, 512, 512, 10), 128, "float64"),
    mlp_case((8, 16, 16, 4), 4, "float64"),
    rnn_case(32, 128, 10, 50, 16, "float64"),
    batchnorm_case(256, 512, "float32"),
    batchnorm_case(256, 512, "float64"),
    clip_case((256, 512, 512, 512, 10), "float32"),
    clip_case((256, 512, 512, 512, 10), "float64"),
)

PEAK_SIZE = 512  # the plain matrix product each case's GFLOP/s is measured against


def matmul_peak(dtype: str) -> tuple[Callable[[], Any], float]:
    """np.matmul of two PEAK_SIZE² matrices: the step and its flops."""
    A, B = _rng_arrays(dtype, (PEAK_SIZE, PEAK_SIZE), (PEAK_SIZE, PEAK_SIZE))
    out = np.empty_like(A)
    return (lambda: np.matmul(A, B, out=out)), 2.0 * PEAK_SIZE**3
