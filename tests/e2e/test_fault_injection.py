"""e2e fault injection on the local cluster (127.0.0.1 only, bounded, seeded).

A model server Workspace runs throughout; each round applies a new tuning Workspace (its adapter
written to its own hostPath volume) and SIGKILLs one of the control plane, the model server or the
trainer at a random moment (each victim once, in a seeded order). After each round, once everything
has settled:
- exactly one process (tree) per running pod, none for a pod that is gone or finished;
- no orphan ports: every port a pod process listens on is one its pod records, and each Ready pod's
  recorded ports answer;
- every Workspace converged: the model server's succeeded and answers, each tuning Workspace has a
  terminal outcome (succeeded, or failed because its trainer was killed: `backoffLimit: 0`) that
  later rounds never change (a restarted control plane ran failed Jobs again: fixed);
- every adapter is complete (marker, config and weights that load) or absent (no marker: a killed
  trainer's partial files are never marked complete).
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import random
import signal
import threading
import time

import httpx
import psutil
import pytest

from kaito.api.conditions import Outcome, compute_outcome
from tests.e2e.conftest import wait_for, workspace_yaml

SEED = 1717
MARKER = "fine_tuning_completed.txt"


@pytest.fixture
def data_url(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"messages": [{"role": "user", "content": f"say {i}"}, {"role": "assistant", "content": "kaito " * 6}]}
            for i in range(24)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/train.jsonl"
    server.shutdown()


def _tuning_yaml(name: str, model: str, url: str) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: chaos-lora
data:
  training_config.yaml: |
    training_config:
      ModelConfig:
        torch_dtype: "float32"
      QuantizationConfig:
        load_in_4bit: false
      LoraConfig:
        r: 4
        lora_alpha: 8
      TrainingArguments:
        output_dir: "/mnt/results"
        num_train_epochs: 2
        per_device_train_batch_size: 1
        save_strategy: "no"
---
apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: {name}
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: {name}
tuning:
  preset:
    name: {model}
  method: lora
  config: chaos-lora
  input:
    urls:
      - {url}
  output:
    volumeSource:
      hostPath:
        path: /adapters/{name}
"""


def _roots(kaito, marker: str) -> list[int]:
    """Pod processes whose command line has `marker` and whose parent is not one of them."""
    pods = kaito.pod_processes()
    found = []
    for pid in pods:
        try:
            proc = psutil.Process(pid)
            if marker in " ".join(proc.cmdline()) and proc.ppid() not in pods:
                found.append(pid)
        except psutil.Error:
            continue
    return found


def _stored(kaito, kind_name: str) -> list[dict]:
    from kaito.cluster import protocol
    from kaito.cluster.local import LocalCluster

    async def read() -> list[dict]:
        cluster = LocalCluster(kaito.home / "store.db")
        try:
            return (await cluster.list(getattr(protocol, kind_name))).items
        finally:
            await cluster.close()

    return asyncio.run(read())


def _outcome(kaito, name: str) -> Outcome:
    return compute_outcome((kaito.workspace(name).get("status") or {}).get("conditions"))


