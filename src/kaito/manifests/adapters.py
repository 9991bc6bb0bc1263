"""LoRA adapters for inference: where each adapter's files come from, and the
`<adapter-name>=<strength>` environment the model server reads (§3.2).

Every adapter ends up as `/mnt/adapter/<name>/` in the model server's container, which loads each
subdirectory there. An image adapter is copied in by an init container from the image's `/data`
(KAITO's contract: `adapter_config.json` and `adapter_model.safetensors` there, which is also what
our tuning Job's image output produces). A volume adapter (KAITO v0.12) is the user's volume,
mounted read-only at that directory: no copy, and a tuning Job's volume output is served as it is.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

from kaito.api.hub import DEFAULT_ADAPTER_STRENGTH, AdapterSpec

ADAPTER_VOLUME = "adapter-volume"
ADAPTERS_DIR = "/mnt/adapter"
_VOLUME_PREFIX = "adapter-src-"  # never `adapter-volume`, whatever the adapter's name
_VOLUME_NAME_MAX = 63  # a pod volume name is a DNS-1123 label


def _named(adapters: Sequence[AdapterSpec] | None) -> list[AdapterSpec]:
    # Validation rejects adapters without a source name, or with neither image nor volume; skipping
    # them here keeps a builder total (it never raises on an object the webhook would have refused).
    return [
        a
        for a in adapters or ()
        if a.source is not None and a.source.name and (a.source.image or a.source.volume_source is not None)
    ]


def _from_image(adapters: Sequence[AdapterSpec] | None) -> list[AdapterSpec]:
    return [a for a in _named(adapters) if a.source.image]  # type: ignore[union-attr]


def _from_volume(adapters: Sequence[AdapterSpec] | None) -> list[AdapterSpec]:
    return [a for a in _named(adapters) if not a.source.image]  # type: ignore[union-attr]


def build_volume_name(adapter_name: str) -> str:
    """The pod volume of a volume adapter: `adapter-src-<name>`, or a hash of the name.

    Adapter names are case-sensitive DNS-subdomain-like names of up to 253 characters; volume names
    are lowercase labels of up to 63. A name that is not already one of those is hashed, so `A` and
    `a` (two different adapters) never share a volume.
    """
    name = _VOLUME_PREFIX + adapter_name
    if name == name.lower() and len(name) <= _VOLUME_NAME_MAX:
        return name
    return _VOLUME_PREFIX + hashlib.sha256(adapter_name.encode()).hexdigest()[:16]


def build_adapter_volume_mount() -> dict[str, str]:
    return {"name": ADAPTER_VOLUME, "mountPath": ADAPTERS_DIR}


def build_adapter_volume() -> dict[str, Any]:
    return {"name": ADAPTER_VOLUME, "emptyDir": {}}


def build_adapter_volume_mounts(adapters: Sequence[AdapterSpec] | None) -> list[dict[str, Any]]:
    """The model server's mounts: the adapters directory, then each volume adapter inside it."""
    if not _named(adapters):
        return []
    mounts: list[dict[str, Any]] = [build_adapter_volume_mount()]
    for adapter in _from_volume(adapters):
        name = adapter.source.name  # type: ignore[union-attr]
        mounts.append(
            {"name": build_volume_name(name), "mountPath": f"{ADAPTERS_DIR}/{name}", "readOnly": True}
        )
    return mounts


def build_adapter_volumes(adapters: Sequence[AdapterSpec] | None) -> list[dict[str, Any]]:
    """The adapters directory (an emptyDir the init containers fill) and each adapter's own volume."""
    if not _named(adapters):
        return []
    volumes = [build_adapter_volume()]
    for adapter in _from_volume(adapters):
        source = adapter.source
        volumes.append({"name": build_volume_name(source.name), **copy.deepcopy(source.volume_source)})  # type: ignore[union-attr,arg-type]
    return volumes


def build_adapter_init_containers(adapters: Sequence[AdapterSpec] | None) -> list[dict[str, Any]]:
    """One init container per image adapter, named after `source.name`, pulling the image each time."""
    containers = []
    for adapter in _from_image(adapters):
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
    for a in _from_image(adapters):
        secrets.extend(a.source.image_pull_secrets or ())  # type: ignore[union-attr]
    return secrets


def has_adapters(adapters: Sequence[AdapterSpec] | None) -> bool:
    return bool(_named(adapters))
