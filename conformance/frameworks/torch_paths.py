"""torch's side of conformance.layouts and conformance.paths, shared by the torch adapters:
an input handed over in a layout, the path a case asks for, and torch.compile as the suite
runs it. Imported by adapters only (it imports torch)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from conformance.case import Case

BUILT_LAYOUTS = ("contiguous", "strided", "transposed")  # what laid_out builds from any tensor
# torch.compile as the compiled path runs it: one graph per shape and dtype (no dynamic shapes,
# whose symbolic kernels are another path), and a graph break is an error rather than a silent
# return to eager mode for part of the network
COMPILE: dict[str, Any] = {"dynamic": False, "fullgraph": True}
# Every spec and shape is a graph of its own, guarded on the same forward code: past dynamo's
# default of 8 it would run the rest eagerly. The limit is raised, and hitting it is an error.
RECOMPILE: dict[str, Any] = {
    "recompile_limit": 4096,
    "accumulated_recompile_limit": 1 << 16,
    "fail_on_recompile_limit_hit": True,
}
_COMPILED: dict[Hashable, tuple[nn.Module, Any]] = {}


@contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads for the duration: nn.BatchNorm1d's CPU kernel hands even a
    6 x 6 batch to them, and a product of the sizes conformance.layouts draws (33 x 129 x 65)
    goes to two threads too; waking them costs far more than the arithmetic (0.2 ms a call
    against 0.04 ms with one thread on 2 cores, 10 ms and more when the cores are busy:
    layout-invariance's ci row took 2.1 s of CPU with two threads, 0.12 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def laid_out(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The values of t handed over in `layout` (conformance.layouts), a tensor of its own:
    "strided" every other element along the last axis of a tensor twice as wide (strides
    (..., 2)), "transposed" a contiguous tensor of the reversed axes, permuted back. A 0-d
    tensor has one layout."""
    if t.dim() == 0 and layout in BUILT_LAYOUTS:
        return t
    if layout == "strided":
        return torch.repeat_interleave(t, 2, dim=-1)[..., ::2]
    if layout == "transposed":
        order = tuple(reversed(range(t.dim())))
        return t.permute(order).contiguous().permute(order)
    if layout != "contiguous":
        raise ValueError(
            f"meta['layout']: torch builds {list(BUILT_LAYOUTS)} from a tensor, received {layout!r}"
        )
    return t


def path_of(case: Case, offered: tuple[str, ...]) -> str | None:
    """case.meta["path"] (None: the default), one of `offered` or a ValueError naming it."""
    path = case.meta.get("path")
    if path is not None and path not in offered:
        raise ValueError(
            f"meta['path']: this torch adapter offers {list(offered)} beside its default, received {path!r}"
        )
    return None if path is None else str(path)


def compiled(key: Hashable, build: Callable[[], nn.Module]) -> tuple[nn.Module, Any]:
    """(module, torch.compile(module)), built once per key (a spec and a device): the caller
    loads each case's parameters into the module and calls the compiled one."""
    if key not in _COMPILED:
        module = build()
        _COMPILED[key] = (module, torch.compile(module, **COMPILE))
    return _COMPILED[key]


def run_compiled(function: Callable[..., Any], *args: Any) -> Any:
    """function(*args) under RECOMPILE."""
    import torch._dynamo

    with torch._dynamo.config.patch(**RECOMPILE):
        return function(*args)
