"""Workspaces the golden tests render, one per preset kind and option (inputs of tests/golden/*.yaml).

Written as KAITO v1alpha1 YAML (no `apiVersion` line: `workspace(case)` adds one) and parsed into the
hub; `workspace(case, version)` reads the same text as the other served version, converted
losslessly, so a test can check both forms render the same objects.
"""

from __future__ import annotations

import yaml

from kaito.api import conversion
from kaito.api.hub import Workspace

_META = "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\n"
V1ALPHA1, V1BETA1 = "kaito.sh/v1alpha1", "kaito.sh/v1beta1"

CASES: dict[str, str] = {
    # A single-node public preset: Service + Deployment running our runtime.
    "inference-falcon-7b": """
metadata: {name: workspace-falcon-7b, namespace: default, uid: 0b5f6c2e-1111-4a8e-9d3c-000000000001}
resource:
  instanceType: Standard_NC12s_v3
  labelSelector: {matchLabels: {apps: falcon-7b}}
inference:
  preset: {name: falcon-7b}
""",
    # A multi-node private preset: StatefulSet + headless Service, KAITO's torchrun, 2 NodeClaims.
    "inference-multinode-llama-2-13b": """
metadata: {name: workspace-llama-2-13b, namespace: team-a}
resource:
  count: 2
  instanceType: Standard_NC12s_v3
  labelSelector: {matchLabels: {apps: llama-2-13b}}
inference:
  preset:
    name: llama-2-13b
    accessMode: private
    presetOptions: {image: "myregistry.azurecr.io/kaito/llama-2-13b:0.0.3", imagePullSecrets: [acr-secret]}
""",
    # A single-node private preset: the user's image and pull secrets.
    "inference-private-llama-2-7b-chat": """
metadata: {name: workspace-llama-2-7b-chat, namespace: default}
resource:
  instanceType: Standard_NC12s_v3
  labelSelector: {matchLabels: {apps: llama-2-7b-chat}}
inference:
  preset:
    name: llama-2-7b-chat
    accessMode: private
    presetOptions: {image: "myregistry.azurecr.io/kaito/llama-2-7b-chat:0.0.3", imagePullSecrets: [acr-secret]}
""",
    # Adapters: init containers, adapters volume, strength env (one strength left to its default).
    "inference-adapters-phi-3": """
metadata: {name: workspace-phi-3-adapters, namespace: default}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {apps: phi-3}}
inference:
  preset: {name: phi-3-mini-128k-instruct}
  adapters:
  - source: {name: phi-3-adapter, image: "myregistry.azurecr.io/adapters/phi-3-adapter:0.0.1", imagePullSecrets: [adapter-secret]}
    strength: "0.2"
  - source: {name: phi-3-second, image: "myregistry.azurecr.io/adapters/phi-3-second:0.0.1"}
""",
    # Adapters from a volume (KAITO v0.12) beside one from an image: the volume is mounted read-only
    # at /mnt/adapter/<name> (no init container); the image adapter is still copied in.
    "inference-volume-adapters-phi-3": """
metadata: {name: workspace-phi-3-volume-adapters, namespace: default}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {apps: phi-3}}
inference:
  preset: {name: phi-3-mini-128k-instruct}
  adapters:
  - source:
      name: Tuned-Dolly
      volumeSource: {persistentVolumeClaim: {claimName: adapters-pvc, readOnly: true}}
    strength: "0.5"
  - source: {name: phi-3-adapter, image: "myregistry.azurecr.io/adapters/phi-3-adapter:0.0.1"}
""",
    # `kaito.sh/enablelb: "True"` makes the Service a LoadBalancer; vLLM engine picked by annotation.
    "inference-enablelb-vllm": """
metadata:
  name: workspace-mistral
  namespace: default
  annotations: {kaito.sh/enablelb: "True", kaito.sh/runtime: vllm}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {apps: mistral}}
inference:
  preset: {name: mistral-7b-instruct}
""",
    # A template Workspace: the user's pod template, our placement, no Service.
    "inference-template": """
metadata: {name: workspace-custom, namespace: default}
resource:
  count: 2
  instanceType: Standard_NC6s_v3
  labelSelector: {matchLabels: {apps: custom}}
inference:
  template:
    metadata: {labels: {app: custom}}
    spec:
      affinity: {podAntiAffinity: {}}
      tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]
      containers:
      - name: server
        image: ghcr.io/example/server:1.0
        ports: [{containerPort: 8080}]
""",
    # Tuning: data from URLs, adapter pushed to an image; default qlora ConfigMap.
    "tuning-urls-to-image": """
metadata: {name: workspace-tuning-phi-3, namespace: default}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {app: tuning-phi-3}}
tuning:
  preset: {name: phi-3-mini-128k-instruct}
  method: qlora
  input:
    urls:
    - "https://huggingface.co/datasets/philschmid/dolly-15k-oai-style/resolve/main/data/train-00000-of-00001-54e3756291ca09c6.parquet?download=true"
  output: {image: "myregistry.azurecr.io/adapters/phi-3-dolly:0.0.1", imagePushSecret: push-secret}
""",
    # Tuning: data from an image, adapter to a volume; the user's own ConfigMap.
    "tuning-image-to-volume": """
metadata: {name: workspace-tuning-falcon, namespace: ml}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {app: tuning-falcon}}
tuning:
  preset: {name: falcon-7b}
  method: lora
  config: my-lora-params
  input: {name: dataset, image: "myregistry.azurecr.io/data/dolly:1", imagePullSecrets: [data-secret]}
  output:
    volumeSource: {persistentVolumeClaim: {claimName: adapters-pvc}}
""",
    # Tuning: data from a volume, adapter pushed to an image (no push secret: anonymous registry).
    "tuning-volume-to-image": """
metadata: {name: workspace-tuning-mistral, namespace: default}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {app: tuning-mistral}}
tuning:
  preset: {name: mistral-7b}
  input:
    volumeSource: {persistentVolumeClaim: {claimName: dataset-pvc}}
  output: {image: "registry.local:5000/adapters/mistral:1"}
""",
}

