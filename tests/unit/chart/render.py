"""Render `charts/kaito` offline with helm-python-sdk (Helm v4's Go library, no binary, no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "kaito"
NAMESPACE = "kaito-system"


def render(values: dict[str, Any] | None = None, *, release: str = "kaito") -> list[dict[str, Any]]:
    """Every object the chart installs (templates, then the CRDs of `crds/`), as dicts."""
    helm = pytest.importorskip("helm_python")
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values or {}, name=release, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for _path, text in sorted(rendered.items()):
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    for crd in sorted((CHART / "crds").glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(crd.read_text()) if doc]
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]
