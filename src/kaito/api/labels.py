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

# v0.12 annotations that change behaviour (kaito-v0.12.md §1.5).
ANNOTATION_RUNTIME = "kaito.sh/runtime"  # vllm | transformers
ANNOTATION_BYPASS_RESOURCE_CHECKS = "kaito.sh/bypass-resource-checks"  # presence: memory errors become warnings
ANNOTATION_DISABLE_BENCHMARK = "kaito.sh/disable-benchmark"
ANNOTATION_PERFORMANCE_MODE = "kaito.sh/performance-mode"
PERFORMANCE_MODES = ("balanced", "interactivity", "throughput")
ANNOTATION_USE_LOCAL_WEIGHTS = "kaito.sh/use-local-weights"  # "true" | "false"
ANNOTATION_NODE_IMAGE_FAMILY = "kaito.sh/node-image-family"
NODE_IMAGE_FAMILIES = ("ubuntu", "azurelinux")
ANNOTATION_NODE_CLASS_NAME = "kaito.sh/node-class-name"
ANNOTATION_MODEL_STREAMING = "kaito.sh/model-streaming"
# Ours: the served version a Workspace was last written in (its spec, not the controller's bookkeeping),
# stamped by the mutating webhook in clusters and by the local store, so the controller re-checks a
# stored Workspace under the rules of the version its author wrote.
ANNOTATION_API_VERSION = "workspace.kaito.sh/api-version"
RUNTIME_VLLM = "vllm"
RUNTIME_TRANSFORMERS = "transformers"

# The Secret key `presetOptions.modelAccessSecret` must hold, passed to the model pods as this env var.
HF_TOKEN_KEY = "HF_TOKEN"
# BYO nodes describe their GPUs with the NVIDIA GPU feature discovery labels.
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_GPU_MEMORY = "nvidia.com/gpu.memory"  # MiB per GPU

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
