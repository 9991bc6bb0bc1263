"""Workloads for template Workspaces: the user's own pod template, placed on the Workspace's nodes.

KAITO copies `inference.template`, adds the workspace label, replaces the affinity with the node
affinity of `matchLabels` and appends the GPU tolerations; replicas = `resource.count`. We do the
same and also stamp the revision annotation, so a spec change rolls the Deployment (KAITO never
updated template workloads, §10 note 9). As in KAITO there is no Service: the template's ports are
the user's to expose.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from kaito.api.hub import Workspace
from kaito.manifests import ownership, placement


def build_template_deployment(
    ws: Workspace, *, revision: int | None = None, node_names: Sequence[str] = ()
) -> dict[str, Any]:
    template: dict[str, Any] = copy.deepcopy((ws.inference.template if ws.inference else None) or {})
    metadata = dict(template.get("metadata") or {})
    metadata["labels"] = {**dict(metadata.get("labels") or {}), **ownership.build_workspace_labels(ws)}
    pod_spec: dict[str, Any] = dict(template.get("spec") or {})
    # KAITO replaced the whole affinity; we replace only the node affinity, so a user's pod
    # (anti-)affinity in the template keeps working.
    affinity = {k: v for k, v in dict(pod_spec.get("affinity") or {}).items() if k != "nodeAffinity"}
    affinity.update(placement.build_node_affinity(ws, node_names) or {})
    if affinity:
        pod_spec["affinity"] = affinity
    else:
        pod_spec.pop("affinity", None)
    tolerations = list(pod_spec.get("tolerations") or [])
    tolerations += [t for t in placement.build_tolerations() if t not in tolerations]
    pod_spec["tolerations"] = tolerations
    resource = ws.resource
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ownership.build_metadata(ws, ws.name, annotations=ownership.build_revision_annotations(revision)),
        "spec": {
            "replicas": (resource.count if resource is not None and resource.count else None) or 1,
            "selector": {"matchLabels": ownership.build_selector_labels(ws)},
            "template": {**template, "metadata": metadata, "spec": pod_spec},
        },
    }
