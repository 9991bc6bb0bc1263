"""`kaito tune` forwards to the trainer's own parser and exits with the trainer's status."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kaito.cli.main import app


def test_help_lists_the_trainer_flags():
    result = CliRunner().invoke(app, ["tune", "--help"])
    assert result.exit_code == 0
    for flag in ("--config", "--model", "--data", "--output", "--method", "--set", "--save-steps"):
        assert flag in result.output


def test_qlora_without_cuda_exits_with_the_hardware_code(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(app, ["tune", "--method", "qlora", "--output", str(tmp_path / "out")])
    assert result.exit_code == 4 and "needs a CUDA GPU" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_override_exits_with_the_config_code():
    result = CliRunner().invoke(app, ["tune", "--set", "max_steps=3"])
    assert result.exit_code == 2 and "Section.key=value" in result.output
