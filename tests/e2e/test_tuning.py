"""e2e: tuning Workspaces read their data from a URL served on 127.0.0.1 and write an adapter to a
volume (and, the other one, to an image); a second Workspace serves the base model with those
adapters, and answers differently from the base model.

The local cluster is this machine, so `kaito apply` and the control plane of `kaito up` admit a
URL on 127.0.0.1 (a shared cluster's webhook refuses it: SSRF guard). A `hostPath` volume is a
folder under `$KAITO_HOME/volumes/hostpath`, the same folder for the Job that writes the adapter and
the model server that mounts it. An output image is a folder under `$KAITO_HOME/images` (the push
sidecar is replaced by a copy) and the adapter's init container copies from it. Both ends are the
real Workspace YAML a cluster would take.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest

from tests.e2e.conftest import workspace_yaml

ADAPTER_IMAGE = "registry.local/adapters/tiny-kaito:0.1"
ADAPTER_PATH = "/adapters/tiny-kaito"  # hostPath of the volume output, and of the volume adapter
PROMPT = [{"role": "user", "content": "say the word"}]


@pytest.fixture
def data_server(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"messages": [*PROMPT, {"role": "assistant", "content": "kaito kaito kaito kaito"}]}] * 8
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/train.jsonl"
    server.shutdown()


def _tuning_yaml(name: str, model: str, url: str, output: str) -> str:
    """The push Secret, a fast LoRA config and the tuning Workspace (applying the first two again is
    a no-op, so each tuning file carries them)."""
    return f"""apiVersion: v1
kind: Secret
metadata:
  name: push-secret
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{{"auths": {{}}}}'
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: fast-lora
data:
  training_config.yaml: |
    training_config:
      ModelConfig:
        torch_dtype: "float32"
      QuantizationConfig:
        load_in_4bit: false
      LoraConfig:
        r: 8
        lora_alpha: 16
        lora_dropout: 0.0
      TrainingArguments:
        output_dir: "/mnt/results"
        num_train_epochs: 3
        learning_rate: 0.01
        per_device_train_batch_size: 1
        save_strategy: "no"
      DataCollator:
        mlm: true
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
  config: fast-lora
  input:
    urls:
      - {url}
  output:
{output}"""

VOLUME_OUTPUT = f"""    volumeSource:
      hostPath:
        path: {ADAPTER_PATH}
"""
IMAGE_OUTPUT = f"""    image: {ADAPTER_IMAGE}
    imagePushSecret: push-secret
"""


def _answer(kaito, name: str, model: str | None = None) -> str:
    from openai import OpenAI

    endpoint = kaito("endpoint", name, check=True).stdout.strip()
    client = OpenAI(base_url=endpoint + "/v1", api_key="unused")
    reply = client.chat.completions.create(model=model or client.models.list().data[0].id, messages=PROMPT,
                                           max_tokens=12, temperature=0)
    return reply.choices[0].message.content


def test_tuned_adapter_changes_the_answers(local_cluster, tiny_model, data_server):
    kaito = local_cluster
    assert data_server.startswith("http://127.0.0.1:")
    tune = kaito.write("tune.yaml", _tuning_yaml("tune", tiny_model.repo_id, data_server, VOLUME_OUTPUT))
    tune_image = kaito.write("tune-image.yaml", _tuning_yaml("tune-image", tiny_model.repo_id, data_server,
                                                             IMAGE_OUTPUT))
    base = kaito.write("base.yaml", workspace_yaml("base", tiny_model.repo_id))
    adapted = kaito.write("adapted.yaml", workspace_yaml("adapted", tiny_model.repo_id, extra=f"""  adapters:
    - source:
        name: volume-adapter
        volumeSource:
          hostPath:
            path: {ADAPTER_PATH}
      strength: "1.0"
    - source:
        name: image-adapter
        image: {ADAPTER_IMAGE}
      strength: "1.0"
"""))
    result = kaito("apply", "-f", tune, "-f", tune_image, "-f", base, "--wait", "--timeout", "300", timeout=320)
    assert result.returncode == 0, result.stderr + kaito("logs", "tune").stdout[-3000:]
    for name in ("tune", "tune-image"):
        conditions = {c["type"]: c["status"] for c in kaito.workspace(name)["status"]["conditions"]}
        assert conditions["JobStarted"] == conditions["WorkspaceSucceeded"] == "True", (name, conditions)
    volume = kaito.home / "volumes" / "hostpath" / ADAPTER_PATH.strip("/")
    image_data = kaito.home / "images" / "registry.local" / "adapters" / "tiny-kaito" / "0.1" / "data"
    for folder in (volume, image_data):
        assert (folder / "adapter_config.json").is_file(), folder
        assert (folder / "adapter_model.safetensors").is_file(), folder
        assert (folder / "fine_tuning_completed.txt").is_file(), folder

    result = kaito("apply", "-f", adapted, "--wait", "--timeout", "180", timeout=200)
    assert result.returncode == 0, result.stderr
    assert "Adapter added: image-adapter, volume-adapter" in kaito("logs", "adapted").stdout
    base_answer = _answer(kaito, "base")
    volume_answer = _answer(kaito, "adapted", model="volume-adapter")  # that adapter alone
    assert base_answer != volume_answer, (base_answer, volume_answer)
    assert base_answer != _answer(kaito, "adapted")  # KAITO's default: the weighted mix of both
    for name in ("adapted", "base", "tune", "tune-image"):
        assert kaito("delete", "workspace", name, timeout=150).returncode == 0
    assert kaito.pod_processes() == {}
    assert (volume / "adapter_config.json").is_file()  # the volume outlives the Workspaces, as a PV would
