"""e2e: a tuning Workspace reads its data from a URL (a local HTTP server) and publishes its adapter;
a second Workspace serves the base model with that adapter, and answers differently from the base.

Locally, an output image is a folder under `$KAITO_HOME/images` (the push sidecar is replaced by a
copy) and the adapter's init container copies from that folder, so both ends are the real
Workspace YAML a cluster would take. The URL's host is this machine's name: the admission rules
refuse loopback addresses by design (they guard cluster pods against SSRF).
"""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading

import pytest

from tests.e2e.conftest import workspace_yaml

ADAPTER_IMAGE = "registry.local/adapters/tiny-kaito:0.1"
PROMPT = [{"role": "user", "content": "say the word"}]


@pytest.fixture
def data_server(tmp_path):
    host = socket.gethostname()
    try:
        loopback = socket.gethostbyname(host).startswith("127.")
    except OSError:
        loopback = False
    if not loopback:
        pytest.skip(f"this machine's name {host!r} does not resolve to a loopback address")
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"messages": [*PROMPT, {"role": "assistant", "content": "kaito kaito kaito kaito"}]}] * 8
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{host}:{server.server_address[1]}/train.jsonl"
    server.shutdown()


def _tuning_yaml(model: str, url: str) -> str:
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
  name: tune
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: tune
tuning:
  preset:
    name: {model}
  method: lora
  config: fast-lora
  input:
    urls:
      - {url}
  output:
    image: {ADAPTER_IMAGE}
    imagePushSecret: push-secret
"""


def _answer(kaito, name: str) -> str:
    from openai import OpenAI

    endpoint = kaito("endpoint", name, check=True).stdout.strip()
    client = OpenAI(base_url=endpoint + "/v1", api_key="unused")
    reply = client.chat.completions.create(model=client.models.list().data[0].id, messages=PROMPT,
                                           max_tokens=12, temperature=0)
    return reply.choices[0].message.content


def test_tuned_adapter_changes_the_answers(local_cluster, tiny_model, data_server):
    kaito = local_cluster
    tuning = kaito.write("tune.yaml", _tuning_yaml(tiny_model.repo_id, data_server))
    base = kaito.write("base.yaml", workspace_yaml("base", tiny_model.repo_id))
    adapted = kaito.write("adapted.yaml", workspace_yaml("adapted", tiny_model.repo_id, extra=f"""  adapters:
    - source:
        name: kaito-adapter
        image: {ADAPTER_IMAGE}
      strength: "1.0"
"""))
    result = kaito("apply", "-f", tuning, "-f", base, "--wait", "--timeout", "240", timeout=260)
    assert result.returncode == 0, result.stderr + kaito("logs", "tune").stdout[-3000:]
    tune = kaito.workspace("tune")
    assert {c["type"]: c["status"] for c in tune["status"]["conditions"]}["JobStarted"] == "True"
    image_data = kaito.home / "images" / "registry.local" / "adapters" / "tiny-kaito" / "0.1" / "data"
    assert (image_data / "adapter_config.json").is_file()
    assert (image_data / "adapter_model.safetensors").is_file()
    assert "kaito.runtime.tuning" in kaito("logs", "tune").stdout or (image_data / "fine_tuning_completed.txt").exists()

    result = kaito("apply", "-f", adapted, "--wait", "--timeout", "180", timeout=200)
    assert result.returncode == 0, result.stderr
    assert "Adapter added: kaito-adapter" in kaito("logs", "adapted").stdout
    base_answer, adapted_answer = _answer(kaito, "base"), _answer(kaito, "adapted")
    assert base_answer != adapted_answer, (base_answer, adapted_answer)
    for name in ("adapted", "base", "tune"):
        assert kaito("delete", "workspace", name, timeout=150).returncode == 0
    assert kaito.pod_processes() == {}
