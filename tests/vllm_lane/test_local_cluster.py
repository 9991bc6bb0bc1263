"""e2e in the vLLM lane: the local cluster serves a v1beta1 Workspace with vLLM, as KAITO v0.12 would.

`kaito up` runs from the main `.venv` (no vLLM: the operator side) with `--vllm-python` naming this
lane's interpreter, so the runner starts the vLLM pod there. One Workspace, written as a user writes
it (a v1beta1 Workspace that names no runtime, and its runtime-parameter ConfigMap), becomes KAITO
v0.12's StatefulSet, is served by vLLM (one vLLM start for the whole module) and answers the
`openai` client; `kaito get -o wide` says vLLM. Bad input: an unknown vLLM option is refused by
`kaito apply` naming the key (nothing written), and the same key written into the ConfigMap later is
found by the controller's re-check and named in the Workspace's condition (the pod is left alone).
Deleting the Workspace leaves no process of its pod — vLLM's engine core included — and no port.
Then a value vLLM itself refuses at start (`max-num-seqs: many`, which admission leaves to vLLM)
reaches the Workspace's condition through the pod's termination message: the backstop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
SERVED = "tiny-llama-vllm"  # KAITO's served name: the repo id's last part, lower-cased
PARAMS = """\
vllm:
  max-model-len: 256
  max-num-seqs: 2
  enforce-eager: true
  dtype: float32
"""


def manifest(name: str, model: str, params: str) -> str:
    block = "".join(f"    {line}\n" for line in params.splitlines())
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-params
data:
  inference_config.yaml: |
{block}---
apiVersion: kaito.sh/v1beta1
kind: Workspace
metadata:
  name: {name}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector:
    matchLabels:
      apps: {name}
inference:
  preset:
    name: {model}
  config: {name}-params
"""


