"""How this controller instance is configured: provisioner, cloud, runtime image, feature gates.

One frozen object built once at start-up (from flags or the environment by the CLI) and passed to
the pure planning functions, so a reconcile never reads the environment and tests state every
setting they rely on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kaito.api.validation import UrlPolicy

Provisioner = Literal["karpenter", "byo"]
Cloud = Literal["azure", "aws"]

KNOWN_FEATURE_GATES = frozenset({"Karpenter"})

# The controller owns the Workspace's finalizer and revision annotations under its own field
# manager: users (and `kaito apply`) may write Workspaces as `kaito`, and an apply of our partial
# Workspace under the same manager would then drop the fields we omitted - the user's spec.
WORKSPACE_FIELD_MANAGER = "kaito-controller"


@dataclass(frozen=True)
class Settings:
    provisioner: Provisioner = "karpenter"
    cloud: Cloud = "azure"
    image_registry: str = "mcr.microsoft.com/aks/kaito"
    image_tag: str | None = None  # None: the preset's own tag
    feature_gates: Mapping[str, bool] = field(default_factory=dict)
    # Waiting is a requeue, never a sleep: how soon to look again while nodes or pods come up.
    # Watch events usually arrive first; these bound the delay when a change is not watched
    # (BYO nodes being labelled, a NodeClaim's node becoming Ready).
    pending_requeue_s: float = 5.0
    max_revision_history: int = 10
    workers: int = 5
    # Hosts `tuning.input.urls` may name. Strict (the SSRF guard) on a real cluster; the local
    # control plane of `kaito up` relaxes it, since there the user's machine is the cluster.
    url_policy: UrlPolicy = UrlPolicy.PUBLIC_ONLY

    @property
    def provisions_nodes(self) -> bool:
        return self.provisioner == "karpenter"


def parse_feature_gates(text: str) -> dict[str, bool]:
    """`Karpenter=true,Other=false` → dict; unknown gates or bad values raise ValueError naming them."""
    gates: dict[str, bool] = {}
    unknown: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or value.lower() not in ("true", "false"):
            raise ValueError(f"invalid feature gate {part!r}: expected NAME=true|false")
        if name not in KNOWN_FEATURE_GATES:
            unknown.append(name)
        gates[name] = value.lower() == "true"
    if unknown:
        raise ValueError(f"invalid feature gate(s) {', '.join(sorted(unknown))}")
    return gates


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from KAITO's environment variables (`PRESET_REGISTRY_NAME`, `CLOUD_PROVIDER`, ...)."""
    env = os.environ if env is None else env
    cloud = env.get("CLOUD_PROVIDER", "azure").lower()
    if cloud not in ("azure", "aws"):
        raise ValueError(f"CLOUD_PROVIDER must be azure or aws, not {cloud!r}")
    provisioner = env.get("KAITO_NODE_PROVISIONER", "karpenter").lower()
    if provisioner not in ("karpenter", "byo"):
        raise ValueError(f"KAITO_NODE_PROVISIONER must be karpenter or byo, not {provisioner!r}")
    return Settings(
        provisioner=provisioner,  # type: ignore[arg-type]
        cloud=cloud,  # type: ignore[arg-type]
        image_registry=env.get("PRESET_REGISTRY_NAME", Settings.image_registry),
        image_tag=env.get("KAITO_RUNTIME_IMAGE_TAG") or None,
        feature_gates=parse_feature_gates(env.get("FEATURE_GATES", "")),
    )
