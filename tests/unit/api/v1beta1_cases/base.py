"""Building blocks of the v1beta1 table: the case type, v1beta1 Workspace makers, cluster settings."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kaito.api.admission import AdmissionOptions, ClusterReads
from tests.unit.api.factories import DELETE, set_path

RELEASE_NS = "kaito-workspace"
NAP = AdmissionOptions(release_namespace=RELEASE_NS)  # node auto-provisioning, KAITO's default
BYO = AdmissionOptions(auto_provisioning=False, release_namespace=RELEASE_NS)
MIG = AdmissionOptions(auto_provisioning=False, enable_mig=True, enable_accelerator=True)
TRANSFORMERS = {"metadata.annotations": {"kaito.sh/runtime": "transformers"}}
VLLM = {"metadata.annotations": {"kaito.sh/runtime": "vllm"}}
LORA_TEMPLATE = "training_config:\n  QuantizationConfig:\n    load_in_4bit: false\n  TrainingArguments:\n    output_dir: output\n"
QLORA_TEMPLATE = "training_config:\n  QuantizationConfig:\n    load_in_4bit: true\n"
TEMPLATES = ClusterReads(configmaps={
    (RELEASE_NS, "lora-params-template"): {"training_config.yaml": LORA_TEMPLATE},
    (RELEASE_NS, "qlora-params-template"): {"training_config.yaml": QLORA_TEMPLATE},
}, complete=True)


@dataclass
class Case:
    kaito: str  # "TestFunction/case name" in KAITO's v1beta1 test file
    new: dict[str, Any]
    expect: list[tuple[str, str]] = field(default_factory=list)  # (field path, phrase); [] = admitted
    old: dict[str, Any] | None = None
    options: AdmissionOptions = NAP
    reads: ClusterReads = TEMPLATES
    absent: list[str] = field(default_factory=list)  # paths that must carry no error
    differs: str | None = None  # key of our deliberate difference (README), when KAITO answers otherwise

    @property
    def id(self) -> str:
        return self.kaito.split("/", 1)[1].lower().replace(" ", "-")


INFERENCE = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "Workspace",
    "metadata": {"name": "test-workspace", "namespace": "kaito"},
    "resource": {"instanceType": "Standard_NV36ads_A10_v5", "count": 1,
                 "labelSelector": {"matchLabels": {"apps": "test"}}},
    "inference": {"preset": {"name": "test-validation-static"}},
}
TUNING = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "Workspace",
    "metadata": {"name": "test-tuning", "namespace": "kaito"},
    "resource": {"instanceType": "Standard_NC24ads_A100_v4", "count": 1,
                 "labelSelector": {"matchLabels": {"app": "tune"}}},
    "tuning": {
        "preset": {"name": "test-validation"},
        "method": "lora",
        "input": {"name": "valid-input", "image": "kaito.azurecr.io/test:0.0.0"},
        "output": {"image": "kaito.azurecr.io/test:0.0.0", "imagePushSecret": "secret"},
    },
}


def _make(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for path, value in overrides.items():
        set_path(doc, path, value if value is DELETE else copy.deepcopy(value))
    return doc


def I(*merge: dict[str, Any], **kw: Any) -> dict[str, Any]:  # noqa: E743 - short names keep the table readable
    """An inference Workspace; keyword names use `__` for `.` (`resource__count=2`)."""
    overrides: dict[str, Any] = {}
    for m in merge:
        overrides.update(m)
    overrides.update({k.replace("__", "."): v for k, v in kw.items()})
    return _make(INFERENCE, overrides)


def T(*merge: dict[str, Any], **kw: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for m in merge:
        overrides.update(m)
    overrides.update({k.replace("__", "."): v for k, v in kw.items()})
    return _make(TUNING, overrides)


def node(name: str, product: str | None, count: str | None, memory_mib: str | None, **labels: str) -> dict[str, str]:
    """The labels of one BYO node (an absent GPU label is left out)."""
    out = dict(labels)
    for key, value in (("nvidia.com/gpu.product", product), ("nvidia.com/gpu.count", count),
                       ("nvidia.com/gpu.memory", memory_mib)):
        if value is not None:
            out[key] = value
    return out


def nodes(*items: dict[str, str]) -> ClusterReads:
    return ClusterReads(configmaps=TEMPLATES.configmaps, complete=True, nodes=list(items))


ADAPTER_IMAGE = "fake.kaito.com/kaito-image:0.0.{}"


def adapters(n: int, *, strength: str | None = None, name: str = "Adapter-{}") -> list[dict[str, Any]]:
    out = []
    for i in range(1, n + 1):
        item: dict[str, Any] = {"source": {"name": name.format(i), "image": ADAPTER_IMAGE.format(i)}}
        if strength is not None:
            item["strength"] = strength
        out.append(item)
    return out


NOT_APPLICABLE = {
    "TestResourceSpecValidateCreate/Malformed TotalSafeTensorFileSize returns validation error":
        "model sizes are typed numbers checked by presets.yaml's schema when the catalog loads; a malformed "
        "size fails the catalog, not a Workspace (tests/unit/catalog/test_presets.py)",
    "TestWorkspaceValidateStreamingCSIDriver/*":
        "the ModelStreaming feature gate (weights streamed from Azure Blob) is not implemented",
}