@dataclass
class Kaito:
    """The `kaito` command of the main `.venv`, against this module's `$KAITO_HOME`."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        done = subprocess.run([str(MAIN_PYTHON), "-m", "kaito.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kaito {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def write(self, name: str, text: str) -> str:
        path = self.home.parent / name
        path.write_text(text)
        return str(path)

    def workspace(self, name: str) -> dict:
        return json.loads(self("get", "workspace", name, "-o", "json", check=True).stdout)

    def conditions(self, name: str) -> dict[str, dict]:
        return {c["type"]: c for c in (self.workspace(name).get("status") or {}).get("conditions") or []}

    def pod_processes(self) -> dict[int, str]:
        from kaito.cluster.local.processes import find_strays

        return find_strays(self.home)

    def store(self, action):
        """Run `action(cluster)` on the local store directly, as kubectl would (past the CLI's checks)."""
        import asyncio

        from kaito.cluster.local import LocalCluster

        async def run():
            cluster = LocalCluster(self.home / "store.db")
            try:
                return await action(cluster)
            finally:
                await cluster.close()

        return asyncio.run(run())


def wait_for(what: str, probe: Callable[[], object], timeout: float, interval: float = 1.0):
    """Poll until `probe` returns something truthy (a bounded wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def kaito(vllm_model, tmp_path_factory) -> Iterator[Kaito]:
    if not MAIN_PYTHON.exists():
        pytest.fail(f"the local-cluster e2e runs `kaito up` from {MAIN_PYTHON}: run ./scripts/setup first "
                    "(./scripts/test and ./scripts/test-vllm do)")
    home = tmp_path_factory.mktemp("kaito") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAITO_", "VIRTUAL_ENV"))}
    env.update({"KAITO_HOME": str(home), "HF_HUB_CACHE": str(vllm_model.cache_dir), "HF_HUB_OFFLINE": "1",
                "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"})
    cli = Kaito(home, env)
    up = cli("up", "--detach", "--no-dashboard", "--vllm-python", sys.executable, timeout=120)
    assert up.returncode == 0, up.stderr
    assert f"vLLM pods run {sys.executable} (--vllm-python)" in up.stdout
    try:
        yield cli
    finally:
        cli("down", timeout=120)
        leftovers = cli.pod_processes()
        for pid in leftovers:  # never leave a busy-polling engine behind, even when the test failed
            subprocess.run(["kill", "-9", str(pid)], check=False)
        assert leftovers == {}, "pod processes outlived kaito down"


def endpoint_ports(kaito: Kaito, workspace: str) -> dict[str, int]:
    """The local ports of the Workspace's pod (container port → local port, from the runner's annotation)."""
    from kaito.cluster import protocol

    async def read(cluster) -> dict[str, int]:
        pods = (await cluster.list(protocol.POD, "default", {"kaito.sh/workspace": workspace})).items
        return json.loads(pods[0]["metadata"]["annotations"]["kaito.sh/local-ports"]) if pods else {}

    return kaito.store(read)


def port_open(port: int) -> bool:
    from kaito.cluster.local.processes import is_port_open

    return is_port_open(port)


def alive(pid: int) -> bool:
    from kaito.cluster.local.processes import is_alive

    return is_alive(pid)


def test_a_v1beta1_workspace_is_served_by_vllm_and_leaves_nothing_behind(kaito, vllm_model) -> None:
    applied = kaito("apply", "-f", kaito.write("tiny.yaml", manifest("tiny", vllm_model.repo_id, PARAMS)),
                    "--wait", "--timeout", "480", timeout=520)
    assert applied.returncode == 0, applied.stderr + "\n" + kaito("describe", "workspace", "tiny").stdout
    ws = kaito.workspace("tiny")
    assert ws["apiVersion"] == "kaito.sh/v1beta1" and ws["status"]["state"] == "Ready"

    # KAITO v0.12's objects, on vLLM, said so by `kaito get -o wide` and `kaito describe`.
    wide = kaito("get", "workspaces", "-o", "wide", check=True).stdout
    header, row = wide.splitlines()[0].split(), next(line for line in wide.splitlines() if line.startswith("tiny "))
    assert header[-3:] == ["ENGINE", "NODES", "ENDPOINT"] and row.split()[-3] == "vllm", wide  # JOBSTARTED is empty
    assert "Engine:       vllm" in kaito("describe", "workspace", "tiny", check=True).stdout

    # The openai client, through the local endpoint of pod 0.
    endpoint = kaito("endpoint", "tiny", check=True).stdout.strip()
    client = openai.OpenAI(base_url=f"{endpoint}/v1", api_key="unused", max_retries=0, timeout=120)
    (model,) = client.models.list().data
    assert model.id == SERVED and model.max_model_len == 256  # the ConfigMap's vllm.max-model-len
    answer = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=8, temperature=0.0)
    assert answer.choices[0].message.role == "assistant" and answer.usage.completion_tokens >= 1
    assert answer.system_fingerprint.startswith("vllm-")  # vLLM's own server answered
    assert httpx.post(f"{endpoint}/chat", json={"prompt": "hi", "generate_kwargs": {"max_length": 12}},
                      timeout=60).status_code == 200

    # vLLM's processes: the server and its engine core, all started for this pod.
    processes = kaito.pod_processes()
    assert len(processes) >= 2 and set(processes.values()) == {"default/tiny-0"}, processes
    ports = endpoint_ports(kaito, "tiny")
    assert set(ports) == {"5000", "5557"} and port_open(ports["5000"])  # 5557: vLLM's KV-cache events

    # Bad input at apply: an unknown vLLM option is named, and nothing is written.
    bad = kaito.write("bad.yaml", manifest("bad", vllm_model.repo_id, "vllm:\n  max-num-seq: 4\n"))
    refused = kaito("apply", "-f", bad)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "vllm.max-num-seq: vLLM has no option --max-num-seq (did you mean max-num-seqs?)" in refused.stdout
    assert kaito("get", "workspace", "bad").returncode == 1

    # The same key written into the running Workspace's ConfigMap later (`kubectl edit`, past the CLI):
    # the controller's re-check (on its next resync; no watch maps ConfigMaps to Workspaces) names it,
    # and the pod is left alone (KAITO never rolls a pod for a ConfigMap edit).
    edited = yaml.safe_load_all(manifest("tiny", vllm_model.repo_id, PARAMS + "  max-num-seq: 4\n"))
    configmap = {**next(d for d in edited if d["kind"] == "ConfigMap")}
    configmap["metadata"]["namespace"] = "default"
    kaito.store(lambda cluster: cluster.apply(configmap, field_manager="kubectl"))

    def refused_by_recheck() -> dict | None:
        ready = kaito.conditions("tiny").get("InferenceReady") or {}
        return ready if ready.get("reason") == "workspaceValidationFailed" else None

    ready = wait_for("the controller's re-check", refused_by_recheck, timeout=120)
    assert ready["status"] == "False" and "vllm.max-num-seq: vLLM has no option --max-num-seq" in ready["message"]
    assert kaito.pod_processes() == processes  # not restarted, not a crash loop

    # Deleting it leaves no process (vLLM's engine core included) and no port.
    assert kaito("delete", "workspace", "tiny", "--timeout", "120", timeout=150).returncode == 0
    wait_for("the pod's processes to go", lambda: not kaito.pod_processes(), timeout=30)
    assert not any(alive(pid) for pid in processes)
    wait_for("the pod's ports to close", lambda: not any(port_open(p) for p in ports.values()), timeout=30)


def test_a_value_vllm_refuses_at_start_is_a_condition_naming_the_key(kaito, vllm_model) -> None:
    """Admission checks option names; values are vLLM's to judge when the pod starts. The runtime's
    termination message carries the key to the Workspace, which fails instead of waiting forever."""
    text = manifest("typo", vllm_model.repo_id, "vllm:\n  max-num-seqs: many\n  enforce-eager: true\n")
    applied = kaito("apply", "-f", kaito.write("typo.yaml", text), "--wait", "--timeout", "240", timeout=280)
    assert applied.returncode == 1
    ready = kaito.conditions("typo")["InferenceReady"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidRuntimeParameters")
    assert ready["message"].startswith("pod typo-0 exited with code 3: vllm.max-num-seqs:"), ready
    assert "vllm.max-num-seqs" in applied.stderr
    assert kaito("delete", "workspace", "typo", "--timeout", "120", timeout=150).returncode == 0
    wait_for("the pod's processes to go", lambda: not kaito.pod_processes(), timeout=30)
