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


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_contracts_cover_every_room() -> None:
    sources = {m for c in _contracts() for m in c.get("source_modules", ())}
    rooms = {f"kaito.{p.name}" for p in (ROOT / "src" / "kaito").iterdir() if (p / "__init__.py").exists()}
    assert rooms - {"kaito.cli"} <= sources, f"rooms without a contract: {rooms - {'kaito.cli'} - sources}"


def test_contracts_forbid_cycles_and_guard_the_operator_room() -> None:
    """No cycle in any room (every package under `kaito`, at every depth); only the CLI imports
    `kaito.operator`; the operator room is on the torch-free side."""
    by_type: dict[str, list[dict]] = {}
    for contract in _contracts():
        by_type.setdefault(contract["type"], []).append(contract)
    assert any(c["ancestors"] == ["kaito"] and c.get("depth", 10) >= 3 for c in by_type["acyclic_siblings"])
    assert {"protected_modules": ["kaito.operator"], "allowed_importers": ["kaito.cli"]}.items() <= next(
        c for c in by_type["protected"] if c["protected_modules"] == ["kaito.operator"]).items()
    torch_free = next(c for c in by_type["forbidden"] if "torch" in c["forbidden_modules"])
    assert "kaito.operator" in torch_free["source_modules"]


def test_import_contracts_hold() -> None:
    tool = _lint_imports()
    if tool is None:
        pytest.skip("lint-imports is not installed (pip install import-linter)")
    result = subprocess.run([tool, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and " 0 broken" in result.stdout


def test_only_the_api_imports_a_served_version_with_no_exceptions() -> None:
    """ARCHITECTURE.md rule 8 with no `ignore_imports`: every room outside `kaito.api` speaks the hub."""
    (wire,) = [c for c in _contracts() if c.get("protected_modules") == ["kaito.api.v1alpha1", "kaito.api.v1beta1"]]
    assert wire["allowed_importers"] == ["kaito.api"]
    assert not wire.get("ignore_imports"), wire.get("ignore_imports")
    # And the import graph agrees (lint-imports checks the same from the contract, in CI).
    offenders = []
    for path in (ROOT / "src" / "kaito").rglob("*.py"):
        if (ROOT / "src" / "kaito" / "api") in path.parents:
            continue
        text = path.read_text()
        if "kaito.api.v1alpha1" in text or "kaito.api.v1beta1" in text or "from kaito.api import v1" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], offenders
