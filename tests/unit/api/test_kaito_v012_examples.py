"""Every Workspace of KAITO v0.12.0's `examples/` through the admission entry point, unchanged.

The files under `tests/data/kaito-v0.12-examples/` are KAITO's own (copied unchanged, with a source
line). Each Workspace is admitted with the real catalog and the ConfigMaps of its own file, as a
KAITO user would apply them. All are admitted except those that carry a placeholder KAITO refuses
too; for those the test names the field and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kaito.api.admission import AdmissionOptions, ClusterReads, admit
from kaito.catalog.facts import build_catalog_facts

DATA = Path(__file__).resolve().parents[2] / "data" / "kaito-v0.12-examples"
FILES = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*.yaml"))
ARC_SKU = ("resource.instanceType", "<your-vm-sku>")  # the Arc examples leave the SKU to the reader
PLACEHOLDERS = {
    # file → (field, phrase of the refusal): KAITO v0.12 refuses these as written too
    **{f: ARC_SKU for f in FILES if f.startswith("inference/arc-examples/")},
    "fine-tuning/kaito_workspace_tuning_falcon_7b_mental.yaml": ("tuning.output.image", "ACR_REPO_HERE"),
    "fine-tuning/kaito_workspace_tuning_falcon_7b_oai.yaml": ("tuning.output.image", "ACR_REPO_HERE"),
    "fine-tuning/kaito_workspace_tuning_phi_3.yaml": ("tuning.output.image", "ACR_REPO_HERE"),
    "inference/kaito_workspace_phi_3_with_adapters.yaml": ("inference.adapters[0].source.image", "ACR_REPO_HERE"),
    # Refused on purpose (README `vllm-options-checked`): their ConfigMaps name vLLM options that the
    # vLLM we pin no longer has (`swap-space`; `max-seq-len-to-capture`, `num-scheduler-steps`), so
    # their pods could never start; admission names them instead of a crash loop.
    **{f"inference/{f}": ("inference.config", "vllm.swap-space: vLLM has no option")
       for f in ("kaito_workspace_custom_config.yaml", "kaito_workspace_llama-3.3_70b_instruct.yaml",
                 "kaito_workspace_tool_calling.yaml")},
}
# The accelerator example says what it needs: BYO nodes and the enableAccelerator gate.
OPTIONS = {
    "inference/kaito_workspace_accelerator.yaml": AdmissionOptions(auto_provisioning=False, enable_accelerator=True),
}


def _documents(name: str) -> tuple[list[dict], dict]:
    docs = [d for d in yaml.safe_load_all((DATA / name).read_text()) if d]
    configmaps = {((d["metadata"].get("namespace") or "default"), d["metadata"]["name"]): d.get("data") or {}
                  for d in docs if d.get("kind") == "ConfigMap"}
    return [d for d in docs if d.get("kind") == "Workspace"], configmaps


def test_every_kaito_workspace_example_is_here():
    workspaces = [f for f in FILES if _documents(f)[0]]
    assert len(workspaces) == 46
    assert {"inference/kaito_workspace_custom_config.yaml", "inference/kaito_workspace_tool_calling.yaml",
            "fine-tuning/kaito_workspace_tuning_phi_3_with_pvc_volume.yaml"} <= set(workspaces)


@pytest.mark.parametrize("name", FILES)
def test_example_is_admitted_unless_it_carries_a_placeholder(name):
    facts = build_catalog_facts("arc" if "arc-examples" in name else "azure")
    workspaces, configmaps = _documents(name)
    for ws in workspaces:
        assert ws["apiVersion"] == "kaito.sh/v1beta1"
        verdict = admit(ws, facts=facts, options=OPTIONS.get(name, AdmissionOptions()),
                        reads=ClusterReads(configmaps=configmaps))
        if name not in PLACEHOLDERS:
            assert verdict.allowed, f"{name}: {verdict.errors}"
            continue
        field, phrase = PLACEHOLDERS[name]
        assert not verdict.allowed
        assert any(e.path == field and phrase in e.message for e in verdict.errors), verdict.errors


def test_custom_config_configmaps_are_really_checked():
    """The examples' ConfigMaps are judged, not waved through: each removed vLLM option is named, and
    without them the rest is admitted (and a context over the model's is refused)."""
    ws, configmaps = _documents("inference/kaito_workspace_custom_config.yaml")
    facts = build_catalog_facts()
    (key,) = configmaps
    refused = admit(ws[0], facts=facts, reads=ClusterReads(configmaps=configmaps))
    assert [e.message.split(":", 1)[0] for e in refused.errors] == [
        "vllm.swap-space", "vllm.max-seq-len-to-capture", "vllm.num-scheduler-steps"]
    kept = "\n".join(line for line in configmaps[key]["inference_config.yaml"].splitlines()
                     if not line.strip().startswith(("swap-space", "max-seq-len-to-capture", "num-scheduler-steps")))
    assert admit(ws[0], facts=facts, reads=ClusterReads(configmaps={key: {"inference_config.yaml": kept}})).allowed
    too_long = {key: {"inference_config.yaml": "vllm:\n  max-model-len: 200000\n"}}
    verdict = admit(ws[0], facts=facts, reads=ClusterReads(configmaps=too_long))
    assert [e.path for e in verdict.errors] == ["inference.config"] and "131072" in verdict.errors[0].message
    missing = admit(ws[0], facts=facts, reads=ClusterReads(configmaps={}, complete=True))
    assert [e.path for e in missing.errors] == ["inference.config"]
    unread = admit(ws[0], facts=facts, reads=ClusterReads())
    assert unread.allowed and [w.path for w in unread.warnings] == ["inference.config"]


def test_gated_example_models_need_their_secret_flagged_not_refused():
    ws, _ = _documents("inference/kaito_workspace_gemma_3_4b_instruct.yaml")
    assert ws[0]["inference"]["preset"]["presetOptions"]["modelAccessSecret"] == "hf-token"
    assert admit(ws[0], facts=build_catalog_facts()).warnings == []
    del ws[0]["inference"]["preset"]["presetOptions"]
    verdict = admit(ws[0], facts=build_catalog_facts())
    assert verdict.allowed
    assert [w.path for w in verdict.warnings] == ["inference.preset.presetOptions.modelAccessSecret"]
    assert "HF_TOKEN" in verdict.warnings[0].message
