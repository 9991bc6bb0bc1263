"""The dashboard's pure parts (metrics text → chart points, objects → the page's JSON) and its
small HTTP server (read-only, loopback names only, assets from package data)."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime

import pytest

from kaito.operator.dashboard import kinds, server, state

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _metrics(tokens: float, running: int, waiting: int, ttft_sum: float, ttft_count: int) -> str:
    # vLLM's exposition: names with colons, a model_name label; two label sets are summed.
    return f"""# HELP vllm:generation_tokens_total Tokens generated
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{model_name="a"}} {tokens - 1}
vllm:generation_tokens_total{{model_name="b"}} 1.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="a"}} {running}
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="a"}} {waiting}
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{le="+Inf",model_name="a"}} {ttft_count}
vllm:time_to_first_token_seconds_count{{model_name="a"}} {ttft_count}
vllm:time_to_first_token_seconds_sum{{model_name="a"}} {ttft_sum}
"""


def test_sample_and_points_from_vllm_metrics():
    first = state.parse_sample(_metrics(100, 2, 1, 0.5, 2), now=10.0)
    assert (first.generation_tokens, first.running, first.waiting) == (100, 2, 1)
    second = state.parse_sample(_metrics(160, 3, 0, 0.8, 5), now=12.0)
    point = state.compute_point(first, second)
    assert point == {"t": 12.0, "tokens_per_s": 30.0, "running": 3, "waiting": 0, "ttft_ms": 100.0}
    assert state.compute_point(None, second)["tokens_per_s"] is None
    restarted = state.parse_sample(_metrics(5, 0, 0, 0.0, 0), now=13.0)
    assert state.compute_point(second, restarted)["tokens_per_s"] is None  # a counter reset is no rate


def test_history_is_bounded_and_forgets_gone_servers():
    history = state.MetricsHistory(points=3)
    for i in range(5):
        history.add("default/p", state.parse_sample(_metrics(10 * i + 1, 0, 0, 0, 0), now=float(i)))
    assert [p["t"] for p in history.points("default/p")] == [2.0, 3.0, 4.0]
    history.keep_only([])
    assert history.points("default/p") == []


def test_snapshot_joins_objects_pods_events_and_metrics():
    ws = {"metadata": {"name": "phi", "namespace": "default", "creationTimestamp": "2026-01-02T03:00:05Z"},
          "inference": {"preset": {"name": "phi-3-mini-4k-instruct"}},
          "status": {"conditions": [{"type": "InferenceReady", "status": "True", "reason": "R", "message": "m"},
                                    {"type": "WorkspaceSucceeded", "status": "True", "reason": "S", "message": ""}]}}
    mine = {"metadata": {"name": "phi-x-0", "namespace": "default", "labels": {"kaito.sh/workspace": "phi"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    other = {"metadata": {"name": "x-0", "namespace": "default", "labels": {"kaito.sh/workspace": "x"}}}
    events = [{"metadata": {"namespace": "default"}, "involvedObject": {"kind": "Workspace", "name": "phi"},
               "type": "Normal", "reason": "Created", "message": "hello", "lastTimestamp": "2026-01-02T03:01:00Z"},
              {"metadata": {"namespace": "other"}, "involvedObject": {"kind": "Workspace", "name": "phi"},
               "type": "Warning", "reason": "Elsewhere", "message": "not ours"}]
    history = state.MetricsHistory()
    history.add("default/phi-x-0", state.parse_sample(_metrics(1, 1, 0, 0, 0), now=1.0))
    snap = state.build_snapshot([(kinds.KINDS[0], [ws])], [mine, other], events,
                                {"default/phi-x-0": "http://127.0.0.1:4000"}, history, NOW)
    [kind] = snap["kinds"]
    assert kind["kind"] == "Workspace" and kind["columns"] == list(kinds.KINDS[0].conditions)
    [item] = kind["items"]
    assert (item["name"], item["age"], item["summary"], item["ready"]) == ("phi", "4m", "phi-3-mini-4k-instruct", True)
    assert item["columns"] == ["", "True", "", "True"]
    assert [p["name"] for p in item["pods"]] == ["phi-x-0"] and item["endpoint"] == "http://127.0.0.1:4000"
    assert len(item["pods"][0]["metrics"]) == 1
    assert [e["reason"] for e in item["events"]] == ["Created"]
    json.dumps(snap)  # the page gets it as JSON


def test_ragengines_are_one_more_kind_on_the_page():
    [rag_kind] = [k for k in kinds.KINDS if k.resource.kind == "RAGEngine"]
    rag = {"metadata": {"name": "docs", "namespace": "default", "creationTimestamp": "2026-01-02T03:04:00Z"},
           "spec": {"embedding": {"local": {"modelID": "BAAI/bge-small-en-v1.5"}}},
           "status": {"conditions": [{"type": "ServiceReady", "status": "True", "reason": "R", "message": ""},
                                     {"type": "RAGEngineSucceeded", "status": "True", "reason": "S", "message": ""}]}}
    pod = {"metadata": {"name": "docs-abc-0", "namespace": "default", "labels": {"kaito.sh/ragengine": "docs"}},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    snap = state.build_snapshot([(rag_kind, [rag])], [pod], [], {"default/docs-abc-0": "http://127.0.0.1:4001"},
                                state.MetricsHistory(), NOW)
    [kind] = snap["kinds"]
    assert kind["kind"] == "RAGEngine" and kind["plural"] == "ragengines"
    [item] = kind["items"]
    assert item["ready"] and item["columns"] == ["", "True", "", "True"]
    assert item["endpoint"] == "http://127.0.0.1:4001" and [p["name"] for p in item["pods"]] == ["docs-abc-0"]


class _Collector:
    def __init__(self) -> None:
        self.asked = 0

    def read_snapshot(self) -> bytes:
        self.asked += 1
        return b'{"generated": null, "kinds": []}'


@pytest.fixture
def dashboard():
    collector = _Collector()
    srv = server.DashboardServer(collector, port=0)  # type: ignore[arg-type]
    srv.start()
    yield srv, collector
    srv.stop()


def _request(srv, method: str, path: str, host: str | None = None):
    port = int(srv.url.rstrip("/").rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=host is not None)
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type"), body


def test_server_serves_the_page_and_the_state_read_only(dashboard):
    srv, collector = dashboard
    status, ctype, body = _request(srv, "GET", "/")
    assert status == 200 and ctype.startswith("text/html") and b"/dashboard.js" in body
    assert b"http://" not in body and b"https://" not in body  # no CDN: everything is served from here
    status, ctype, body = _request(srv, "GET", "/dashboard.js")
    assert status == 200 and b"/api/state" in body
    status, ctype, body = _request(srv, "GET", "/api/state")
    assert status == 200 and json.loads(body) == {"generated": None, "kinds": []} and collector.asked == 1
    assert _request(srv, "POST", "/api/state")[0] == 405
    assert _request(srv, "DELETE", "/")[0] == 405
    assert _request(srv, "GET", "/nope")[0] == 404


def test_server_refuses_foreign_host_names(dashboard):
    srv, collector = dashboard
    assert _request(srv, "GET", "/api/state", host="attacker.example:8470")[0] == 403
    assert _request(srv, "GET", "/api/state", host="localhost:8470")[0] == 200
    assert _request(srv, "GET", "/api/state", host="[::1]:8470")[0] == 200


def test_an_inferenceset_is_one_more_kind_with_its_replicas_pods():
    [set_kind] = [k for k in kinds.KINDS if k.resource.kind == "InferenceSet"]
    obj = {"metadata": {"name": "chat", "namespace": "default", "creationTimestamp": "2026-01-02T03:00:05Z"},
           "spec": {"replicas": 2, "template": {"inference": {"preset": {"name": "phi-4-mini-instruct"}}}},
           "status": {"conditions": [{"type": "InferenceSetReady", "status": "True", "reason": "inferencesetReady",
                                      "message": "inferenceset is ready"}]}}
    pods = [{"metadata": {"name": f"chat-{c}-pod", "namespace": "default",
                          "labels": {"kaito.sh/workspace": f"chat-{c}", "inferenceset.kaito.sh/created-by": "chat"}},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}} for c in "ab"]
    snap = state.build_snapshot([(set_kind, [obj])], pods, [], {}, state.MetricsHistory(), NOW)
    [kind] = snap["kinds"]
    assert (kind["kind"], kind["plural"], kind["columns"]) == ("InferenceSet", "inferencesets", ["InferenceSetReady"])
    [item] = kind["items"]
    assert (item["summary"], item["ready"]) == ("phi-4-mini-instruct", True)
    assert [p["name"] for p in item["pods"]] == ["chat-a-pod", "chat-b-pod"]  # every replica's server
