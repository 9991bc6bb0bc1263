"""Which kinds the dashboard shows, as data: adding a kind (InferenceSet, RAGEngine) is one entry.

Each entry names the resource, the label that selects its pods, and the condition types shown as
columns (in KAITO's printer-column order). Everything else (conditions, pods, endpoints, events,
metrics) is read the same way for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaito.api import inferenceset, labels, ragengine
from kaito.cluster import protocol


@dataclass(frozen=True, kw_only=True)
class DashboardKind:
    resource: protocol.ResourceKind
    pod_label: str  # the label whose value is the object's name on its pods
    conditions: tuple[str, ...]  # the condition types shown as columns
    ready_condition: str  # the condition that says the object is serving


KINDS: tuple[DashboardKind, ...] = (
    DashboardKind(resource=protocol.WORKSPACE, pod_label=labels.LABEL_WORKSPACE_NAME,
                  conditions=("ResourceReady", "InferenceReady", "JobStarted", "WorkspaceSucceeded"),
                  ready_condition="WorkspaceSucceeded"),
    DashboardKind(resource=protocol.INFERENCESET, pod_label=inferenceset.LABEL_CREATED_BY,
                  conditions=(inferenceset.CONDITION_READY,), ready_condition=inferenceset.CONDITION_READY),
    DashboardKind(resource=protocol.RAGENGINE, pod_label=ragengine.LABEL_RAGENGINE,
                  conditions=("ResourceReady", "ServiceReady", "InferenceServiceReady", "RAGEngineSucceeded"),
                  ready_condition="RAGEngineSucceeded"),
)
