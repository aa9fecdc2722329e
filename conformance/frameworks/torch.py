"""torch as a framework plugin: its adapters are the components' torch_adapter modules,
which use torch's own public layers (`nn.Linear`, `nn.BatchNorm1d`, `nn.RNN`,
`F.leaky_relu`, `clip_grad_norm_`, ...), each call with one intra-op thread. torch is
imported only when asked for.

torch 2.13 registers the decompositions `torch.func.jvp` uses through `torch.jit.script`,
which warns that it is deprecated, once for each of 18 functions, the first time forward
mode runs. Nothing here calls `torch.jit`, so every adapter call runs with that one
warning filtered: wherever the suite runs from, no configuration file needed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from conformance.framework import Framework


class Torch(Framework):
    name = "torch"
    requires = ("torch",)
    install = "pip install '.[torch]'"
    order = 10

    def version(self) -> str:
        import torch

        return str(torch.__version__)

    def device_unavailable(self, device: str) -> str | None:
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            return "torch: no CUDA device is available"
        return None

    def device(self, device: str) -> Any:
        import torch

        return torch.device(device)

    @contextlib.contextmanager
    def activate(self, device: str) -> Iterator[None]:
        """Every adapter call with one intra-op thread (torch_paths.one_thread: on the suite's
        2 cores, waking a second thread costs more than the products of its cases)."""
        from conformance.frameworks.torch_paths import one_thread

        with warnings.catch_warnings(), one_thread():
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
            yield


FRAMEWORK = Torch()


def from_numpy(array: Any) -> Any:
    """torch.from_numpy, and a bfloat16 array (ml_dtypes, which torch cannot read) by its bits."""
    import torch

    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view("int16")).view(torch.bfloat16)
    return torch.from_numpy(array)


def to_numpy(tensor: Any) -> Any:
    """A tensor as a float64 NumPy array (exact from every floating dtype, bfloat16 included)."""
    import torch

    return tensor.detach().cpu().to(torch.float64).numpy()
