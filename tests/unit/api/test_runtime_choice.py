"""The runtime a Workspace's pods run: one table for every caller (`compute_runtime`), by written version.

v1beta1 runs vLLM wherever the preset supports it (KAITO v0.12), `kaito.sh/runtime: transformers`
opting out; v1alpha1 keeps the preset's first runtime (KAITO v0.3.2 had no vLLM); a model larger than
one node's GPU memory runs on vLLM in both. A cluster without vLLM (`vllm_available=False`, a local
cluster with no vLLM interpreter) runs v1beta1 Workspaces that name no runtime on transformers, and
says why; one that must run vLLM keeps vLLM, and the controller turns that into a condition.
"""

from __future__ import annotations

import pytest

from kaito.api import labels
from kaito.api.facts import PresetFacts
from kaito.api.validation import RuleSet
from kaito.api.validation.preset_rules import (
    build_vllm_not_installed_message,
    compute_runtime,
    compute_runtime_fallback,
)

BOTH = PresetFacts("phi-4-mini-instruct", runtimes=("transformers", "vllm"), weights_gib=7.2)
VLLM_ONLY = PresetFacts("gpt-oss-20b", runtimes=("vllm",), weights_gib=13)
TRANSFORMERS_ONLY = PresetFacts("tf-only", runtimes=("transformers",), weights_gib=7)
BIG = PresetFacts("big", runtimes=("transformers", "vllm"), weights_gib=120)
A, B = RuleSet.V1ALPHA1, RuleSet.V1BETA1
VLLM, TF = labels.RUNTIME_VLLM, labels.RUNTIME_TRANSFORMERS


def runtime_of(asked: str | None, found: PresetFacts, rules: RuleSet, available: bool = True,
               node_gib: float | None = 80) -> str:
    annotations = {labels.ANNOTATION_RUNTIME: asked} if asked else {}
    return compute_runtime(annotations, found, node_gib, rules=rules, vllm_available=available)


@pytest.mark.parametrize(("asked", "found", "rules", "available", "expected"), [
    # KAITO v0.12: vLLM by default; the annotation opts out.
    (None, BOTH, B, True, VLLM),
    ("transformers", BOTH, B, True, TF),
    ("vllm", BOTH, B, True, VLLM),
    ("tensorrt", BOTH, B, True, VLLM),  # an unknown value is the default (admission warns)
    # KAITO v0.3.2: the preset's first runtime; vLLM only when asked for or too big for a node.
    (None, BOTH, A, True, TF),
    ("vllm", BOTH, A, True, VLLM),
    (None, BIG, A, True, VLLM),
    (None, VLLM_ONLY, A, True, VLLM),
    (None, TRANSFORMERS_ONLY, B, True, TF),
    # No vLLM on this cluster: v1beta1 falls back where transformers can serve; what must run vLLM stays vLLM.
    (None, BOTH, B, False, TF),
    ("vllm", BOTH, B, False, VLLM),
    (None, VLLM_ONLY, B, False, VLLM),
    (None, BIG, B, False, VLLM),
    (None, BOTH, A, False, TF),
])
def test_runtime_table(asked, found, rules, available, expected) -> None:
    assert runtime_of(asked, found, rules, available) == expected


def test_a_fallback_says_why_only_where_kaito_would_run_vllm() -> None:
    why = compute_runtime_fallback({}, BOTH, TF, rules=B)
    assert why is not None and "vLLM is not installed" in why and "--vllm-python" in why
    assert "kaito.sh/runtime: transformers" in why
    assert compute_runtime_fallback({labels.ANNOTATION_RUNTIME: "transformers"}, BOTH, TF, rules=B) is None
    assert compute_runtime_fallback({}, BOTH, TF, rules=A) is None  # v1alpha1's own default
    assert compute_runtime_fallback({}, BOTH, VLLM, rules=B) is None
    assert compute_runtime_fallback({}, TRANSFORMERS_ONLY, TF, rules=B) is None


def test_the_not_installed_message_says_how_to_get_vllm() -> None:
    asked = build_vllm_not_installed_message("vllm")
    assert "not installed" in asked and "./scripts/setup-vllm" in asked and "kaito up --vllm-python" in asked
    assert "kaito.sh/runtime: transformers" in asked
    assert "kaito.sh/runtime" not in build_vllm_not_installed_message(None)  # nothing to opt out of
