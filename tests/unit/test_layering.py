"""ARCHITECTURE.md's import rules, enforced: `lint-imports` checks the contracts in pyproject.toml.

import-linter builds the import graph statically, so a lazy import inside a function counts too:
a room cannot sneak around the map by hiding an import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports() -> str | None:
    local = Path(sys.executable).with_name("lint-imports")
    return str(local) if local.exists() else shutil.which("lint-imports")


def test_contracts_cover_every_room() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    sources = {m for c in config["contracts"] for m in c.get("source_modules", [])}
    rooms = {f"kaito.{p.name}" for p in (ROOT / "src" / "kaito").iterdir() if (p / "__init__.py").exists()}
    assert rooms - {"kaito.cli"} <= sources, f"rooms without a contract: {rooms - {'kaito.cli'} - sources}"


def test_import_contracts_hold() -> None:
    tool = _lint_imports()
    if tool is None:
        pytest.skip("lint-imports is not installed (pip install import-linter)")
    result = subprocess.run([tool, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and " 0 broken" in result.stdout
