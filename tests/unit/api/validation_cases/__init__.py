"""Every admission rule of reference §2.1 and the later rules, as table cases, split by concept.

Each case is a Workspace (a valid base plus dotted-path overrides), optionally an old Workspace
(UPDATE), and the errors expected: field path plus a phrase of the message. An empty expectation
means the Workspace is admitted (warnings allowed).
"""

from tests.unit.api.validation_cases import inference, tuning, updates, workspace
from tests.unit.api.validation_cases.base import Case

CASES: list[Case] = [*workspace.CASES, *inference.CASES, *tuning.CASES, *updates.CASES]

__all__ = ["CASES", "Case"]
