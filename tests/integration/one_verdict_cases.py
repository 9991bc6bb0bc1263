"""The admission table every caller is run through (`test_one_verdict.py`), on the real catalog.

Each case is one Workspace (either served version) with the ConfigMaps it names, written as a
user writes a file, and the errors expected (field path, phrase); none means admitted. The rules
are those of the validation tables (`tests/unit/api/validation_cases`, v1alpha1, and
`tests/unit/api/v1beta1_cases`, KAITO v0.12's), restated with catalog models, because the
callers that build objects (`kaito render`, `kaito apply`, the controller) need models the
catalog knows, and every caller must get its facts from `build_catalog_facts`, not from a test
double. Left out on purpose, with the reason:

* schema errors (an unknown field, a wrong type): the API server (here: the local store) refuses
  to store them, so the controller never sees them; every other caller reports them alike;
* a ConfigMap named but present nowhere: files cannot prove it is missing from a cluster, so the
  CLI warns where the cluster-side callers refuse (by design, README "Validate");
* `tuning.input.urls` on private or loopback addresses: refused by a cluster's webhook and
  `kaito validate`, admitted on the local cluster, where they are the user's own (by design);
* UPDATE rules: only the webhook and the controller see an old object (`test_webhook_https.py`
  runs both tables' UPDATE cases through the webhook);
* an image the local cluster cannot run (a private llama-2 image, a template's nginx): admission
  admits it everywhere, and `kaito apply` then refuses it for the local cluster, a separate check.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

RELEASE_NS = "kaito-workspace"
BIG_MODEL = "{big_model}"  # replaced by a local model directory whose weights take 40 GiB
A100 = "Standard_NC24ads_A100_v4"  # 1 × A100, 80 GiB
V100 = "Standard_NC6s_v3"  # 1 × V100, 16 GiB
TRANSFORMERS = {"kaito.sh/runtime": "transformers"}


@dataclass
class Case:
    id: str
    workspace: dict[str, Any]
    expect: list[tuple[str, str]] = field(default_factory=list)  # (path, phrase); [] = admitted
    configmaps: list[dict[str, Any]] = field(default_factory=list)


def _ws(version: str, *, preset: str | None = "phi-4-mini-instruct", sku: str | None = A100,
        annotations: dict | None = None, name: str = "ws", **sections: Any) -> dict[str, Any]:
    ws: dict[str, Any] = {"apiVersion": f"kaito.sh/{version}", "kind": "Workspace",
                          "metadata": {"name": name}, "resource": {"labelSelector": {"matchLabels": {"apps": name}}}}
    if annotations:
        ws["metadata"]["annotations"] = annotations
    if sku:
        ws["resource"]["instanceType"] = sku
    if preset is not None:
        ws["inference"] = {"preset": {"name": preset}}
    for key, value in sections.items():
        if value is None:
            ws.pop(key, None)
        else:
            ws[key] = copy.deepcopy(value)
    return ws


def beta(**kw: Any) -> dict[str, Any]:
    return _ws("v1beta1", **kw)


def alpha(**kw: Any) -> dict[str, Any]:
    return _ws("v1alpha1", **kw)


def params(name: str, text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"inference_config.yaml": text}}


def training(name: str, text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"training_config.yaml": text}}


def adapters(n: int, *, strength: str | None = None, same: bool = False) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        source = {"name": "adapter" if same else f"adapter-{i}", "volumeSource": {"hostPath": {"path": f"/a/{i}"}}}
        out.append({"source": source, **({"strength": strength} if strength else {})})
    return out


TUNING = {"preset": {"name": "phi-3-mini-128k-instruct"}, "method": "lora",
          "input": {"urls": ["https://example.com/train.parquet"]},
          "output": {"volumeSource": {"hostPath": {"path": "/adapters/out"}}}}
GATED = {"preset": {"name": "llama-3.1-8b-instruct"}}
PRIVATE = {"preset": {"name": "llama-2-7b", "accessMode": "private",
                      "presetOptions": {"image": "registry.example.com/llama/llama-2-7b:0.0.3"}}}

CASES: list[Case] = [
    # -- v1beta1 (KAITO v0.12's rules) --
    Case("v1beta1-admitted", beta()),
    Case("v1beta1-instance-type-required", beta(sku=None), [("resource.instanceType", "required")]),
    Case("v1beta1-unsupported-sku", beta(sku="m5.large"), [("resource.instanceType", "Unsupported instance type")]),
    Case("v1beta1-unknown-preset", beta(preset="gpt-17"), [("inference.preset.name", "")]),
    Case("v1beta1-bad-name", beta(name="Bad_Name"), [("metadata.name", "DNS-1123")]),
    Case("v1beta1-neither", beta(preset=None), [("inference", "either inference or tuning")]),
    Case("v1beta1-both", beta(tuning=TUNING), [("tuning", "not both")]),
    Case("v1beta1-deprecated", beta(preset="phi-2"), [("inference.preset.name", "deprecated")]),
    Case("v1beta1-catalog-model-too-big-for-transformers", beta(preset="phi-4", sku=V100, annotations=TRANSFORMERS),
         [("resource.instanceType", "Insufficient total GPU memory")]),
    Case("v1beta1-local-model-too-big", beta(preset=BIG_MODEL, sku=V100, annotations=TRANSFORMERS),
         [("resource.instanceType", "Insufficient total GPU memory")]),
    Case("v1beta1-local-model-on-vllm-spreads", beta(preset=BIG_MODEL, sku=V100)),
    Case("v1beta1-strength-on-vllm", beta(annotations={"kaito.sh/runtime": "vllm"},
                                          inference={"preset": {"name": "phi-4-mini-instruct"},
                                                     "adapters": adapters(1, strength="0.5")}),
         [("inference.adapters[0].strength", "vLLM")]),
    Case("v1beta1-eleven-adapters", beta(annotations=TRANSFORMERS, inference={
        "preset": {"name": "phi-4-mini-instruct"}, "adapters": adapters(11)}), [("inference.adapters", "10")]),
    Case("v1beta1-duplicate-adapters", beta(annotations=TRANSFORMERS, inference={
        "preset": {"name": "phi-4-mini-instruct"}, "adapters": adapters(2, same=True)}),
        [("inference.adapters[1].source.name", "uplicate")]),
    Case("v1beta1-gated-without-token-is-a-warning", beta(inference=GATED)),
    Case("v1beta1-token-for-a-private-image", beta(inference={"preset": {
        **PRIVATE["preset"], "presetOptions": {**PRIVATE["preset"]["presetOptions"], "modelAccessSecret": "hf"}}}),
        [("inference.preset.presetOptions.modelAccessSecret", "image")]),
    Case("v1beta1-config-admitted", beta(inference={"preset": {"name": "phi-4-mini-instruct"}, "config": "params"}),
         configmaps=[params("params", "vllm:\n  max-model-len: 4096\n")]),
    Case("v1beta1-config-over-the-context", beta(inference={"preset": {"name": "phi-4-mini-instruct"},
                                                            "config": "params"}),
         [("inference.config", "exceeds")], [params("params", "vllm:\n  max-model-len: 10000000\n")]),
    Case("v1beta1-config-nested-value", beta(inference={"preset": {"name": "phi-4-mini-instruct"}, "config": "params"}),
         [("inference.config", "single value")], [params("params", "vllm:\n  compilation-config: {level: 3}\n")]),
    Case("v1beta1-config-without-its-key", beta(inference={"preset": {"name": "phi-4-mini-instruct"},
                                                           "config": "params"}),
         [("inference.config", "has no key")],
         [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "params"}, "data": {"other": "x"}}]),
    Case("v1beta1-tuning-admitted", beta(preset=None, tuning=TUNING)),
    Case("v1beta1-tuning-bad-method", beta(preset=None, tuning={**TUNING, "method": "sft"}), [("tuning.method", "")]),
    Case("v1beta1-tuning-config-quantizes-lora", beta(preset=None, tuning={**TUNING, "config": "train"}),
         [("tuning.config", "lora cannot quantize")],
         [training("train", "training_config:\n  QuantizationConfig:\n    load_in_4bit: true\n")]),
    Case("v1beta1-tuning-metadata-url", beta(preset=None, tuning={
        **TUNING, "input": {"urls": ["http://169.254.169.254/latest/meta-data"]}}), [("tuning.input.urls[0]", "")]),
    # -- v1alpha1 (KAITO v0.3.2's rules) --
    Case("v1alpha1-admitted-with-default-sku", alpha(preset="phi-3-mini-4k-instruct", sku=None)),
    Case("v1alpha1-too-small-for-the-preset", alpha(preset="falcon-40b", sku=V100),
         [("resource.instanceType", "Insufficient")]),
    Case("v1alpha1-local-model-too-big", alpha(preset=BIG_MODEL, sku=V100),
         [("resource.instanceType", "Insufficient total GPU memory")]),
    Case("v1alpha1-deprecated-is-a-warning", alpha(preset="phi-2", sku="Standard_NC12s_v3")),
    Case("v1alpha1-llama-2-needs-private", alpha(preset="llama-2-7b"), [("inference.preset.accessMode", "")]),
    Case("v1alpha1-adapters-with-strength", alpha(preset=None, inference={
        "preset": {"name": "phi-3-mini-4k-instruct"}, "adapters": adapters(2, strength="0.5")})),
    Case("v1alpha1-unknown-preset", alpha(preset="gpt-17"), [("inference.preset.name", "")]),
    Case("v1alpha1-tuning-admitted", alpha(preset=None, tuning=TUNING)),
    Case("v1alpha1-tuning-metadata-url", alpha(preset=None, tuning={
        **TUNING, "input": {"urls": ["http://169.254.169.254/latest/meta-data"]}}), [("tuning.input.urls[0]", "")]),
]
