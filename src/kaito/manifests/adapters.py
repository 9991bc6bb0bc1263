"""LoRA adapters for inference: init containers that copy each adapter image's `/data` into a
shared volume, and the `<adapter-name>=<strength>` environment the model server reads (§3.2).

The adapter image contract is KAITO's (any image whose `/data` holds `adapter_config.json` and
`adapter_model.safetensors`), which is also what our tuning Job's image output produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kaito.api.v1alpha1 import DEFAULT_ADAPTER_STRENGTH, AdapterSpec

ADAPTER_VOLUME = "adapter-volume"
ADAPTERS_DIR = "/mnt/adapter"


def _named(adapters: Sequence[AdapterSpec] | None) -> list[AdapterSpec]:
    # Validation rejects adapters without a source name or image; skipping them here keeps a builder
    # total (it never raises on an object the webhook would have refused).
    return [a for a in adapters or () if a.source is not None and a.source.name and a.source.image]


def build_adapter_volume_mount() -> dict[str, str]:
    return {"name": ADAPTER_VOLUME, "mountPath": ADAPTERS_DIR}


def build_adapter_volume() -> dict[str, Any]:
    return {"name": ADAPTER_VOLUME, "emptyDir": {}}


def build_adapter_init_containers(adapters: Sequence[AdapterSpec] | None) -> list[dict[str, Any]]:
    """One init container per adapter, named after `source.name`, pulling the image each time."""
    containers = []
    for adapter in _named(adapters):
        name = adapter.source.name  # type: ignore[union-attr]
        target = f"{ADAPTERS_DIR}/{name}"
        containers.append(
            {
                "name": name,
                "image": adapter.source.image,  # type: ignore[union-attr]
                "imagePullPolicy": "Always",
                "command": ["/bin/sh", "-c", f"mkdir -p {target} && cp -r /data/* {target}"],
                "volumeMounts": [build_adapter_volume_mount()],
            }
        )
    return containers


def build_adapter_env(adapters: Sequence[AdapterSpec] | None) -> list[dict[str, str]]:
    """`<name>=<strength>`; a missing strength means "1.0" (KAITO's controller would crash on it)."""
    return [
        {"name": a.source.name, "value": a.strength or DEFAULT_ADAPTER_STRENGTH}  # type: ignore[union-attr]
        for a in _named(adapters)
    ]


def build_adapter_pull_secrets(adapters: Sequence[AdapterSpec] | None) -> list[str]:
    secrets: list[str] = []
    for a in _named(adapters):
        secrets.extend(a.source.image_pull_secrets or ())  # type: ignore[union-attr]
    return secrets


def has_adapters(adapters: Sequence[AdapterSpec] | None) -> bool:
    return bool(_named(adapters))
