"""What the dashboard page shows, as JSON, built from what the collector read (pure but for `MetricsHistory`).

The model servers' load is read from their Prometheus text with vLLM's metric names, which our
server and vLLM's both export: `vllm:generation_tokens_total` (a counter: its rate is tokens/s),
`vllm:num_requests_running` and `vllm:num_requests_waiting` (gauges) and the
`vllm:time_to_first_token_seconds` histogram (its `_sum`/`_count` deltas give the mean time to first
token of the requests that got their first token since the previous sample). Parsing is
prometheus_client's own parser.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaito.operator.dashboard.kinds import DashboardKind

HISTORY_POINTS = 120  # per model server: two minutes at one sample a second
EVENTS_PER_OBJECT = 12


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One scrape of a model server's `/metrics`: counters as totals, gauges as values."""

    time: float
    generation_tokens: float
    running: float
    waiting: float
    ttft_sum: float
    ttft_count: float


def parse_sample(text: str, now: float) -> Sample:
    """The dashboard's numbers from Prometheus text (summed over label sets such as `model_name`)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"vllm:generation_tokens_total": 0.0, "vllm:num_requests_running": 0.0,
              "vllm:num_requests_waiting": 0.0, "vllm:time_to_first_token_seconds_sum": 0.0,
              "vllm:time_to_first_token_seconds_count": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += float(sample.value)
    return Sample(time=now, generation_tokens=totals["vllm:generation_tokens_total"],
                  running=totals["vllm:num_requests_running"], waiting=totals["vllm:num_requests_waiting"],
                  ttft_sum=totals["vllm:time_to_first_token_seconds_sum"],
                  ttft_count=totals["vllm:time_to_first_token_seconds_count"])


def compute_point(previous: Sample | None, current: Sample) -> dict[str, Any]:
    """One chart point: tokens/s and mean TTFT over the interval since `previous`, gauges as read.

    A counter that went down means the server restarted: the interval has no rate then (None).
    """
    tokens_per_s = ttft_ms = None
    if previous is not None and current.time > previous.time:
        generated = current.generation_tokens - previous.generation_tokens
        if generated >= 0:
            tokens_per_s = round(generated / (current.time - previous.time), 2)
        firsts = current.ttft_count - previous.ttft_count
        if firsts > 0 and current.ttft_sum >= previous.ttft_sum:
            ttft_ms = round(1000.0 * (current.ttft_sum - previous.ttft_sum) / firsts, 1)
    return {"t": round(current.time, 3), "tokens_per_s": tokens_per_s, "running": current.running,
            "waiting": current.waiting, "ttft_ms": ttft_ms}


class MetricsHistory:
    """The last `HISTORY_POINTS` chart points of each model server (keyed by pod)."""

    def __init__(self, points: int = HISTORY_POINTS) -> None:
        self._points = points
        self._series: dict[str, deque] = {}
        self._last: dict[str, Sample] = {}

    def add(self, key: str, sample: Sample) -> None:
        series = self._series.setdefault(key, deque(maxlen=self._points))
        series.append(compute_point(self._last.get(key), sample))
        self._last[key] = sample

    def points(self, key: str) -> list[dict[str, Any]]:
        return list(self._series.get(key, ()))

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget servers that are gone (a deleted Workspace's pods)."""
        alive = set(keys)
        for key in [k for k in self._series if k not in alive]:
            del self._series[key]
            self._last.pop(key, None)


def compute_age(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return ""
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    seconds = max(int((now - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _summary(obj: Mapping[str, Any]) -> str:
    """What the object runs, in a word: the preset (or model) it serves or tunes."""
    spec = obj.get("spec") or {}
    for section in (obj.get("inference"), obj.get("tuning"), spec.get("inference"), spec.get("tuning"),
                    (spec.get("template") or {}).get("inference")):  # an InferenceSet's template
        name = ((section or {}).get("preset") or {}).get("name") if isinstance(section, Mapping) else None
        if name:
            return str(name)
    return "template" if isinstance(obj.get("inference"), Mapping) and obj["inference"].get("template") else ""


def _pod_view(pod: Mapping[str, Any], endpoint: str | None, points: list[dict[str, Any]]) -> dict[str, Any]:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return {"name": pod["metadata"]["name"], "phase": status.get("phase") or "Pending", "ready": ready,
            "restarts": sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or []),
            "reason": status.get("reason") or "", "endpoint": endpoint, "metrics": points}


def _event_view(event: Mapping[str, Any]) -> dict[str, Any]:
    obj = event.get("involvedObject") or {}
    return {"type": event.get("type") or "", "reason": event.get("reason") or "",
            "object": f"{obj.get('kind', '')}/{obj.get('name', '')}", "message": event.get("message") or "",
            "count": event.get("count") or 1,
            "time": event.get("lastTimestamp") or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp") or ""}


def build_snapshot(objects: Iterable[tuple[DashboardKind, list[dict]]], pods: list[dict], events: list[dict],
                   endpoints: Mapping[str, str], history: MetricsHistory, now: datetime) -> dict[str, Any]:
    """The JSON document of `/api/state`: per kind, its objects with conditions, pods, endpoint,
    events and, per model server pod, its chart points. `endpoints` maps "namespace/pod" to a URL."""
    kinds_out = []
    for kind, items in objects:
        rows = []
        for obj in sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
            meta = obj["metadata"]
            namespace, name = meta.get("namespace", "default"), meta["name"]
            mine = [p for p in pods if p["metadata"].get("namespace", "default") == namespace
                    and (p["metadata"].get("labels") or {}).get(kind.pod_label) == name]
            mine.sort(key=lambda p: p["metadata"]["name"])
            keys = [f"{namespace}/{p['metadata']['name']}" for p in mine]
            pod_views = [_pod_view(p, endpoints.get(k), history.points(k)) for p, k in zip(mine, keys, strict=True)]
            names = {name} | {p["metadata"]["name"] for p in mine}
            own_events = [e for e in events if (e.get("involvedObject") or {}).get("name") in names
                          and (e.get("metadata") or {}).get("namespace", "default") == namespace]
            event_views = sorted((_event_view(e) for e in own_events), key=lambda e: e["time"])[-EVENTS_PER_OBJECT:]
            conditions = [{"type": c.get("type", ""), "status": c.get("status", ""), "reason": c.get("reason", ""),
                           "message": c.get("message", "")} for c in (obj.get("status") or {}).get("conditions") or []]
            by_type = {c["type"]: c["status"] for c in conditions}
            rows.append({"name": name, "namespace": namespace, "age": compute_age(meta.get("creationTimestamp"), now),
                         "summary": _summary(obj), "deleting": bool(meta.get("deletionTimestamp")),
                         "ready": by_type.get(kind.ready_condition) == "True",
                         "columns": [by_type.get(t, "") for t in kind.conditions], "conditions": conditions,
                         "pods": pod_views, "endpoint": next((p["endpoint"] for p in pod_views if p["endpoint"]), None),
                         "events": event_views})
        kinds_out.append({"kind": kind.resource.kind, "plural": kind.resource.plural,
                          "columns": list(kind.conditions), "items": rows})
    return {"generated": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "kinds": kinds_out}
