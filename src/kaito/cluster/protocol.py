"""The `Cluster` protocol: the only way the controller (and the CLI) touches a cluster.

Two homes implement it with identical semantics, so the controller cannot tell them apart
(ARCHITECTURE rule 7): `kaito.cluster.kube.KubeCluster` (a real API server through lightkube)
and `kaito.cluster.local.LocalCluster` (the embedded SQLite store).

Objects are plain dicts shaped exactly like Kubernetes JSON (`apiVersion`, `kind`, `metadata`,
`spec`, `status`, ...). Callers never receive a backend's own types, and every method returns a
fresh dict the caller may mutate.

Semantics every backend honours (the contract suite in `tests/integration/cluster/` checks them):

* **Namespaces.** For a namespaced kind, `get`/`delete` with `namespace=None` mean `"default"`,
  and `apply` of an object without `metadata.namespace` puts it in `"default"`. `list`/`watch`
  with `namespace=None` span all namespaces. For a cluster-scoped kind the namespace is ignored.
* **Labels.** `labels` is an equality selector: every key must be present with that value.
* **resourceVersion.** A string holding an integer that increases with every write anywhere in the
  cluster (local) or an opaque string (kube); compare only for equality, never order, outside a backend.
* **apply (server-side apply).** Creates the object if absent, otherwise merges it as the field
  manager's *whole intent*: fields the manager applied before and omits now are removed; fields
  owned by other managers are kept (with `force=True` the manager takes over contested fields,
  with `force=False` a contested field with a different value raises `Conflict`). `status` in the
  applied object is ignored. If `metadata.resourceVersion` is set and stale, raises `Conflict`.
  An apply that changes nothing is not a write: resourceVersion and generation stay the same and
  no watch event is sent (a steady-state reconcile therefore costs zero writes).
  `metadata.generation` starts at 1 and is bumped only when something outside `metadata` and
  `status` changes. Returns the stored object. Applying to an object that is being deleted updates
  it (removing the last finalizer then removes the object); it never resurrects a removed one.
* **apply_status.** The same server-side apply, restricted to `status` (the status subresource):
  only `status` of the applied object is used; `spec` and `metadata` are left alone (except a
  stale `metadata.resourceVersion`, which raises `Conflict`). The object must exist (`NotFound`).
* **delete.** Idempotent only in the sense the caller chooses: a missing object raises `NotFound`.
  Dependents always follow (`propagation` Background or Foreground, never the API server's
  per-kind default, which orphans the pods of a `batch/v1` Job).
  An object with finalizers gets `metadata.deletionTimestamp` (a MODIFIED event) and stays until
  its finalizers are removed by apply; without finalizers it is removed (a DELETED event).
  Dependents (objects whose `metadata.ownerReferences` name its uid) are garbage-collected after
  the owner is removed — by the local store itself (in the same transaction), by the garbage
  collector on a real cluster (a moment later: do not rely on the timing).
* **watch.** With `resource_version=None`, first yields an ADDED event per existing matching
  object, then every later change. With a resourceVersion (usually the one from `list`), yields
  every change after it. Events are in resourceVersion order; a DELETED event carries the last
  state of the object. With `labels`, only events whose object matches are sent (an object whose
  labels stop matching yields no event, where Kubernetes would send DELETED: kaito never relabels
  the objects it watches by label). The iterator runs until the caller stops iterating (`break`, cancellation)
  or `close()`; a backend resumes its own dropped connections internally. If the given
  resourceVersion is too old to resume from, iteration raises `Gone`: re-list and watch from the
  list's `resource_version`.
* **Versions.** A kind served in several versions (the Workspace: `kaito.sh/v1beta1`, stored, and
  `kaito.sh/v1alpha1`) is one object: written in any served version, it is stored in the storage
  version, and `get`/`list`/`watch` answer in the version of the `ResourceKind` asked with
  (`WORKSPACE` or `WORKSPACE_V1ALPHA1`), converted losslessly (`kaito.api.conversion`) — by the
  conversion webhook on a real cluster, by the local store itself. Annotation
  `workspace.kaito.sh/api-version` records the version the spec was last written in (the mutating
  webhook's stamp on a real cluster, the local store's own).
* **Errors** are the typed ones of `kaito.cluster.errors`; a backend retries `Unavailable` a few
  times internally before raising it (each backend documents where), so callers only requeue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Object = dict[str, Any]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED"]
# How a delete treats dependents (Kubernetes' propagationPolicy; Orphan is never used by kaito).
Propagation = Literal["Background", "Foreground"]

DEFAULT_NAMESPACE = "default"
FIELD_MANAGER = "kaito"


@dataclass(frozen=True)
class ResourceKind:
    """Identifies a resource type: `apiVersion` + `kind`, the URL plural, and its scope."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        """The API group ("" for the core group `v1`)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def key(self) -> str:
        """A stable identifier, e.g. `apps/v1/Deployment`, used as a storage key."""
        return f"{self.api_version}/{self.kind}"


