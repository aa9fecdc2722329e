"""Faults only sizes, layouts and paths reach (conformance.layouts, conformance.paths): each is
planted in the real torch or JAX, and the suite's own test for that dimension must fail while
the properties that were there before pass (the fault hides from them).

The faults are of the size of a kernel's rounding gone wrong, 1e-9 relative in float64 (a
float64 comparison allows about 1e-14): a vectorized loop past 64 elements accumulating in
lower precision, a kernel that mishandles a non-contiguous operand or a batch of a power of
two, an op-by-op path, a module's bookkeeping, a vmap, a foreach kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from runs import META_RUN  # noqa: E402

from conformance.compare import ConformanceFailure  # noqa: E402
from conformance.components.clip import test_clip  # noqa: E402
from conformance.components.mlp import jax_adapter as jax_mlp  # noqa: E402
from conformance.components.mlp import test_mlp  # noqa: E402
from conformance.components.mlp_bn import test_mlp_bn  # noqa: E402
from conformance.config import Run  # noqa: E402

OFF = 1e-9  # relative: about 10⁴ float64 tolerances, within rounding of a float32 result
# the failures as first found: shrinking them would only cost time (the examples are the same)
RUN = Run(replace(META_RUN.config, profile=replace(META_RUN.config.profile, shrink=False)))


def wrong_when(condition: Callable[[Any], bool]) -> Callable[..., Any]:
    """F.linear, off by OFF relative when condition(input) holds."""
    real = torch.nn.functional.linear

    def linear(x: Any, weight: Any, bias: Any = None) -> Any:
        out = real(x, weight, bias)
        return out * (1 + OFF) if condition(x) else out

    return linear


def test_a_kernel_wrong_past_64_elements_fails_size_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.nn.functional, "linear", wrong_when(lambda x: x.shape[-1] > 64))
    for test in (test_mlp.test_forward, test_mlp.test_gradient, test_mlp.test_loss_gradient):
        test(framework="torch", dtype="float64", conformance_run=RUN)  # widths <= 16: unseen
    with pytest.raises(ConformanceFailure, match=r"size-agreement, component mlp, framework torch") as info:
        test_mlp.test_size_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    assert "parameter layout " in str(info.value)


def test_a_kernel_wrong_on_strided_input_fails_layout_invariance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.nn.functional, "linear", wrong_when(lambda x: not x.is_contiguous()))
    test_mlp.test_gradient(framework="torch", dtype="float64", conformance_run=RUN)
    with pytest.raises(ConformanceFailure, match=r"layout-invariance.*framework torch") as info:
        test_mlp.test_layout_invariance(framework="torch", dtype="float64", conformance_run=RUN)
    assert info.match(r"parameter layout (strided|transposed) vs contiguous:")


def test_a_kernel_wrong_for_a_power_of_two_batch_fails_batch_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """33 rows are right, the block of 32 is not: only the blocks see it."""
    monkeypatch.setattr(
        torch.nn.functional,
        "linear",
        wrong_when(lambda x: x.dim() == 2 and x.shape[0] in (2, 4, 8, 16, 32, 64, 128)),
    )
    test_mlp.test_size_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    with pytest.raises(ConformanceFailure, match=r"batch-blocks, component mlp, framework torch") as info:
        test_mlp.test_batch_blocks(framework="torch", dtype="float64", conformance_run=RUN)
    assert "row blocks [(0, 32), (32, 33)] vs the batch" in str(info.value)


def tanh_off_when(flag: bool) -> Callable[[Any, float], Any]:
    """jnp.tanh, off by OFF relative when jax_disable_jit is `flag` at trace time (True: only
    the op-by-op path; False: only what jit compiles from now on)."""

    def tanh(z: Any, slope: float) -> Any:
        return jnp.tanh(z) * (1 + OFF) if jax.config.jax_disable_jit == flag else jnp.tanh(z)

    return tanh


def test_a_wrong_op_by_op_path_fails_path_agreement_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jitted default matches the reference; its twin does not, and that is a finding."""
    monkeypatch.setitem(jax_mlp.ACTIVATIONS, "tanh", tanh_off_when(True))
    test_mlp.test_gradient(framework="jax", dtype="float64", conformance_run=RUN)
    with pytest.raises(ConformanceFailure, match=r"path-agreement, component mlp, framework jax") as info:
        test_mlp.test_path_agreement(framework="jax", dtype="float64", conformance_run=RUN)
    assert "path eager vs the default:" in str(info.value)


