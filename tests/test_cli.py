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
    return str(write_reproducer(ctx, tmp_path))


def test_replay_of_an_agreeing_case_exits_0(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli.main(["replay", reproducer(tmp_path)]) == 0
    assert "passed" in capsys.readouterr().out


def test_replay_of_a_disagreeing_case_exits_1_and_says_where(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from conformance.components.mlp import torch_adapter as torch_mlp

    path = reproducer(tmp_path, "torch", "gradient-agreement")
    def off_by_a_little(z, slope):  # type: ignore[no-untyped-def]
        return torch.nn.functional.leaky_relu(z, slope) + 0.01 * z

    monkeypatch.setitem(torch_mlp.ACTIVATIONS, "leaky_relu", off_by_a_little)
    assert cli.main(["replay", path]) == 1
    out = capsys.readouterr().out
    assert "gradient-agreement" in out and "parameter" in out and "replay" in out


def test_replay_can_switch_framework_and_dtype(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("jax")
    path = reproducer(tmp_path, "numpy", "gradient-agreement")
    assert cli.main(["replay", path, "--framework", "jax", "--dtype", "float32"]) == 0
    assert "jax float32" in capsys.readouterr().out


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="reproducer"):
        cli.main(["replay", str(tmp_path / "nope.npz")])


def test_unknown_command_option_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--profile", "forever"])
    assert info.value.code == 2


def test_hunt_runs_rounds_in_their_own_processes_and_keeps_their_reports(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = cli.main(["hunt", "--minutes", "0.01", "--frameworks", "numpy", "--out", str(tmp_path),
                     "--", "-k", "test_upstream_linearity"])
    assert code == 0
    assert "hunt: 1 rounds" in capsys.readouterr().out
    assert (tmp_path / "round-001" / "report.json").is_file()
    assert (tmp_path / "round-001" / "log.txt").read_text().strip()
