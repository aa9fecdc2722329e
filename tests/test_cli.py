"""python -m conformance: replay of stored reproducers, exit statuses, the printed matrix."""

from __future__ import annotations

import pytest

from conformance import cli
from conformance.case import Case
from conformance.compare import Context, write_reproducer
from conformance.components.mlp.strategies import MLP_CATALOG, mlp_case
from conformance.registry import component


def reproducer(tmp_path, framework: str = "numpy", prop: str = "upstream-linearity") -> str:  # type: ignore[no-untyped-def]
    case: Case = mlp_case(MLP_CATALOG[2], batch=6, seed=11)
    ctx = Context(prop, component("mlp"), framework, "", "float64", "cpu", case)
    return str(write_reproducer(ctx, tmp_path / f"{prop}.{framework}.npz"))


def test_replay_of_an_agreeing_case_exits_0(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["replay", reproducer(tmp_path)]) == 0
    assert "passed" in capsys.readouterr().out


def test_replay_of_a_disagreeing_case_exits_1_and_says_where(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from conformance.components.mlp import torch_adapter as torch_mlp

    path = reproducer(tmp_path, "torch", "gradient-agreement")

    def off_by_a_little(z, spec):  # type: ignore[no-untyped-def]
        return torch.nn.functional.leaky_relu(z, spec.slope) + 0.01 * z

    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "leaky_relu", off_by_a_little)
    assert cli.main(["replay", path]) == 1
    out = capsys.readouterr().out
    assert "gradient-agreement" in out and "parameter" in out and "replay" in out


def test_replay_can_switch_framework_and_dtype(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("jax")
    path = reproducer(tmp_path, "numpy", "gradient-agreement")
    assert cli.main(["replay", path, "--framework", "jax", "--dtype", "float32"]) == 0
    assert "jax float32" in capsys.readouterr().out


def test_replay_writes_no_new_copy(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = reproducer(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert cli.main(["replay", path]) == 0
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_help_lists_the_commands(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "replay", "hunt", "diff", "golden"):
        assert f"    {command} " in out


@pytest.mark.parametrize(
    ("argv", "status", "named"),
    [
        (["run", "--profile", "forever"], 4, "--profile"),  # a run answers as pytest does
        (["--frameworks", "tensorflow"], 4, "--frameworks"),
        (["--max-examples", "0"], 4, "--max-examples"),
        (["run", "--bogus"], 4, "--bogus"),
        (["diff", "a.json"], 2, "new"),
        (["replay", "x.npz", "--dtype", "float8"], 2, "--dtype"),
    ],
)
def test_a_usage_error_is_one_line_and_its_status(argv, status, named, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == status
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert named in line


def test_golden_of_an_unknown_component_is_one_line_and_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["golden", "--components", "nope"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("golden: ") and "'nope'" in line