def _converged(kaito, tunes: list[str]) -> bool:
    if _outcome(kaito, "serve") is not Outcome.SUCCEEDED or any(_outcome(kaito, t) is Outcome.PENDING for t in tunes):
        return False
    if _roots(kaito, "kaito.runtime.tuning"):
        return False  # a trainer still runs for a Workspace that says it is done
    endpoint = kaito("endpoint", "serve").stdout.strip()
    try:
        return bool(endpoint) and httpx.get(f"{endpoint}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _check_processes_and_ports(kaito) -> None:
    from kaito.cluster.local.runner import ANNOTATION_PORTS

    pods = {p["metadata"]["name"]: p for p in _stored(kaito, "POD")}
    processes = kaito.pod_processes()
    roots: dict[str, list[int]] = {}
    for pid, pod in processes.items():
        if psutil.Process(pid).ppid() not in processes:
            roots.setdefault(pod.rsplit("/", 1)[-1], []).append(pid)
    for pod, pids in roots.items():
        assert pod in pods, f"a process of pod {pod}, which no longer exists: {pids}"
        phase = (pods[pod].get("status") or {}).get("phase")
        assert phase not in ("Succeeded", "Failed"), f"pod {pod} is {phase} but runs {pids}"
        assert len(pids) == 1, f"pod {pod} runs {len(pids)} processes: {pids}"
    for name, pod in pods.items():
        if (pod.get("status") or {}).get("phase") == "Running":
            assert name in roots, f"pod {name} says Running but no process runs it"
    recorded: dict[str, set[int]] = {
        name: {int(v) for v in json.loads((p["metadata"].get("annotations") or {}).get(ANNOTATION_PORTS) or "{}").values()}
        for name, p in pods.items()}
    for pid, pod in processes.items():
        listening = {c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        ours = recorded.get(pod.rsplit("/", 1)[-1], set())
        extra = listening - ours
        # An engine may listen on ports of its own (its worker's channel) beside the recorded one.
        assert not extra or ours & listening, f"pod {pod} (pid {pid}) listens on {sorted(listening)}, records {ours}"


def _check_adapter(kaito, name: str) -> None:
    from safetensors import safe_open

    folder = kaito.home / "volumes" / "hostpath" / "adapters" / name
    if not (folder / MARKER).is_file():
        assert _outcome(kaito, name) is not Outcome.SUCCEEDED, f"{name} succeeded without a complete adapter"
        return  # absent: whatever a killed trainer left is not marked complete
    assert json.loads((folder / "adapter_config.json").read_text())["peft_type"] == "LORA"
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        assert list(weights.keys())


def _kill(kaito, victim: str, rng: random.Random) -> str:
    """SIGKILL `victim` at a random moment of its life; what was killed, for the failure messages."""
    time.sleep(rng.uniform(0.0, 3.0))
    if victim == "control plane":
        pid = kaito.control_plane_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for("the killed plane's lock to be released", lambda: kaito.control_plane_pid() is None, timeout=20)
        wait_for("the killed plane's pods to die", lambda: kaito.pod_processes() == {}, timeout=30)
        kaito("up", "--detach", check=True, timeout=90)
        return f"control plane {pid}"
    marker = "kaito.runtime.inference" if victim == "model server" else "kaito.runtime.tuning"
    pids = wait_for(f"a {victim} to kill", lambda: _roots(kaito, marker), timeout=90, interval=0.1)
    time.sleep(rng.uniform(0.0, 2.0))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return f"{victim} {pids}"


def test_kill_the_control_plane_the_model_server_and_the_trainer(local_cluster, tiny_model, data_url):
    kaito = local_cluster
    rng = random.Random(SEED)
    kaito("apply", "-f", kaito.write("serve.yaml", workspace_yaml("serve", tiny_model.repo_id)), "--wait",
          "--timeout", "180", check=True, timeout=200)
    victims = ["control plane", "model server", "trainer"]
    rng.shuffle(victims)
    tunes: list[str] = []
    outcomes: dict[str, Outcome] = {}
    for round_no, victim in enumerate(victims):
        name = f"tune-{round_no}"
        tunes.append(name)
        kaito("apply", "-f", kaito.write(f"{name}.yaml", _tuning_yaml(name, tiny_model.repo_id, data_url)),
              check=True)
        killed = _kill(kaito, victim, rng)
        wait_for(f"round {round_no} ({killed}) to converge", lambda: _converged(kaito, tunes), timeout=240,
                 interval=1.0)
        _check_processes_and_ports(kaito)
        for tune in tunes:
            _check_adapter(kaito, tune)
            outcome = _outcome(kaito, tune)
            # A terminal outcome is final: a failed tuning must not rerun into a success later.
            assert outcomes.setdefault(tune, outcome) is outcome, (round_no, killed, tune, outcomes[tune], outcome)
    assert len(_roots(kaito, "kaito.runtime.inference")) == 1