# Cases rendered for AWS (EC2NodeClass, GPU-count requirement) rather than Azure.
AWS_CASES: dict[str, str] = {
    "nodeclaims-aws-count-3": """
metadata: {name: workspace-aws, namespace: default}
resource:
  count: 3
  instanceType: g5.12xlarge
  labelSelector: {matchLabels: {apps: aws-phi, kaito.sh/workspace: reserved-key-dropped}}
inference:
  preset: {name: phi-3-mini-4k-instruct}
""",
}


# Cases written in v1beta1 (fields v1alpha1 has no schema for: modelAccessSecret); `wire(case)` reads
# them as v1alpha1 through the lossless conversion (the secret rides in the hub-fields annotation).
V1BETA1_CASES: dict[str, str] = {
    # inference.config mounted at /mnt/config and read by --kaito-config-file; the gated model's token
    # from modelAccessSecret as HF_TOKEN.
    "inference-v1beta1-config-and-token": """
metadata: {name: workspace-llama-3-1, namespace: default}
resource:
  instanceType: Standard_NC24ads_A100_v4
  labelSelector: {matchLabels: {apps: llama-3-1}}
inference:
  preset:
    name: llama-3.1-8b-instruct
    presetOptions: {modelAccessSecret: hf-token}
  config: llama-runtime-params
""",
}


def wire(case: str, version: str = V1ALPHA1) -> dict:
    """The case as a wire dict of `version`, converted losslessly from the version it is written in."""
    if case in V1BETA1_CASES:
        data = yaml.safe_load(_META.replace(V1ALPHA1, V1BETA1) + V1BETA1_CASES[case])
    else:
        data = yaml.safe_load(_META + (CASES.get(case) or AWS_CASES[case]))
    return data if data["apiVersion"] == version else conversion.convert_object(data, version)


def workspace(case: str, version: str = V1ALPHA1) -> Workspace:
    return conversion.parse_workspace(wire(case, version))[0]


def make_workspace(text: str) -> Workspace:
    return conversion.parse_workspace(yaml.safe_load(_META + text))[0]
