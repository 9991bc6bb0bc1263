"""e2e: a v1beta1 Workspace with `inference.config` and `modelAccessSecret` beside a v1alpha1 one.

`kaito up`; a v1alpha1 Workspace is applied first and becomes Ready; then a v1beta1 Workspace whose
runtime parameters come from a ConfigMap (`inference.config`) and whose Hugging Face token comes
from a Secret (`presetOptions.modelAccessSecret`) is applied with them and becomes Ready. Its model
server sees the token (`HF_TOKEN` in its environment) and the parameters (the ConfigMap mounted at
/mnt/config and read through `--kaito-config-file`: its `max-model-len` is the context the server
reports). Both are listed side by side, each shown in the version it was applied with, and both
answer chat. The runtime is the local cluster's choice: KAITO v0.12 would run the v1beta1 one on
vLLM, but this suite's local cluster has no vLLM interpreter (`kaito up` without `--vllm-python`),
so admission (and with it the pod) picks transformers for it and says so plainly — in the pod's
`--engine`, `kaito get -o wide`'s ENGINE column, `kaito describe` and an event. The vLLM lane runs
a v1beta1 Workspace on vLLM (`tests/vllm_lane/test_local_cluster.py`).
"""

from __future__ import annotations

import asyncio

import httpx
import yaml

from tests.e2e.conftest import workspace_yaml

TOKEN = "hf_e2e_not_a_real_token"
MAX_MODEL_LEN = 96  # below the tiny model's 512: only the config file can have set it


def beta_manifest(model: str) -> str:
    return f"""apiVersion: v1
kind: Secret
metadata:
  name: hf-token
stringData:
  HF_TOKEN: {TOKEN}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: tiny-params
data:
  inference_config.yaml: |
    vllm:
      max-model-len: {MAX_MODEL_LEN}
      cpu-offload-gb: 0
---
apiVersion: kaito.sh/v1beta1
kind: Workspace
metadata:
  name: beta
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: beta
inference:
  preset:
    name: {model}
    presetOptions:
      modelAccessSecret: hf-token
  config: tiny-params
"""


def _pod(kaito, workspace: str) -> dict:
    from kaito.cluster import protocol
    from kaito.cluster.local import LocalCluster

    async def read() -> dict:
        cluster = LocalCluster(kaito.home / "store.db")
        try:
            (pod,) = (await cluster.list(protocol.POD, "default", {"kaito.sh/workspace": workspace})).items
            return pod
        finally:
            await cluster.close()

    return asyncio.run(read())


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def test_v1beta1_with_config_and_token_beside_v1alpha1(local_cluster, tiny_model):
    kaito = local_cluster
    alpha = kaito.write("alpha.yaml", workspace_yaml("alpha", tiny_model.repo_id))
    applied = kaito("apply", "-f", alpha, "--wait", "--timeout", "180", timeout=200)
    assert applied.returncode == 0, applied.stderr
    beta = kaito.write("beta.yaml", beta_manifest(tiny_model.repo_id))
    assert kaito("validate", "-f", beta, check=True).returncode == 0
    applied = kaito("apply", "-f", beta, "--wait", "--timeout", "180", timeout=200)
    assert applied.returncode == 0, applied.stderr
    assert "workspace.kaito.sh/beta created" in applied.stdout
    assert "configmap.core/tiny-params created" in applied.stdout and "secret.core/hf-token created" in applied.stdout

    # Listed side by side; each shown in the version it was applied with (or the one asked for).
    table = kaito("get", "workspaces", check=True).stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.split()[:1] in (["alpha"], ["beta"])}
    assert set(rows) == {"alpha", "beta"} and all(r[2:4] == ["True", "True"] for r in rows.values()), table
    shown = {name: yaml.safe_load(kaito("get", "workspace", name, "-o", "yaml", check=True).stdout)
             for name in ("alpha", "beta")}
    assert shown["alpha"]["apiVersion"] == "kaito.sh/v1alpha1" and shown["beta"]["apiVersion"] == "kaito.sh/v1beta1"
    assert shown["beta"]["status"]["state"] == "Ready" and shown["beta"]["status"]["targetNodeCount"] == 1
    as_alpha = yaml.safe_load(kaito("get", "workspace", "beta", "-o", "yaml", "--api-version", "v1alpha1",
                                    check=True).stdout)
    assert as_alpha["apiVersion"] == "kaito.sh/v1alpha1" and "hf-token" in str(as_alpha["metadata"]["annotations"])

    # The pod: the token from the Secret, the parameters from the mounted ConfigMap.
    pod = _pod(kaito, "beta")
    container = pod["spec"]["containers"][0]
    assert "--engine=transformers" in container["args"]
    assert "--kaito-config-file=/mnt/config/inference_config.yaml" in container["args"]
    processes = kaito.pod_processes()  # pid -> pod: each pod's server and its engine process
    assert len(set(processes.values())) == 2, processes
    with_token = {pod for pid, pod in processes.items() if _environ(pid).get("HF_TOKEN") == TOKEN}
    assert len(with_token) == 1, "only beta's pod has the token"
    endpoint = kaito("endpoint", "beta", check=True).stdout.strip()
    models = httpx.get(endpoint + "/v1/models", timeout=30).json()["data"]
    assert models[0]["max_model_len"] == MAX_MODEL_LEN
    other = httpx.get(kaito("endpoint", "alpha", check=True).stdout.strip() + "/v1/models", timeout=30).json()
    assert other["data"][0]["max_model_len"] != MAX_MODEL_LEN

    # Both answer chat.
    for name in ("alpha", "beta"):
        chat = kaito("chat", name, "hello", "--max-tokens", "8", check=True)
        assert chat.stdout.strip(), name
    described = kaito("describe", "workspace", "beta", check=True).stdout
    assert "kaito.sh/v1beta1 (as written" in described and "State:        Ready" in described
    # Transformers instead of KAITO's vLLM, said plainly; the v1alpha1 one runs its own default.
    assert "Engine:       transformers (vLLM is not installed for this local cluster" in described
    assert "TransformersInsteadOfVLLM" in described and "--vllm-python" in described
    wide = kaito("get", "workspaces", "-o", "wide", check=True).stdout
    engines = {line.split()[0]: line for line in wide.splitlines()[1:]}
    assert "transformers (no vLLM here)" in engines["beta"] and "no vLLM" not in engines["alpha"]
    assert "ENGINE" in wide.splitlines()[0]
    # `kaito down` and its checks (nothing left behind) run in the fixture's teardown.
