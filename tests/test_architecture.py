"""The shape of the code (docs/ARCHITECTURE.md): imports go down the layers, no import circle,
refimpl imports no framework, and modules are loaded by name only where components and
adapters are.

Every `import` and `from ... import` of every module counts, inside functions too (a lazy
import is a dependency all the same); imports under `if TYPE_CHECKING:` do not.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conformance", "refimpl")

# docs/ARCHITECTURE.md, "The layers": a module may import its own layer and the ones below.
LAYERS = (
    (
        "conformance.case",
        "conformance.record",
        "conformance.profiles",
        "conformance.tolerances",
        "conformance.backend",
        "conformance.files",
        "conformance.rounding",
        "conformance.dtypes",
    ),
    ("conformance.component", "conformance.compare", "conformance.bounds"),
    (
        "conformance.properties",
        "conformance.strategies",
        "conformance.initialization",
        "conformance.paths",
        "conformance.layouts",
        "conformance.isolation",
        "conformance.components.*.reference",
        "conformance.components.*.strategies",
        "conformance.components.*.properties",
        "conformance.components.*.rounding",
        "conformance.components.*.smooth_rounding",
        "conformance.components.*.boundary",
        "conformance.components.*.range_ends",
    ),
    ("conformance.components.*",),
    (
        "conformance.registry",
        "conformance.framework",
        "conformance.golden",
        "conformance.golden.storage",
        "conformance.golden.property",
    ),
    ("conformance.frameworks", "conformance.frameworks.*", "conformance.components.*.*_adapter"),
    (
        "conformance.config",
        "conformance.runner",
        "conformance.scopes",
        "conformance.replay",
        "conformance.golden.regenerate",
        "conformance.stress",
    ),
    tuple(
        f"conformance.hunt{m}"
        for m in (
            "",
            ".shrink",
            ".populations",
            ".reference",
            ".screen",
            ".confirm",
            ".minimize",
            ".findings",
            ".script_templates",
            ".scripts",
            ".writer",
            ".torch_populations",
            ".jax_populations",
            ".tasks",
            ".workers",
            ".cluster",
            ".engine",
            ".progress",
        )
    ),
    (
        "conformance.testing",
        "conformance.plugin",
        "conformance.distribution",
        "conformance.session",
        "conformance.outcome",
        "conformance.report",
        "conformance.report.*",
        "conformance.diff",
        "conformance.known_issues",
        "conformance.cli",
        "conformance.__main__",
        "conformance.components.*.test_*",
        "conformance.components",
        "conformance.hunt.command",
    ),
)
# where a module is imported by a name computed at run time
# (known_issues: the `reached` predicate an entry names, conformance.scopes or a plugin's)
IMPORTLIB_ALLOWED = {
    "conformance.registry",
    "conformance.framework",
    "conformance.frameworks",
    "conformance.known_issues",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (a `from package import module` counts as the module)."""
    tree = ast.parse(path.read_text())
    skipped = _type_checking_blocks(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            )
    return {name for name in found if name in known}


def layer(name: str) -> int:
    import fnmatch

    for depth, patterns in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(name, p) and name.count(".") == p.count(".") for p in patterns):
            return depth
    raise AssertionError(f"{name}: not placed in a layer of docs/ARCHITECTURE.md (LAYERS here)")


GRAPH = {name: imports(path, set(modules())) for name, path in modules().items()}


def test_refimpl_imports_nothing_of_the_suite_nor_a_framework() -> None:
    for name, path in modules().items():
        if name.startswith("refimpl"):
            tree = ast.parse(path.read_text())
            roots = {
                a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
            }
            roots |= {
                n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
            }
            assert not roots & {"torch", "jax", "flax", "optax", "conformance"}, name


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n.startswith("conformance")))
def test_imports_go_down_the_layers(name: str) -> None:
    upward = sorted(
        target for target in GRAPH[name] if target.startswith("conformance") and layer(target) > layer(name)
    )
    assert not upward, f"{name} (layer {layer(name)}) imports upward: {upward}"


