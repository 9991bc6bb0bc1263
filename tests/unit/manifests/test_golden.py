"""Golden files: every object rendered for each preset kind and option, byte for byte.

Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/unit/manifests/test_golden.py`
and review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kaito.manifests import images, workspace
from tests.unit.manifests import cases

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden"
SETTINGS = workspace.RenderSettings(images=images.ImageSettings(registry="registry.test/kaito"))
AWS_SETTINGS = workspace.RenderSettings(images=images.ImageSettings(registry="registry.test/kaito"), cloud="aws")


def render(case: str) -> str:
    settings = AWS_SETTINGS if case in cases.AWS_CASES else SETTINGS
    objects = workspace.build_workspace_objects(cases.workspace(case), settings)
    return workspace.dump_yaml(objects)


@pytest.mark.parametrize("case", [*cases.CASES, *cases.AWS_CASES])
def test_rendered_objects_match_golden(case: str) -> None:
    path = GOLDEN_DIR / f"{case}.yaml"
    text = render(case)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_case() -> None:
    stale = {p.stem for p in GOLDEN_DIR.glob("*.yaml")} - set(cases.CASES) - set(cases.AWS_CASES)
    assert not stale, f"golden files without a case: {sorted(stale)}"
