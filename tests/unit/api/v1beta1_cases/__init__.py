"""KAITO v0.12's v1beta1 validation cases (api/v1beta1/workspace_validation_test.go at v0.12.0), as a table.

Each case names the KAITO test function and case it stands for, a v1beta1 Workspace (a valid base
plus dotted-path overrides), optionally the stored object (UPDATE), the operator settings and what
the caller read, and the answer: the errors expected (field path plus a phrase), or none for
"admitted". Where we answer differently on purpose, `differs` names the entry of the README's
"Deliberate differences from KAITO" list. KAITO cases that cannot apply here are in
`NOT_APPLICABLE`, each with the reason.
"""

from tests.unit.api.v1beta1_cases import inference, resource, tuning, updates, workspace
from tests.unit.api.v1beta1_cases.base import NOT_APPLICABLE, Case

CASES: list[Case] = [*workspace.CASES, *resource.CASES, *inference.CASES, *tuning.CASES, *updates.CASES]

__all__ = ["CASES", "NOT_APPLICABLE", "Case"]
