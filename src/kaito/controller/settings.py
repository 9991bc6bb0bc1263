"""How this controller instance is configured: provisioner, cloud, runtime image, concurrency.

One frozen object built once at start-up (from flags or the environment by the CLI) and passed to
the pure planning functions, so a reconcile never reads the environment and tests state every
setting they rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kaito.api.validation import UrlPolicy
from kaito.manifests import images

Provisioner = Literal["karpenter", "byo"]
Cloud = Literal["azure", "aws"]

# The controller owns the Workspace's finalizer and revision annotations under its own field
# manager: users (and `kaito apply`) may write Workspaces as `kaito`, and an apply of our partial
# Workspace under the same manager would then drop the fields we omitted - the user's spec.
WORKSPACE_FIELD_MANAGER = "kaito-controller"


@dataclass(frozen=True, kw_only=True)
class Settings:
    provisioner: Provisioner = "karpenter"
    cloud: Cloud = "azure"
    image_registry: str = images.DEFAULT_REGISTRY
    image_tag: str | None = None  # None: the preset's own tag
    # Waiting is a requeue, never a sleep: how soon to look again while nodes or pods come up.
    # Watch events usually arrive first; these bound the delay when a change is not watched
    # (BYO nodes being labelled, a NodeClaim's node becoming Ready).
    pending_requeue_s: float = 5.0
    workers: int = 5
    # Retries of a Workspace whose reconcile keeps failing with a bug (not a `TemporaryError`):
    # with the queue's backoff (5 ms doubling) 15 retries span about three minutes, enough for a
    # race in disguise; after that only a new event for the Workspace tries again.
    bug_retry_limit: int = 15
    # Hosts `tuning.input.urls` may name. Strict (the SSRF guard) on a real cluster; the local
    # control plane of `kaito up` relaxes it, since there the user's machine is the cluster.
    url_policy: UrlPolicy = UrlPolicy.PUBLIC_ONLY
    # The operator's namespace, where the chart puts KAITO's default ConfigMaps; None: unknown (the
    # local control plane, tests). The controller mounts its own copy of the default tuning template,
    # so it only names where admission would have looked.
    release_namespace: str | None = None

    @property
    def provisions_nodes(self) -> bool:
        return self.provisioner == "karpenter"
