"""KAITO v0.12's v1beta1 validation table through the admission entry point (`kaito.api.admission.admit`).

Each case is answered as KAITO answers it — admitted, or refused naming the field — except the cases
marked `differs`, whose answer is ours on purpose; every such key is listed in the README's
"Deliberate differences from KAITO" section.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kaito.api.admission import admit
from tests.unit.api.v012_facts import V012Facts
from tests.unit.api.v1beta1_cases import CASES, NOT_APPLICABLE, Case

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture(scope="module")
def facts() -> V012Facts:
    return V012Facts()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, facts: V012Facts) -> None:
    verdict = admit(case.new, case.old, facts=facts, options=case.options, reads=case.reads)
    assert verdict.api_version == "kaito.sh/v1beta1"
    errors = verdict.errors
    for path in case.absent:
        assert not [e for e in errors if e.path == path], f"{case.kaito}: unexpected error at {path}: {errors}"
    if not case.expect:
        assert errors == [], f"{case.kaito}: expected admission, got {errors}"
        return
    for path, phrase in case.expect:
        hits = [e for e in errors if e.path == path and phrase.lower() in e.message.lower()]
        assert hits, f"{case.kaito}: no error at {path!r} mentioning {phrase!r}; got {errors}"


def test_table_covers_kaito_test_functions() -> None:
    functions = {c.kaito.split("/")[0] for c in CASES if not c.kaito.startswith("ours/")}
    functions |= {k.split("/")[0] for k in NOT_APPLICABLE}
    assert functions == {
        "TestResourceSpecValidateCreate", "TestValidateMIGModelFit", "TestValidatePartition",
        "TestResourceSpecValidateUpdate", "TestInferenceSpecValidateCreate", "TestAdapterSpecValidateCreateorUpdate",
        "TestInferenceSpecValidateUpdate", "TestWorkspaceValidateCreate", "TestWorkspaceValidateName",
        "TestWorkspaceValidatePerformanceModeAnnotation", "TestWorkspaceValidateNodeClassNameAnnotation",
        "TestWorkspaceValidateNAPFeatureGate", "TestWorkspaceValidateUpdate", "TestTuningSpecValidateCreate",
        "TestTuningSpecValidateUpdate", "TestDataSourceValidateCreate", "TestDataSourceValidateUpdate",
        "TestDataDestinationValidateCreate", "TestDataDestinationValidateUpdate", "TestInferenceConfigMapValidation",
        "TestWorkspaceValidateStreamingCSIDriver",
    }
    assert len({c.kaito for c in CASES}) == len(CASES), "one row per KAITO case"


def test_every_deliberate_difference_is_in_the_readme() -> None:
    text = README.read_text()
    section = text.split("## Deliberate differences from KAITO", 1)[1].split("\n## ", 1)[0]
    keys = set(re.findall(r"`([a-z0-9-]+)`", section))
    missing = {c.differs for c in CASES if c.differs} - keys
    assert not missing, f"README's deliberate differences lack {missing}"


def test_a_warning_never_blocks(facts: V012Facts) -> None:
    gated = next(c for c in CASES if c.differs == "gated-model-without-secret")
    verdict = admit(gated.new, facts=facts, reads=gated.reads)
    assert verdict.allowed
    assert [w.path for w in verdict.warnings] == ["inference.preset.presetOptions.modelAccessSecret"]
    bypass = next(c for c in CASES if c.kaito == "ours/bypass-resource-checks turns the memory refusal into a warning")
    warnings = admit(bypass.new, facts=facts, reads=bypass.reads).warnings
    assert any("Insufficient total GPU memory" in w.message for w in warnings)
