"""Why a model server stopped before serving, read from its pod's termination message (pure).

KAITO's runtime writes one JSON object to the container's termination-message file when it cannot
start (`kaito.runtime.inference.startup_errors`): `{"reason", "message", "field", "file"}` — a key of
`inference.config` vLLM refused, a bad flag, an engine that cannot run on the node. Kubernetes (and
the local runner) keeps it in the pod's status; the Workspace's conditions pass it on, so the user
reads "vllm.max-num-seqs: ..." on the Workspace instead of digging through a crash-looping pod.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Reasons a model server's termination message gives (`kaito.runtime.inference.startup_errors`) for a
# start that no restart will fix: the command line, the runtime parameters, an engine that cannot run
# here. The Workspace fails with them (a restart after the user fixes the ConfigMap clears it); other
# reasons (a model that failed to load) keep it pending with the reason shown.
FINAL_START_FAILURES = frozenset({"InvalidArguments", "InvalidRuntimeParameters", "EngineUnavailable"})


@dataclass(frozen=True, kw_only=True)
class StartFailure:
    """Why a workload's pod stopped before serving, from its termination message."""

    reason: str
    message: str

    @property
    def final(self) -> bool:
        return self.reason in FINAL_START_FAILURES


def compute_start_failure(pods: Iterable[Mapping[str, Any]]) -> StartFailure | None:
    """The first termination message of a model server that is not ready (KAITO's runtime writes
    `{"reason", "message", "field", "file"}` there): its current one if it is down, else the one of its
    last run. It holds while the restarted container loads — a crash loop restarts it every few
    seconds, and the Workspace must not flap between failed and pending — and goes once a run is ready."""
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name") or ""):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            state = container.get("state") or {}
            if container.get("ready"):
                continue
            terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
            record = _parse_termination_message(terminated.get("message"))
            if record is not None:
                name = (pod.get("metadata") or {}).get("name")
                code = terminated.get("exitCode")
                return StartFailure(reason=record["reason"],
                                    message=f"pod {name} exited with code {code}: {record['message']}")
    return None


def _parse_termination_message(text: Any) -> dict[str, str] | None:
    if not isinstance(text, str) or not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("reason", "message")):
        return None
    return record
