"""Which watch events wake which RAGEngine (`kaito.controller.ragengine.watches`), as pure mappings."""

from __future__ import annotations

from kaito.cluster.protocol import WatchEvent
from kaito.controller.ragengine.observe import RAGEngineKey
from kaito.controller.ragengine.watches import RAGEngineController
from kaito.controller.settings import Settings

KEY = RAGEngineKey("team", "docs")


def _rag(url: str, generation: int = 1, compute: dict | None = None, status: dict | None = None) -> dict:
    spec = {"inferenceService": {"url": url, "contextWindowSize": 4096}}
    if compute is not None:
        spec["compute"] = compute
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "RAGEngine",
            "metadata": {"name": "docs", "namespace": "team", "generation": generation}, "spec": spec,
            "status": status or {}}


def _controller() -> RAGEngineController:
    return RAGEngineController(None, Settings(), reconciler=object())  # type: ignore[arg-type]


def test_workspace_events_wake_the_engines_naming_them():
    kinds = _controller()
    assert kinds.on_ragengine(WatchEvent("ADDED", _rag("http://phi/v1/chat/completions"))) == [KEY]
    phi = {"metadata": {"name": "phi", "namespace": "team"}, "status": {"conditions": []}}
    assert kinds.on_workspace(WatchEvent("MODIFIED", phi)) == [KEY]  # a status change counts here
    assert kinds.on_workspace(WatchEvent("MODIFIED", {"metadata": {"name": "phi", "namespace": "other"}})) == []
    # A new URL forgets the old Workspace; a status-only change of the engine is no reconcile.
    assert kinds.on_ragengine(WatchEvent("MODIFIED", _rag("http://llm.example.com/v1", generation=2))) == [KEY]
    assert kinds.on_workspace(WatchEvent("MODIFIED", phi)) == []
    assert kinds.on_ragengine(WatchEvent("MODIFIED", _rag("http://llm.example.com/v1", generation=2,
                                                          status={"conditions": [{"type": "X"}]}))) == []
    assert list(kinds.known_keys()) == [KEY]
    assert kinds.on_ragengine(WatchEvent("DELETED", _rag("http://llm.example.com/v1"))) == []
    assert list(kinds.known_keys()) == []


def test_owned_objects_nodeclaims_and_nodes_map_back():
    kinds = _controller()
    compute = {"instanceType": "Standard_NC6s_v3", "labelSelector": {"matchLabels": {"apps": "rag"}}}
    kinds.on_ragengine(WatchEvent("ADDED", _rag("http://x.example.com/v1", compute=compute)))
    owned = {"metadata": {"name": "docs", "namespace": "team",
                          "ownerReferences": [{"kind": "RAGEngine", "name": "docs", "controller": True}]}}
    assert kinds.on_owned(WatchEvent("MODIFIED", owned)) == [KEY]
    by_workspace = {"metadata": {"namespace": "team",
                                 "ownerReferences": [{"kind": "Workspace", "name": "docs", "controller": True}]}}
    assert kinds.on_owned(WatchEvent("MODIFIED", by_workspace)) == []
    claim = {"kind": "NodeClaim", "metadata": {"name": "c", "labels": {"kaito.sh/ragengine": "docs",
                                                                        "kaito.sh/ragenginenamespace": "team"}}}
    assert kinds.on_node(WatchEvent("MODIFIED", claim)) == [KEY]
    byo = {"kind": "Node", "metadata": {"name": "n", "labels": {"apps": "rag", "zone": "1"}}}
    assert kinds.on_node(WatchEvent("ADDED", byo)) == [KEY]
    other = {"kind": "Node", "metadata": {"name": "m", "labels": {"apps": "web"}}}
    assert kinds.on_node(WatchEvent("ADDED", other)) == []
