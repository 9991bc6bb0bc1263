"""The admission rules wired to the real catalog (`build_catalog_facts`), on KAITO's own presets and SKUs."""

from __future__ import annotations

import pytest

from kaito.api.admission import admit
from kaito.catalog.facts import build_catalog_facts
from tests.unit.api.factories import ws

PRIVATE = {
    "name": "llama-2-7b",
    "accessMode": "private",
    "presetOptions": {"image": "r.io/llama/llama-2-7b:0.0.3"},
}
CASES = [
    # (id, overrides, expected error path or None)
    (
        "falcon-40b-fits-a100x4",
        {"resource.instanceType": "Standard_NC96ads_A100_v4", "inference.preset.name": "falcon-40b"},
        None,
    ),
    (
        "falcon-40b-too-big-for-v100x2",
        {"resource.instanceType": "Standard_NC12s_v3", "inference.preset.name": "falcon-40b"},
        "resource.instanceType",
    ),
    (
        "phi-3-mini-on-t4",
        {"resource.instanceType": "Standard_NC4as_T4_v3", "inference.preset.name": "phi-3-mini-4k-instruct"},
        None,
    ),
    ("llama-2-needs-private", {"inference.preset.name": "llama-2-7b"}, "inference.preset.accessMode"),
    ("llama-2-private-ok", {"inference.preset": PRIVATE}, None),
    (
        "llama-2-70b-needs-8-gpus",
        {
            "resource.instanceType": "Standard_NC24ads_A100_v4",
            "inference.preset": {**PRIVATE, "name": "llama-2-70b"},
        },
        "resource.instanceType",
    ),
    ("unknown-preset", {"inference.preset.name": "gpt-17"}, "inference.preset.name"),
    ("hf-id-accepted", {"inference.preset.name": "Qwen/Qwen2.5-0.5B-Instruct"}, None),
    ("unknown-sku", {"resource.instanceType": "m5.large"}, "resource.instanceType"),
]


@pytest.mark.parametrize(("overrides", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_with_catalog(overrides, path) -> None:
    errors = admit(ws("inference", overrides), facts=build_catalog_facts(read_local_sizes=False)).errors
    if path is None:
        assert errors == []
    else:
        assert path in {e.path for e in errors}, errors


def test_hf_id_of_unknown_size_warns_fit_skipped() -> None:
    verdict = admit(ws("inference", {"inference.preset.name": "someorg/some-model"}),
                    facts=build_catalog_facts(read_local_sizes=False))
    assert verdict.errors == []
    assert any(p.path == "resource.instanceType" for p in verdict.warnings), verdict.problems
