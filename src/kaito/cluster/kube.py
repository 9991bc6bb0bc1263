"""`KubeCluster`: the `Cluster` protocol over a real Kubernetes API server, through lightkube.

Why lightkube rather than kubernetes_asyncio: it is async-native, small (0.2 s import), speaks
server-side apply and the status subresource directly, and its generic resources give us plain
dicts for any kind — built-in or CRD — without generated model classes in the way.

Retries live in exactly one place, `KubeCluster._retrying`: every request (and every watch
reconnection) that fails with `Unavailable` (429, 5xx, connection errors) is repeated with
exponential backoff (honouring `Retry-After`), up to `max_attempts`; anything else is raised at
once as its typed error. Callers above (the controller's work queue) only requeue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import yaml
from lightkube import AsyncClient, ConfigError, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.types import CascadeType, PatchType

from kaito.cluster import errors
from kaito.cluster import scale as scaling
from kaito.cluster.events import build_event, now_rfc3339
from kaito.cluster.kube_wire import TRANSLATABLE, resource_class, to_plain, translate
from kaito.cluster.protocol import (
    DEFAULT_NAMESPACE,
    EVENT,
    FIELD_MANAGER,
    Object,
    ObjectList,
    Propagation,
    ResourceKind,
    WatchEvent,
    kind_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_ALL_NAMESPACES = "*"  # lightkube's marker for cluster-wide list/watch of a namespaced kind


def compute_kubeconfig_problem(data: Any) -> str | None:
    """What a parsed kubeconfig lacks for lightkube to read it, in words; None when its shape is sound."""
    if not isinstance(data, dict):
        return f"not a kubeconfig: the file holds {type(data).__name__ if data is not None else 'nothing'}, " \
               "not a mapping with clusters, contexts and users"
    for section, inner in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
        entries = data.get(section)
        if not isinstance(entries, list):
            return f"no '{section}' list (a kubeconfig needs clusters, contexts and users)"
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not entry.get("name"):
                return f"{section}[{i}] has no 'name'"
            if not isinstance(entry.get(inner), dict):
                return f"{section}[{i}] ({entry['name']}) has no '{inner}' mapping"
    for i, entry in enumerate(data["contexts"]):
        if not entry["context"].get("cluster"):
            return f"contexts[{i}] ({entry['name']}) names no cluster"
    return None


class KubeCluster:
    """A Kubernetes API server reached through lightkube's `AsyncClient`."""

    def __init__(
        self,
        config: KubeConfig | SingleConfig | None = None,
        *,
        max_attempts: int = 5,
        retry_base_s: float = 0.2,
        retry_cap_s: float = 5.0,
        request_timeout_s: float = 30.0,
        watch_timeout_s: int = 290,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.watch_timeout_s = watch_timeout_s
        self.retries = 0  # how many failed attempts were retried (for tests and benches)
        try:
            self._client = AsyncClient(
                config=config, timeout=httpx2.Timeout(request_timeout_s), transport=transport, trust_env=config is None
            )
        except ConfigError as exc:
            raise errors.Invalid(f"Kubernetes client configuration: {exc}") from exc

    @classmethod
    def from_kubeconfig(cls, path: str | Path | None = None, context: str | None = None, **kwargs: Any) -> KubeCluster:
        """From a kubeconfig file (default: in-cluster, then `$KUBECONFIG`, then ~/.kube/config)."""
        where = f"kubeconfig {path}" if path is not None else "kubeconfig"
        try:
            if path is not None:
                problem = compute_kubeconfig_problem(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
                if problem:
                    raise errors.Invalid(f"{where}: {problem}")
            config = KubeConfig.from_file(path) if path is not None else KubeConfig.from_env()
            single = config.get(context_name=context)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise errors.Invalid(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}{at}") from exc
        except (ConfigError, OSError) as exc:
            raise errors.Invalid(f"{where}: {exc}") from exc
        except (KeyError, AttributeError, TypeError) as exc:  # lightkube's reading of a malformed file
            raise errors.Invalid(f"{where}: not a valid kubeconfig ({type(exc).__name__}: {exc})") from exc
        if single is None or single.user is None:
            raise errors.Invalid("kubeconfig: the context has no user entry (lightkube needs one, even if empty)")
        return cls(single, **kwargs)

    # ---- the single retry point ---------------------------------------------------------------

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        delay = self.retry_base_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await call()
            except TRANSLATABLE as exc:
                err = translate(exc)
                if not errors.is_retryable(err) or attempt == self.max_attempts:
                    raise err from exc
                wait = min(self.retry_cap_s, err.retry_after if isinstance(err, errors.Unavailable)
                           and err.retry_after is not None else delay)
                log.debug("retrying after %s (attempt %d): %s", type(err).__name__, attempt, err)
                self.retries += 1
                await asyncio.sleep(wait)
                delay = min(self.retry_cap_s, delay * 2)
        raise AssertionError("unreachable")  # the loop always returns or raises

    # ---- the protocol ------------------------------------------------------------------------

    @staticmethod
    def _ns(kind: ResourceKind, namespace: str | None) -> str | None:
        return (namespace or DEFAULT_NAMESPACE) if kind.namespaced else None

    async def get(self, kind: ResourceKind, name: str, namespace: str | None = None) -> Object:
        obj = await self._retrying(lambda: self._client.get(resource_class(kind), name, namespace=self._ns(kind, namespace)))
        return to_plain(obj)

    async def list(
        self, kind: ResourceKind, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> ObjectList:
        ns = (namespace or _ALL_NAMESPACES) if kind.namespaced else None

        async def call() -> ObjectList:
            listing = self._client.list(resource_class(kind), namespace=ns, labels=dict(labels) if labels else None)
            items = [to_plain(item) async for item in listing]
            return ObjectList(items=items, resource_version=listing.resourceVersion)

        return await self._retrying(call)

    async def watch(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        if resource_version is None:
            # Listing first gives every backend the same "current objects, then changes" start.
            listed = await self.list(kind, namespace, labels)
            for item in listed.items:
                yield WatchEvent("ADDED", item)
            resource_version = listed.resource_version
        ns = (namespace or _ALL_NAMESPACES) if kind.namespaced else None
        last = resource_version
        failures = 0
        while True:
            stream = self._client.watch(
                resource_class(kind),
                namespace=ns,
                labels=dict(labels) if labels else None,
                resource_version=last,
                server_timeout=self.watch_timeout_s,
            )
            try:
                async with contextlib.aclosing(stream):
                    # lightkube re-opens a stream that the server ended cleanly, from the last version.
                    async for event_type, obj in stream:
                        failures = 0
                        plain = to_plain(obj)
                        last = (plain.get("metadata") or {}).get("resourceVersion") or last
                        if event_type in ("ADDED", "MODIFIED", "DELETED"):
                            yield WatchEvent(event_type, plain)
                return  # lightkube only stops on its own when told to; treat it as the end
            except TRANSLATABLE as exc:
                err = translate(exc)
                failures += 1
                if not errors.is_retryable(err) or failures >= self.max_attempts:
                    raise err from exc
                self.retries += 1
                await asyncio.sleep(min(self.retry_cap_s, self.retry_base_s * 2 ** (failures - 1)))

    async def apply(self, obj: Object, *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Object:
        kind, name, ns = self._identify(obj)
        body = {k: v for k, v in obj.items() if k != "status"}
        if ns is not None:
            body["metadata"] = {**body["metadata"], "namespace": ns}
        result = await self._retrying(
            lambda: self._client.patch(
                resource_class(kind),
                name,
                body,
                namespace=ns,
                patch_type=PatchType.APPLY,
                field_manager=field_manager,
                force=force,
            )
        )
        return to_plain(result)

    async def apply_status(self, obj: Object, *, field_manager: str = FIELD_MANAGER) -> Object:
        kind, name, ns = self._identify(obj)
        meta = {"name": name, **({"namespace": ns} if ns is not None else {})}
        if obj["metadata"].get("resourceVersion"):
            meta["resourceVersion"] = obj["metadata"]["resourceVersion"]
        body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta, "status": obj.get("status") or {}}
        result = await self._retrying(
            lambda: self._client.patch(
                resource_class(kind).Status,
                name,
                body,
                namespace=ns,
                patch_type=PatchType.APPLY,
                field_manager=field_manager,
                force=True,
            )
        )
        return to_plain(result)

    async def scale(self, kind: ResourceKind, name: str, namespace: str | None = None, *, replicas: int,
                    field_manager: str) -> Object:
        # A merge patch of the Scale, as `kubectl scale` sends it: the API server records it as an
        # update of spec.replicas by `field_manager`, leaving every other field's owner alone.
        scaling.check_request(kind, name, replicas)
        result = await self._retrying(
            lambda: self._client.patch(resource_class(kind).Scale, name, {"spec": {"replicas": replicas}},
                                       namespace=self._ns(kind, namespace), patch_type=PatchType.MERGE,
                                       field_manager=field_manager)
        )
        return to_plain(result)

    async def delete(
        self, kind: ResourceKind, name: str, namespace: str | None = None, *, propagation: Propagation = "Background"
    ) -> None:
        # Always explicit: without a policy the API server orphans a batch/v1 Job's pods.
        cascade = CascadeType(propagation)
        await self._retrying(
            lambda: self._client.delete(resource_class(kind), name, namespace=self._ns(kind, namespace), cascade=cascade)
        )

    async def emit_event(self, involved: Object, type: str, reason: str, message: str) -> None:
        event = build_event(involved, type, reason, message)
        meta = event["metadata"]
        try:
            try:
                existing = await self.get(EVENT, meta["name"], meta["namespace"])
                event["count"] = int(existing.get("count") or 1) + 1
                event["firstTimestamp"] = existing.get("firstTimestamp") or now_rfc3339()
            except errors.NotFound:
                event["count"] = 1
                event["firstTimestamp"] = now_rfc3339()
            event["lastTimestamp"] = now_rfc3339()
            await self.apply(event)
        except errors.ClusterError as exc:
            log.warning("could not record event %s on %s: %s", reason, involved.get("kind"), exc)

    async def close(self) -> None:
        await self._client.close()

    def _identify(self, obj: Object) -> tuple[ResourceKind, str, str | None]:
        kind = kind_of(obj)
        name = (obj.get("metadata") or {}).get("name")
        if not name or not isinstance(name, str):
            raise errors.Invalid(f"{kind.kind}: metadata.name is required")
        return kind, name, self._ns(kind, obj["metadata"].get("namespace"))
