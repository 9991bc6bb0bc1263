"""Label, annotation and finalizer keys KAITO puts on objects (reference §1.1, §1.3).

Other tools select KAITO's objects by these keys, so they are part of the compatible surface.
"""

from __future__ import annotations

LABEL_WORKSPACE_NAME = "kaito.sh/workspace"
LABEL_WORKSPACE_NAMESPACE = "kaito.sh/workspacenamespace"
ANNOTATION_ENABLE_LB = "kaito.sh/enablelb"  # value must be exactly "True" → Service type LoadBalancer
ANNOTATION_REVISION = "workspace.kaito.io/revision"
ANNOTATION_HASH = "workspace.kaito.io/hash"
LABEL_REVISION_WORKSPACE_NAME = "workspace.kaito.io/name"  # on ControllerRevisions
FINALIZER_WORKSPACE = "workspace.finalizer.kaito.sh"
LABEL_MACHINE_TYPE = "kaito.sh/machine-type"  # gpu-provisioner node label
LABEL_KARPENTER_PROVISIONER_NAME = "karpenter.sh/provisioner-name"
LABEL_KARPENTER_NODEPOOL = "karpenter.sh/nodepool"
ANNOTATION_DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"

# v0.12 annotations that the later v1beta1 support reads.
ANNOTATION_RUNTIME = "kaito.sh/runtime"
ANNOTATION_BYPASS_RESOURCE_CHECKS = "kaito.sh/bypass-resource-checks"

# Keys KAITO itself sets on nodes/NodeClaims it creates for a workspace; a selector made only of
# them would select KAITO's own bookkeeping rather than the user's nodes (§1.3).
RESERVED_SELECTOR_KEYS = frozenset(
    {
        "kaito.sh/workspace",
        "kaito.sh/ragengine",
        "kaito.sh/workspacenamespace",
        "kaito.sh/ragenginenamespace",
        "karpenter.kaito.sh/workspace-name",
        "karpenter.kaito.sh/workspace-namespace",
        "karpenter.kaito.sh/inferenceset",
        "karpenter.kaito.sh/inferenceset-namespace",
    }
)