def test_no_import_circle() -> None:
    """Tarjan's strongly connected components of the import graph: every one a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in GRAPH[v]:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_modules_are_loaded_by_name_only_for_components_and_adapters() -> None:
    users = {
        name
        for name, path in modules().items()
        if "import_module" in path.read_text() or "__import__" in path.read_text()
    }
    assert users <= IMPORTLIB_ALLOWED, sorted(users - IMPORTLIB_ALLOWED)


def test_the_checks_above_can_fail() -> None:
    """Each check, fed a graph with the fault it looks for, finds it."""
    assert layer("conformance.case") < layer("conformance.plugin")
    with pytest.raises(AssertionError, match="not placed"):
        layer("conformance.nowhere")
    cyclic = {"a": {"b"}, "b": {"a"}}
    saved = dict(GRAPH)
    GRAPH.clear()
    GRAPH.update(cyclic)
    try:
        with pytest.raises(AssertionError, match="import circles"):
            test_no_import_circle()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


# ---------------------------------------------------------------- adapters independent of the reference


def spec_classes() -> set[type]:
    from conformance import registry

    return {record.spec_class for record in registry.components().values()}


def computed_names() -> set[str]:
    """What the components' spec classes compute (methods, properties), as opposed to the
    dataclass fields they hold: an adapter reads the fields and builds its network itself."""
    names: set[str] = set()
    for cls in spec_classes():
        held = {f.name for f in dataclasses.fields(cls)}
        names |= {
            name
            for name, value in vars(cls).items()
            if not name.startswith("_")
            and name not in held
            and (callable(value) or isinstance(value, property | classmethod | staticmethod))
        }
    return names


def reference_calls(source: str, computed: set[str], allowed: set[str]) -> list[str]:
    """Where `source` imports from refimpl anything but the `allowed` spec classes, or reaches
    an attribute in `computed` on anything but an imported module (optax.sgd is no spec's sgd)."""
    tree = ast.parse(source)
    modules: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {(a.asname or a.name).split(".")[0] for a in node.names}
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "refimpl"
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules |= {a.asname or a.name for a in node.names}
            if node.module.split(".")[0] == "refimpl":
                found += [
                    f"line {node.lineno}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name not in allowed
                ]
    for node in ast.walk(tree):
        on_module = (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
        )
        if isinstance(node, ast.Attribute) and node.attr in computed and not on_module:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return sorted(found)


ADAPTERS = sorted((ROOT / "conformance" / "components").glob("*/*_adapter.py"))


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_adapters_read_spec_fields_and_call_nothing_of_the_reference(path: Path) -> None:
    """A fault in a refimpl helper (MLPSpec.activation, bn_layers, rnn.output_shape, ...) must
    change the reference and not the frameworks, so the suite sees it: an adapter imports from
    refimpl only the spec classes (for isinstance and annotations) and calls no spec method."""
    allowed = {cls.__name__ for cls in spec_classes() if cls.__module__.startswith("refimpl")}
    found = reference_calls(path.read_text(), computed_names(), allowed)
    assert not found, f"{path.relative_to(ROOT)} reaches into the reference: {found}"


def test_the_adapter_check_can_fail() -> None:
    computed = computed_names()
    assert ADAPTERS
    assert {"activation", "bn_layers", "param_shapes", "depth", "network_spec", "sgd"} <= computed
    bad = (
        "import optax\nfrom refimpl.mlp import MLPSpec, init_params\n"
        "from refimpl.rnn import output_shape\ndef f(spec, case):\n    optax.sgd(0.1)\n"
        "    return spec.activation(1), case.spec.depth\n"
    )
    assert reference_calls(bad, computed, {"MLPSpec"}) == [
        "line 2: from refimpl.mlp import init_params",
        "line 3: from refimpl.rnn import output_shape",
        "line 6: case.spec.depth",
        "line 6: spec.activation",
    ]