def test_a_wrong_jitted_path_fails_path_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    jax_mlp._vjp.clear_cache()  # programs compiled before the fault would hide it
    monkeypatch.setitem(jax_mlp.ACTIVATIONS, "tanh", tanh_off_when(False))
    try:
        with pytest.raises(ConformanceFailure, match=r"path-agreement, component mlp, framework jax"):
            test_mlp.test_path_agreement(framework="jax", dtype="float64", conformance_run=RUN)
    finally:
        jax_mlp._vjp.clear_cache()  # nor may the faulty programs outlive the test


def test_module_bookkeeping_off_its_functional_twin_fails_path_agreement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nn.BatchNorm1d updating its running statistics with another momentum than F.batch_norm."""
    real = torch.nn.BatchNorm1d.forward

    def forward(self: Any, x: Any) -> Any:
        momentum, self.momentum = self.momentum, self.momentum * (1 + OFF)
        try:
            return real(self, x)
        finally:
            self.momentum = momentum

    monkeypatch.setattr(torch.nn.BatchNorm1d, "forward", forward)
    with pytest.raises(ConformanceFailure, match=r"path-agreement, component mlp_bn, fr") as info:
        test_mlp_bn.test_path_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    assert info.match(r"parameter path functional vs the default: state running_(mean|var)1")


def test_a_wrong_vmap_fails_per_example_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch.func.vmap

    def vmap(function: Any, *args: Any, **kwargs: Any) -> Any:
        mapped = real(function, *args, **kwargs)
        return lambda *a, **k: torch.utils._pytree.tree_map(lambda t: t * (1 + OFF), mapped(*a, **k))

    monkeypatch.setattr(torch.func, "vmap", vmap)
    with pytest.raises(ConformanceFailure, match=r"per-example-gradients.*framework torch") as info:
        test_mlp.test_per_example_gradients(framework="torch", dtype="float64", conformance_run=RUN)
    assert "vmap vs a loop, example 0:" in str(info.value)


def test_a_wrong_foreach_norm_fails_path_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch._foreach_norm
    monkeypatch.setattr(torch, "_foreach_norm", lambda *a, **k: [n * (1 + OFF) for n in real(*a, **k)])
    with pytest.raises(ConformanceFailure, match=r"path-agreement, component clip, framework torch") as info:
        test_clip.test_path_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    test_clip.test_concatenated(framework="torch", dtype="float64", conformance_run=RUN)
    assert info.match(r"path (loop|foreach) vs the default: output (norm|clipped/)")


def test_a_norm_wrong_past_2200_elements_fails_clip_concatenated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tensor of the case is right (the widest, 33 x 65, has 2145 entries), the norm of
    their concatenation (2291) is not: only the one long call sees it."""

    def wrong(norm: Callable[..., Any]) -> Callable[..., Any]:
        def patched(t: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(t, list | tuple):
                return [
                    n * (1 + OFF) if x.numel() > 2200 else n
                    for x, n in zip(t, norm(t, *args, **kwargs), strict=True)
                ]
            n = norm(t, *args, **kwargs)
            return n * (1 + OFF) if t.numel() > 2200 else n

        return patched

    monkeypatch.setattr(torch, "_foreach_norm", wrong(torch._foreach_norm))
    monkeypatch.setattr(torch.linalg, "vector_norm", wrong(torch.linalg.vector_norm))
    test_clip.test_size_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    with pytest.raises(ConformanceFailure, match=r"clip-concatenated, component clip, fr") as info:
        test_clip.test_concatenated(framework="torch", dtype="float64", conformance_run=RUN)
    assert "the concatenation vs the tensors: output " in str(info.value)


def test_the_real_frameworks_pass_the_same_tests() -> None:
    """Without a fault these tests pass: the failures above are the faults'."""
    for test in (
        test_mlp.test_size_agreement,
        test_mlp.test_layout_invariance,
        test_mlp.test_batch_blocks,
        test_mlp.test_path_agreement,
        test_mlp.test_per_example_gradients,
    ):
        test(framework="torch", dtype="float64", conformance_run=RUN)
    test_mlp.test_path_agreement(framework="jax", dtype="float64", conformance_run=RUN)
    test_mlp_bn.test_path_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    test_clip.test_path_agreement(framework="torch", dtype="float64", conformance_run=RUN)
    test_clip.test_concatenated(framework="torch", dtype="float64", conformance_run=RUN)
