"""Golden files: every object rendered for each preset kind and option, byte for byte.

Regenerate after an intended change with `UPDATE_GOLDEN=1 pytest tests/unit/manifests/test_golden.py`
and review the diff like code. Each case renders the same objects from either served version (a
v1alpha1 Workspace and its lossless v1beta1 conversion, or the other way round).
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


ALL = [*cases.CASES, *cases.AWS_CASES, *cases.V1BETA1_CASES]


def render(case: str, version: str = cases.V1ALPHA1) -> str:
    settings = AWS_SETTINGS if case in cases.AWS_CASES else SETTINGS
    objects = workspace.build_workspace_objects(cases.workspace(case, version), settings)
    return workspace.dump_yaml(objects)


@pytest.mark.parametrize("case", ALL)
def test_rendered_objects_match_golden(case: str) -> None:
    path = GOLDEN_DIR / f"{case}.yaml"
    text = render(case)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", ALL)
def test_both_served_versions_render_the_same_objects(case: str) -> None:
    alpha, beta = cases.wire(case, cases.V1ALPHA1), cases.wire(case, cases.V1BETA1)
    assert alpha["apiVersion"] != beta["apiVersion"]
    assert render(case, cases.V1ALPHA1) == render(case, cases.V1BETA1) == (GOLDEN_DIR / f"{case}.yaml").read_text()


def test_every_golden_file_has_a_case() -> None:
    stale = {p.stem for p in GOLDEN_DIR.glob("*.yaml")} - set(ALL)
    assert not stale, f"golden files without a case: {sorted(stale)}"
