"""A Kubernetes API server for tests: kmock 0.8's emulator with the gaps `KubeCluster` needs filled.

kmock gives us the real HTTP server (aiohttp on 127.0.0.1), request parsing into Kubernetes
intents (resource, namespace, name, action), discovery and error rendering. Its object handling
is too simple for a controller (see python-stack.md): no uid/resourceVersion/generation, no
conflicts, no label selectors, status not isolated, apply is a plain merge that 404s on a
missing object, watches ignore resourceVersion, errors carry a content type lightkube rejects.
This subclass therefore serves the object endpoints itself with API-server semantics:

* metadata: uid, one global resourceVersion, generation (bumped on non-metadata/status change),
  creationTimestamp; a stale `metadata.resourceVersion` → 409;
* server-side apply (`application/apply-patch+yaml`, create-on-apply, field managers, force)
  using the same managed-fields-lite as the local store (`kaito.cluster.local.fields`);
  the `/status` subresource touches only status, the main resource never touches status;
* list/watch with equality label selectors, `kind: <Kind>List`, watches from a
  resourceVersion over a kept event history, `timeoutSeconds`, and a 410 ERROR event when the
  version was compacted away (`compact()`);
* finalizers and deletionTimestamp;
* fault injection for tests: `fail_next(status, times)` answers the next requests with an error
  (429/503) before touching state; `drop_watches()` ends every open watch stream cleanly.

* served versions: a Workspace written as `kaito.sh/v1alpha1` or `v1beta1` is stored once, as
  v1beta1, and read back in the version of the URL, with annotation `workspace.kaito.sh/api-version`
  stamped — what the API server does with the CRD's conversion webhook and the chart's mutating
  webhook, done here with the same functions (`kaito.cluster.served`);
* ownerReference garbage collection, done at once when an owner is removed (a real cluster's
  GC controller does it a moment later), so controller scenarios behave as on a cluster;
  `gc=False` turns it off. As on a real API server, a `batch/v1` Job deleted without a
  `propagationPolicy` (or with `Orphan`) leaves its pods; every DELETE is recorded in `deletes`
  with the policy it carried (query parameter or DeleteOptions body).

Not emulated: strategic merge of lists, `metadata.managedFields` in responses, namespace
existence, PUT, field selectors.

`serve_emulator()` starts one on 127.0.0.1 with a `KubeCluster` pointed at it, for any test.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from lightkube import KubeConfig

from kaito.cluster import errors, served
from kaito.cluster.events import now_rfc3339
from kaito.cluster.kube import KubeCluster
from kaito.cluster.local import fields
from kaito.cluster.protocol import ResourceKind, registered_kinds, storage_kind

_APPLY = "application/apply-patch+yaml"


class _Reject(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "code": code, "reason": reason, "message": message}


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
    # Exactly "application/json": lightkube only decodes error bodies with that content type.
    return aiohttp.web.Response(body=json.dumps(payload).encode(), status=status,
                                content_type="application/json", headers=headers)


def _labels_match(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    have = obj.get("metadata", {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if have.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@dataclass(frozen=True)
class DeleteCall:
    kind: str
    namespace: str
    name: str
    propagation: str | None  # None: the client sent none (the server default: Orphan for batch/v1 Jobs)
    options: dict[str, Any]


@attrs.define(kw_only=True)
class KaitoKubeEmulator(kmock.KubernetesEmulator):
    """The emulator; use `server_config(url)` to point a lightkube client at it."""

    gc: bool = True
    store: dict[tuple[str, str, str], tuple[dict[str, Any], fields.Managed]] = attrs.field(factory=dict, init=False)
    history: list[tuple[int, str, str, str, dict[str, Any]]] = attrs.field(factory=list, init=False)
    rv: int = attrs.field(default=0, init=False)
    compacted: int = attrs.field(default=0, init=False)
    faults: list[tuple[int, float | None]] = attrs.field(factory=list, init=False)
    deletes: list[DeleteCall] = attrs.field(factory=list, init=False)  # every DELETE, with its policy
    writes: int = attrs.field(default=0, init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _drop_epoch: int = attrs.field(default=0, init=False)

    # ---- test controls -----------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `times` object requests with `status` (e.g. 429, 503), changing nothing."""
        self.faults.extend([(status, retry_after)] * times)

    def compact(self) -> None:
        """Forget the event history so far: watches from older versions get 410 Gone."""
        self.compacted = self.rv
        self.history.clear()

    def drop_watches(self) -> None:
        """End every open watch stream cleanly, as an API server does at its timeout."""
        self._drop_epoch += 1
        self._wake()

    @property
    def requests(self) -> list[kmock.Request]:
        """Every request served so far, parsed (method, url, params, headers, data)."""
        return list(self._requests)

    def get_object(self, kind: ResourceKind, name: str, namespace: str = "") -> dict[str, Any] | None:
        entry = self.store.get((storage_kind(kind).key, namespace if kind.namespaced else "", name))
        return served.to_served(copy.deepcopy(entry[0]), kind) if entry else None

    # ---- request dispatch --------------------------------------------------------------------

    def _kind(self, request: kmock.Request) -> ResourceKind | None:
        res = request.resource
        if res is None:
            return None
        for kind in registered_kinds():
            if (kind.group, kind.version, kind.plural) == (res.group, res.version, res.plural):
                return kind
        return None

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        kind = self._kind(request)
        if kind is None or request.action is None:
            return await super()._handle(request)
        if self.faults:
            status, retry_after = self.faults.pop(0)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return _json(status_body(status, "Injected", f"injected failure {status}"), status, headers)
        try:
            action = request.action
            if action == kmock.action.WATCH:
                return await self._watch(request, kind)
            if action == kmock.action.LIST:
                return _json(self._list(request, kind))
            if action == kmock.action.FETCH:
                return _json(self._fetch(kind, request))
            if action == kmock.action.UPDATE:
                return _json(self._patch(request, kind))
            if action == kmock.action.DELETE:
                return _json(self._delete(kind, request))
            if action == kmock.action.CREATE:
                return _json(self._create(request, kind), 201)
        except _Reject as rej:
            return _json(status_body(rej.status, rej.reason, rej.message), rej.status)
        return _json(status_body(405, "MethodNotAllowed", "not emulated"), 405)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            return _json(status_body(exc.status, exc.reason or "Error", exc.message or repr(exc)), exc.status)
        return _json(status_body(500, type(exc).__name__, repr(exc)), 500)

    # ---- state -------------------------------------------------------------------------------

    def _key(self, kind: ResourceKind, namespace: str | None, name: str) -> tuple[str, str, str]:
        return storage_kind(kind).key, (namespace or "default") if kind.namespaced else "", name

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _record(self, kind: ResourceKind, typ: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        self.writes += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        ns = obj["metadata"].get("namespace", "")
        self.history.append((self.rv, storage_kind(kind).key, ns, typ, copy.deepcopy(obj)))
        self._wake()

    def _fetch(self, kind: ResourceKind, request: kmock.Request) -> dict[str, Any]:
        entry = self.store.get(self._key(kind, request.namespace, request.name or ""))
        if entry is None:
            raise _Reject(404, "NotFound", f"{kind.plural} {request.name!r} not found")
        return served.to_served(entry[0], kind)

    def _list(self, request: kmock.Request, kind: ResourceKind) -> dict[str, Any]:
        selector = request.params.get("labelSelector")
        items = [
            served.to_served(obj, kind) for (key, ns, _), (obj, _) in sorted(self.store.items())
            if key == storage_kind(kind).key and (request.namespace is None or ns == request.namespace)
            and _labels_match(obj, selector)
        ]
        return {"apiVersion": kind.api_version, "kind": f"{kind.kind}List",
                "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def _apply(self, kind: ResourceKind, key: tuple[str, str, str], body: dict[str, Any],
               manager: str, force: bool, status: bool) -> dict[str, Any]:
        try:
            body, written = served.to_storage(body, kind)
        except errors.Invalid as exc:
            raise _Reject(422, "Invalid", str(exc)) from exc
        return served.to_served(self._apply_stored(storage_kind(kind), key, body, manager, force, status,
                                                   None if status else written), kind)

    def _apply_stored(self, kind: ResourceKind, key: tuple[str, str, str], body: dict[str, Any],
                      manager: str, force: bool, status: bool, written: str | None) -> dict[str, Any]:
        entry = self.store.get(key)
        expected = (body.get("metadata") or {}).get("resourceVersion")
        if entry is None:
            if status:
                raise _Reject(404, "NotFound", f"{kind.plural} {key[2]!r} not found")
            current: dict[str, Any] = {"apiVersion": kind.api_version, "kind": kind.kind,
                                       "metadata": {"name": key[2], **({"namespace": key[1]} if kind.namespaced else {})}}
            managed: fields.Managed = {}
        else:
            current, managed = entry
            if expected and expected != current["metadata"]["resourceVersion"]:
                raise _Reject(409, "Conflict", f"the object has been modified (resourceVersion {expected} is stale)")
        try:
            new, new_managed = fields.compute_apply(current, managed, body, manager, force=force, status=status)
        except Exception as exc:  # Conflict from a contested field without force
            raise _Reject(409, "Conflict", str(exc)) from exc
        if written is not None:  # the chart's mutating webhook: the version the spec was written in
            new = served.stamp(written)(new, None if entry is None else current)
        if entry is not None and new == current and new_managed == managed:
            return current
        if entry is None:
            new["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        elif _spec_part(new) != _spec_part(current):
            new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(kind, key, new)
            return new
        self.store[key] = (new, new_managed)
        self._record(kind, "ADDED" if entry is None else "MODIFIED", new)
        return new

    def _patch(self, request: kmock.Request, kind: ResourceKind) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "")
        if not content_type.startswith(_APPLY):
            raise _Reject(415, "UnsupportedMediaType", f"only server-side apply is emulated, not {content_type}")
        manager = request.params.get("fieldManager")
        if not manager:
            raise _Reject(422, "Invalid", "fieldManager is required for apply")
        body = json.loads(request.body or b"{}")
        key = self._key(kind, request.namespace, request.name or "")
        status = request.subresource == "status"
        return self._apply(kind, key, body, manager, request.params.get("force") == "true", status)

    def _create(self, request: kmock.Request, kind: ResourceKind) -> dict[str, Any]:
        body = json.loads(request.body or b"{}")
        key = self._key(kind, request.namespace or body.get("metadata", {}).get("namespace"),
                        body.get("metadata", {}).get("name", ""))
        if key in self.store:
            raise _Reject(409, "AlreadyExists", f"{kind.plural} {key[2]!r} already exists")
        return self._apply(kind, key, body, "before-first-apply", True, False)

    def _delete(self, kind: ResourceKind, request: kmock.Request) -> dict[str, Any]:
        key = self._key(kind, request.namespace, request.name or "")
        # The policy comes as a query parameter or in a DeleteOptions body; None is the server default.
        options = json.loads(request.body or b"{}") if request.body else {}
        policy = (request.params or {}).get("propagationPolicy") or options.get("propagationPolicy")
        self.deletes.append(DeleteCall(kind.kind, key[1], key[2], policy, options))
        entry = self.store.get(key)
        if entry is None:
            raise _Reject(404, "NotFound", f"{kind.plural} {request.name!r} not found")
        obj, managed = entry
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                self.store[key] = (obj, managed)
                self._record(kind, "MODIFIED", obj)
            return served.to_served(obj, kind)
        # As the API server does: a Job deleted without a policy (or with Orphan) leaves its pods.
        orphan = policy == "Orphan" or (policy is None and kind.kind == "Job" and kind.api_version == "batch/v1")
        self._remove(kind, key, copy.deepcopy(obj), orphan=orphan)
        return status_body(200, "", "") | {"status": "Success"}

    def _remove(self, kind: ResourceKind, key: tuple[str, str, str], obj: dict[str, Any], *,
                orphan: bool = False) -> None:
        del self.store[key]
        self._record(kind, "DELETED", obj)
        if not self.gc or orphan:
            return
        alive = {o["metadata"]["uid"] for o, _ in self.store.values()}
        for dep_key, (dep, managed) in list(self.store.items()):
            refs = [r.get("uid") for r in dep["metadata"].get("ownerReferences") or []]
            if obj["metadata"]["uid"] not in refs or any(uid in alive for uid in refs) or dep_key not in self.store:
                continue
            dep_kind = next(k for k in registered_kinds() if k.key == dep_key[0])
            if dep["metadata"].get("finalizers"):
                if not dep["metadata"].get("deletionTimestamp"):
                    dep = copy.deepcopy(dep)
                    dep["metadata"]["deletionTimestamp"] = now_rfc3339()
                    self.store[dep_key] = (dep, managed)
                    self._record(dep_kind, "MODIFIED", dep)
            else:
                self._remove(dep_kind, dep_key, copy.deepcopy(dep))

    async def _watch(self, request: kmock.Request, kind: ResourceKind) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request._raw_request)
        selector = request.params.get("labelSelector")
        since = request.params.get("resourceVersion")
        timeout = float(request.params.get("timeoutSeconds") or 3600)
        loop = asyncio.get_running_loop()
        deadline, epoch = loop.time() + timeout, self._drop_epoch

        def matches(key: str, ns: str, obj: dict[str, Any]) -> bool:
            return (key == storage_kind(kind).key and (request.namespace is None or ns == request.namespace)
                    and _labels_match(obj, selector))

        async def send(typ: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": typ, "object": served.to_served(obj, kind)}).encode() + b"\n")

        try:
            if since in (None, "", "0"):
                last = self.rv
                for (key, ns, _), (obj, _) in sorted(self.store.items()):
                    if matches(key, ns, obj):
                        await send("ADDED", obj)
            elif int(since) < self.compacted:
                await send("ERROR", status_body(410, "Expired", f"too old resource version: {since} ({self.compacted})"))
                return response
            else:
                last = int(since)
            while loop.time() < deadline and epoch == self._drop_epoch:
                changed = self._changed
                for rv, key, ns, typ, obj in [e for e in self.history if e[0] > last]:
                    last = rv
                    if matches(key, ns, obj):
                        await send(typ, obj)
                try:
                    async with asyncio.timeout_at(deadline):
                        await changed.wait()
                except TimeoutError:
                    break
        except ConnectionResetError:
            return response  # the client went away; cancellation (server shutdown) propagates
        await response.write_eof()
        return response


def server_config(url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig dict for the emulator at `url` (lightkube needs the user entry)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": str(url).rstrip("/")}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester", "namespace": namespace}}],
        "current-context": "emulator",
    }


@dataclass
class EmulatedCluster:
    """A running emulator and a `KubeCluster` talking to it over HTTP."""

    emulator: KaitoKubeEmulator
    cluster: KubeCluster
    url: str


@contextlib.asynccontextmanager
async def serve_emulator(**cluster_options: Any) -> AsyncIterator[EmulatedCluster]:
    """Start the emulator on 127.0.0.1 and a `KubeCluster` for it (fast retries for tests)."""
    options = {"retry_base_s": 0.01, "retry_cap_s": 0.05, **cluster_options}
    async with KaitoKubeEmulator() as emulator, kmock.Server(emulator) as server:
        url = str(server.url)
        cluster = KubeCluster(KubeConfig.from_dict(server_config(url)).get(), **options)
        try:
            yield EmulatedCluster(emulator, cluster, url)
        finally:
            await cluster.close()
