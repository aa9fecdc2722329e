"""Under pytest-xdist (`-n N`): each worker runs whole groups of rows that compile the same
programs.

A row of a compiling framework (JAX, a plugin built on it) compiles every (spec, shape,
dtype) it meets, and the properties of one component in one framework and dtype meet the
same ones (the ci profile draws them from the component's catalog). Spread test by test,
as xdist's `load` does, two workers compiled them all twice. Grouped by test module (a
component's) and `[framework-dtype]`, each is compiled once: the ci profile went from 229 s
to 197 s wall on 2 cores (947 rows). The groups go out largest first (xdist's `loadscope`
order); a test without a `[framework-dtype]` parametrization is a group of its own, as
under `load`.

The plugin (`conformance.plugin.pytest_xdist_make_scheduler`) uses this scheduler when
`-n` is given without `--dist`; `--dist load` (or any other mode) keeps xdist's own.
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

_ROW = re.compile(r"^(?P<module>[^:]*)::\w+\[(?P<framework>[\w.]+)-(?P<dtype>\w+)\]$")


def group_of(nodeid: str) -> str:
    """`<module>[<framework>-<dtype>]` for a row's test, else the test's own id."""
    row = _ROW.match(nodeid)
    return f"{row['module']}[{row['framework']}-{row['dtype']}]" if row else nodeid


class ByCompiledPrograms(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
    """xdist's `loadscope` with the row groups of `group_of` as its scopes."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)
