"""What admission is told besides the Workspace: which rules, how the cluster is set up, what was read.

`kaito.api` does no I/O, so whoever admits (the webhook, the CLI, the controller) reads what the
rules need — the ConfigMaps that `configmaps.needed` names, the BYO nodes a selector matches — and
passes it in `ClusterReads`. `AdmissionOptions` carries the operator's settings that change
answers (node provisioning, feature gates, the URL policy).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kaito.api.validation.names import UrlPolicy


class RuleSet(enum.StrEnum):
    """Which KAITO answers to give: each served version has its own, as KAITO v0.12's webhook does.

    v1alpha1 keeps KAITO v0.3.2's rules (strict image references, GPU count / per-GPU / total
    memory against the preset's requirements); v1beta1 follows KAITO v0.12 (instanceType tied to
    node provisioning, weights against GPU memory for non-vLLM runtimes, partitions, access secrets).
    """

    V1ALPHA1 = "kaito.sh/v1alpha1"
    V1BETA1 = "kaito.sh/v1beta1"


@dataclass(frozen=True, kw_only=True)
class AdmissionOptions:
    url_policy: UrlPolicy = UrlPolicy.PUBLIC_ONLY
    auto_provisioning: bool = True  # False: KAITO's disableNodeAutoProvisioning (bring your own nodes)
    enable_mig: bool = False  # KAITO feature gate enableMIG
    enable_accelerator: bool = False  # KAITO feature gate enableAccelerator
    node_classes: tuple[str, ...] | None = None  # Karpenter NodeClasses allowed; None: not checked
    release_namespace: str | None = None  # where the default tuning ConfigMaps live
    # Whether this cluster can run vLLM pods. True for a Kubernetes cluster (its runtime image carries
    # vLLM, as KAITO's does); the local cluster says False when no vLLM interpreter is installed for
    # it, and then a v1beta1 Workspace that names no runtime runs on transformers there.
    vllm_available: bool = True


ConfigMapKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, kw_only=True)
class ClusterReads:
    """What the caller read for admission.

    `configmaps` maps (namespace, name) to the ConfigMap's `data`, or None when it does not exist.
    With `complete` the caller read every ConfigMap `configmaps.needed` named (a cluster), so one
    missing from the mapping is absent; without it (files given to `kaito validate`) a missing one
    was not looked at and is only warned about; one in `unreadable` could not be read (the cluster
    failed) and is refused with the reason, as a failing webhook would be. `nodes` are the labels of the nodes the selector
    matches (BYO checks); None: not read, those checks are skipped.
    """

    configmaps: Mapping[ConfigMapKey, Mapping[str, str] | None] = field(default_factory=dict)
    complete: bool = False
    unreadable: Mapping[ConfigMapKey, str] = field(default_factory=dict)  # read failed: why
    nodes: Sequence[Mapping[str, str]] | None = None
