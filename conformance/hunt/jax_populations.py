"""A whole population through JAX in one call: `jax.vmap` inside one `jax.jit` per architecture.

The forward functions are the adapters' own (`_outputs` over flax `Dense`, `BatchNorm`,
`nn.RNN(SimpleCell)` and optax losses); vmap gives every member its own parameters,
running statistics and batch. Each member's pullback runs twice, under the random upstream
gradient dY and under the loss. Parameters enter under the reference's names and layout
and are mapped to flax's variables inside the traced function (Wᵀ as a kernel, the RNN's
b_ih + b_hh as SimpleCell's one bias), so the gradients come back by the reference's
names. One program is compiled per spec, mode, dtype and shape (the spec is static,
shapes come from the bucket); jit keeps them for the hunt, and JAX's persistent
compilation cache (`enable_cache`) across hunts.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from conformance.components.mlp import jax_adapter as mlp
from conformance.components.mlp_bn import jax_adapter as mlp_bn
from conformance.components.rnn import jax_adapter as rnn
from conformance.hunt.populations import Population
from conformance.hunt.reference import Results


def enable_cache(folder: Path) -> None:
    """Compiled programs written to `folder` and read back by later hunts."""
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run(population: Population, spec: Any, dtype: str) -> Results:
    """The groups of conformance.hunt.reference, from JAX, in `dtype`."""
    spec = replace(spec, dtype=dtype)  # spec carries jax's conventions

    def stacked(group: str, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        return {
            k: v.astype(dtype) if v.dtype.kind == "f" else v
            for k, v in population.stacked(group, keys).items()
        }

    if hasattr(spec, "sizes"):
        x = stacked("inputs", ["X", "targets", "dY"])
        state = stacked("state") if spec.batchnorm else {}
        out = _mlp_program(spec, population.bucket.train)(
            stacked("params"), state, x["X"], x["targets"], x["dY"]
        )
    else:
        x = stacked("inputs", ["X", "h0", "targets", "dY"])
        T = x["X"].shape[1]
        k = np.int32(rnn.window(spec, T))
        out = _rnn_program(replace(spec, truncation=None))(
            stacked("params"), x["X"], x["h0"], x["targets"], x["dY"], k
        )
    return jax.tree.map(lambda a: np.asarray(a, np.float64), out)


def _pull(f: Any, *primals: Any, u: Any, has_aux: bool = False) -> Any:
    """Outputs (Y, loss), the pullbacks of (u, 0) and (0, 1), and f's aux."""
    if has_aux:
        (Y, loss), pullback, aux = jax.vjp(f, *primals, has_aux=True)
    else:
        (Y, loss), pullback = jax.vjp(f, *primals)
        aux = None
    zero, one = jnp.zeros_like(loss), jnp.ones_like(loss)
    return Y, loss, pullback((u, zero)), pullback((jnp.zeros_like(Y), one)), aux


@partial(jax.jit, static_argnums=(0, 1))
def _mlp_jit(spec: Any, train: bool, params: Any, state: Any, X: Any, targets: Any, dY: Any) -> Any:
    def member(p: Any, s: Any, x: Any, t: Any, u: Any) -> Any:
        if spec.batchnorm:
            stats = mlp_bn.to_batch_stats(spec, s)

            def f(p: Any, x: Any) -> Any:
                variables = mlp_bn.to_variables(spec, p, x.shape[0])
                mode = (spec, train, False, "contiguous", False)  # two-pass variance, flax's BatchNorm
                return mlp_bn._outputs(mode, t, stats, variables, x)

            Y, loss, g, gl, new_stats = _pull(f, p, x, u=u, has_aux=True)
        else:
            Y, loss, g, gl, new_stats = _pull(
                lambda p, x: mlp._outputs(spec, "contiguous", t, mlp.to_variables(spec, p), x), p, x, u=u
            )
        results = {
            "forward": {"Y": Y, "loss": loss},
            "gradient": {**g[0], "X": g[1]},
            "loss-gradient": {**gl[0], "X": gl[1]},
        }
        if spec.batchnorm and train:
            results["state"] = {
                f"{stat}{l}": new_stats[f"BatchNorm_{l}"][key]
                for l in spec.bn_layers()
                for stat, key in (("running_mean", "mean"), ("running_var", "var"))
            }
        return results

    return jax.vmap(member)(params, state, X, targets, dY)


def _mlp_program(spec: Any, train: bool) -> Any:
    mlp.check_conventions(spec, batchnorm=spec.batchnorm)
    return partial(_mlp_jit, spec, train)


def _rnn_variables(p: Any, T: int, N: int) -> dict[str, Any]:
    """The adapter's variables (rnn.to_variables), traced: kernels Wᵀ, one bias b_ih + b_hh."""
    simple = {"i": {"kernel": p["W_ih"].T, "bias": p["b_ih"] + p["b_hh"]}, "h": {"kernel": p["W_hh"].T}}
    zeros = jnp.zeros((T, N, p["W_hh"].shape[0]), p["W_hh"].dtype)
    return {
        "rnn": {"params": {"cell": {"simple": simple}}, "perturbations": {"cell": {"h": zeros}}},
        "readout": {"params": {"kernel": p["W_out"].T, "bias": p["b_out"]}},
    }


@partial(jax.jit, static_argnums=0)
def _rnn_jit(spec: Any, params: Any, X: Any, h0: Any, targets: Any, dY: Any, k: Any) -> Any:
    def member(p: Any, x: Any, h: Any, t: Any, u: Any) -> Any:
        def f(p: Any, x: Any, h: Any) -> Any:
            variables = _rnn_variables(p, x.shape[0], x.shape[1])
            return rnn._outputs(spec, "contiguous", t, k, variables, x, h)

        Y, loss, g, gl, _ = _pull(f, p, x, h, u=u)
        return {
            "forward": {"Y": Y, "loss": loss},
            "gradient": {**g[0], "X": g[1], "h0": g[2]},
            "loss-gradient": {**gl[0], "X": gl[1], "h0": gl[2]},
        }

    return jax.vmap(member)(params, X, h0, targets, dY)


def _rnn_program(spec: Any) -> Any:
    return partial(_rnn_jit, spec)