WORKSPACE = ResourceKind("kaito.sh/v1beta1", "Workspace", "workspaces")  # the storage version
WORKSPACE_V1ALPHA1 = ResourceKind("kaito.sh/v1alpha1", "Workspace", "workspaces")  # served beside it
DEPLOYMENT = ResourceKind("apps/v1", "Deployment", "deployments")
STATEFULSET = ResourceKind("apps/v1", "StatefulSet", "statefulsets")
CONTROLLER_REVISION = ResourceKind("apps/v1", "ControllerRevision", "controllerrevisions")
JOB = ResourceKind("batch/v1", "Job", "jobs")
SERVICE = ResourceKind("v1", "Service", "services")
CONFIGMAP = ResourceKind("v1", "ConfigMap", "configmaps")
SECRET = ResourceKind("v1", "Secret", "secrets")
POD = ResourceKind("v1", "Pod", "pods")
NODE = ResourceKind("v1", "Node", "nodes", namespaced=False)
NAMESPACE = ResourceKind("v1", "Namespace", "namespaces", namespaced=False)
EVENT = ResourceKind("v1", "Event", "events")
LEASE = ResourceKind("coordination.k8s.io/v1", "Lease", "leases")
NODECLAIM = ResourceKind("karpenter.sh/v1", "NodeClaim", "nodeclaims", namespaced=False)

KNOWN_KINDS: tuple[ResourceKind, ...] = (
    WORKSPACE,
    WORKSPACE_V1ALPHA1,
    DEPLOYMENT,
    STATEFULSET,
    CONTROLLER_REVISION,
    JOB,
    SERVICE,
    CONFIGMAP,
    SECRET,
    POD,
    NODE,
    NAMESPACE,
    EVENT,
    LEASE,
    NODECLAIM,
)
_BY_TYPE = {(k.api_version, k.kind): k for k in KNOWN_KINDS}


def kind_of(obj: Mapping[str, Any]) -> ResourceKind:
    """The `ResourceKind` of an object dict, from its `apiVersion` and `kind`.

    Raises `kaito.cluster.errors.Invalid` for a missing or unknown type, naming the fields.
    """
    from kaito.cluster.errors import Invalid

    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    found = _BY_TYPE.get((api_version, kind))
    if found is None:
        raise Invalid(f"unknown resource type apiVersion={api_version!r} kind={kind!r}")
    return found


def storage_kind(kind: ResourceKind) -> ResourceKind:
    """The kind an object of `kind` is stored as: the storage version for every Workspace version."""
    return WORKSPACE if (kind.group, kind.kind) == (WORKSPACE.group, WORKSPACE.kind) else kind


def register_kind(kind: ResourceKind) -> ResourceKind:
    """Make another resource type known to `kind_of` (e.g. a v1beta1 Workspace). Idempotent."""
    _BY_TYPE[(kind.api_version, kind.kind)] = kind
    return kind


def registered_kinds() -> tuple[ResourceKind, ...]:
    """Every kind `kind_of` knows: the constants above plus those added by `register_kind`."""
    return tuple(_BY_TYPE.values())


@dataclass(frozen=True)
class ObjectList:
    """The result of `list`: the items and the resourceVersion to watch from afterwards."""

    items: list[Object] = field(default_factory=list)
    resource_version: str = ""


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by `watch`. For DELETED, `object` is the last stored state."""

    type: WatchEventType
    object: Object


@runtime_checkable
class Cluster(Protocol):
    """An API server: see this module's docstring for the exact semantics of each method."""

    async def get(self, kind: ResourceKind, name: str, namespace: str | None = None) -> Object:
        """The stored object; `NotFound` if absent."""
        ...

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObjectList:
        """Objects of `kind` (in `namespace`, or all when None) whose labels match `labels`."""
        ...

    def watch(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version` (or current objects as ADDED, then changes)."""
        ...

    async def apply(self, obj: Object, *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Object:
        """Server-side apply of everything but `status`; creates or updates."""
        ...

    async def apply_status(self, obj: Object, *, field_manager: str = FIELD_MANAGER) -> Object:
        """Server-side apply of `status` only (the status subresource)."""
        ...

    async def delete(
        self, kind: ResourceKind, name: str, namespace: str | None = None, *, propagation: Propagation = "Background"
    ) -> None:
        """Delete (or mark for deletion when finalizers remain); `NotFound` if absent.

        `propagation` is sent to a real API server as `propagationPolicy` (Foreground: the owner
        stays until its dependents are gone, as KAITO deletes a Job it replaces); the local store
        removes dependents in the same transaction either way."""
        ...

    async def emit_event(self, involved: Object, type: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event (`type` Normal|Warning) about `involved`.

        Repeats of the same (object, type, reason, message) are aggregated into one Event whose
        `count` grows, as Kubernetes clients do. Failures to record are swallowed and logged:
        an event is never worth failing a reconcile for.
        """
        ...

    async def close(self) -> None:
        """Release connections; running watches end."""
        ...


def object_ref(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an object dict; namespace is "" when it has none."""
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""
