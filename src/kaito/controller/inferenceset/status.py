"""An InferenceSet's status as a pure function of what its children say (kaito-v0.12.md §3.3).

As KAITO: `replicas` is the desired count (what the scale subresource reports), `readyReplicas` the
children whose `WorkspaceSucceeded` is True, `selector` the label query that finds the children,
`InferenceSetReady` True (`inferencesetReady`) once every desired replica is ready, else False
(`inferencesetNotReady`, "r/d replicas are ready"); `BenchmarkCompleted` when the benchmark runs for
the set (a vLLM preset set that does not disable it) with the sum of the children's peak tokens per
minute in `performance`; `InferenceSetDeleting` while it goes. A child being deleted is not counted
as ready (KAITO may count it, whichever of its conditions comes first). A problem the controller
found (a template admission refuses, a gateway object the API server refused) is
`InferenceSetReady=False` with reason `inferencesetFailed` and its message. Fields this controller does
not own (`autoUpgrade`) are kept as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaito.api import inferenceset
from kaito.api.conditions import set_condition
from kaito.api.hub import Metric, Performance
from kaito.api.inferenceset import InferenceSetStatus

_OWNED = ("replicas", "readyReplicas", "selector", "conditions", "performance")
METRIC_PEAK_TPM = "peakTokensPerMinute"  # what each child's benchmark reports
METRIC_AGGREGATED_TPM = "aggregatedPeakTokensPerMinute"
BENCHMARK_DESCRIPTION = "stress/high-concurrency"
BENCHMARK_UNIT = "tokens/min"
MESSAGE_READY = "inferenceset is ready"
MESSAGE_DELETING = "inferenceset is being deleted"


@dataclass(frozen=True, kw_only=True)
class SetFacts:
    generation: int | None
    desired: int
    ready: int
    selector: str
    benchmark: bool = False  # the benchmark runs for this set (BenchmarkCompleted is reported)
    benchmarked: int = 0  # ready children with a peak-TPM result
    total_tpm: float | None = None  # their sum; None when none has one
    runtime: str | None = None
    problem: str | None = None  # InferenceSetReady=False, inferencesetFailed, this message
    deleting: bool = False


def read_peak_tpm(child: Mapping[str, Any]) -> float | None:
    """A child's benchmark result (`status.performance.metrics.peakTokensPerMinute`), None without one."""
    metrics = (((child.get("status") or {}).get("performance") or {}).get("metrics")) or {}
    try:
        value = float((metrics.get(METRIC_PEAK_TPM) or {}).get("value"))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def compute_benchmark(ready_children: Iterable[Mapping[str, Any]]) -> tuple[int, float | None]:
    """(how many ready children have a result, their summed peak TPM or None)."""
    values = [v for v in (read_peak_tpm(c) for c in ready_children) if v is not None]
    return len(values), (sum(values) if values else None)


def _parse(old: Mapping[str, Any] | None) -> InferenceSetStatus:
    owned = {k: v for k, v in (old or {}).items() if k in _OWNED}
    return InferenceSetStatus.model_validate(owned)


def compute_set_status(old: Mapping[str, Any] | None, facts: SetFacts, now: datetime) -> dict[str, Any]:
    """The full status for these facts; a condition's transition time kept while its status holds."""
    status = _parse(old)
    conds = status.conditions

    def put(type_: str, value: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, value, reason, message, facts.generation, now)  # type: ignore[arg-type]

    if facts.deleting:
        put(inferenceset.CONDITION_DELETING, "True", inferenceset.REASON_DELETED, MESSAGE_DELETING)
        return _assemble(old, status.model_copy(update={"conditions": conds}))
    if facts.problem is not None:
        put(inferenceset.CONDITION_READY, "False", inferenceset.REASON_FAILED, facts.problem)
    elif facts.ready == facts.desired:
        put(inferenceset.CONDITION_READY, "True", inferenceset.REASON_READY, MESSAGE_READY)
    else:
        put(inferenceset.CONDITION_READY, "False", inferenceset.REASON_NOT_READY,
            f"inferenceset is not ready, {facts.ready}/{facts.desired} replicas are ready")
    metrics = dict((status.performance.metrics if status.performance else None) or {})
    metrics.pop(METRIC_AGGREGATED_TPM, None)
    if facts.benchmark:
        done = facts.benchmarked == facts.desired and facts.desired > 0
        put(inferenceset.CONDITION_BENCHMARK, "True" if done else "False",
            "BenchmarkCompleted" if done else inferenceset.REASON_BENCHMARK_PENDING,
            f"{facts.benchmarked}/{facts.desired} replicas benchmarked")
        if facts.total_tpm is not None:
            metrics[METRIC_AGGREGATED_TPM] = Metric(description=BENCHMARK_DESCRIPTION, value=f"{facts.total_tpm:.2f}",
                                                    unit=BENCHMARK_UNIT, config={"engine": facts.runtime or ""})
    updated = status.model_copy(update={
        "replicas": facts.desired, "ready_replicas": facts.ready, "selector": facts.selector, "conditions": conds,
        "performance": Performance(metrics=metrics) if metrics else None})
    return _assemble(old, updated)


def _assemble(old: Mapping[str, Any] | None, status: InferenceSetStatus) -> dict[str, Any]:
    out = {k: v for k, v in status.to_dict().items() if k in _OWNED}
    for key, value in (old or {}).items():
        if key not in _OWNED:
            out.setdefault(key, value)  # another writer's field (auto-upgrade): left as it was
    return out


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` changes the stored status (compared by meaning: times parsed)."""
    return _normalise(old or {}) != _normalise(new)


def _normalise(status: Mapping[str, Any]) -> Any:
    owned = _parse(status).to_dict()
    return owned | {k: v for k, v in status.items() if k not in _OWNED}


def find_condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)
