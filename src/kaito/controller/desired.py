"""Desired objects: the manifests builders fed with what this reconcile resolved (pure).

`kaito render` builds a Workspace's objects from the Workspace alone; the controller knows more —
the nodes it chose (BYO nodes report their GPUs by label), the revision in force, the image
settings it runs with — and passes it to the same builders, so both paths render identical objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kaito.api.hub import Workspace, default_workspace
from kaito.catalog import skus
from kaito.catalog.presets import Preset
from kaito.cluster.protocol import Object
from kaito.controller.settings import Settings
from kaito.manifests import images, inference, nodeclaim, template, tuning


def image_settings(settings: Settings) -> images.ImageSettings:
    return images.ImageSettings(registry=settings.image_registry, tag=settings.image_tag)


def compute_gpu_facts(
    ws: Workspace, nodes: Iterable[Mapping[str, Any]], selected: Sequence[str], settings: Settings
) -> skus.GPUConfig | None:
    """GPUs per node: the SKU table for the instance type, else the first chosen node's GFD labels."""
    instance_type = ws.resource.instance_type if ws.resource is not None else None
    if instance_type:
        found = skus.lookup_sku(instance_type, settings.cloud)
        if found is not None:
            return found
    by_name = {(n.get("metadata") or {}).get("name"): n for n in nodes}
    for name in selected:
        node_labels = ((by_name.get(name) or {}).get("metadata") or {}).get("labels") or {}
        found = skus.gpu_config_from_node_labels(node_labels)
        if found is not None:
            return found
    return None


def build_missing_nodeclaims(
    ws: Workspace, preset: Preset | None, names: Sequence[str], settings: Settings
) -> list[Object]:
    """The NodeClaims named by node selection (deterministic names, so never a duplicate)."""
    if not names or ws.resource is None:
        return []
    ws = default_workspace(ws)
    disk = nodeclaim.compute_disk_request(ws, preset)
    return [
        nodeclaim.build_nodeclaim(
            ws,
            name=name,
            instance_type=ws.resource.instance_type or "",  # type: ignore[union-attr]
            disk=disk,
            cloud=settings.cloud,
        )
        for name in names
    ]


def build_owned_objects(
    ws: Workspace, preset: Preset | None, gpu: skus.GPUConfig | None, revision: int, settings: Settings,
    *, engine: str | None = None,
) -> list[Object]:
    """Services, ConfigMap and workload or Job for the current revision, in apply order.

    `engine`: the runtime admission chose for this Workspace (the plan's re-check), so the pods run
    what was judged."""
    ws = default_workspace(ws)
    imgs = image_settings(settings)
    if ws.tuning is not None and preset is not None:
        return tuning.build_tuning_objects(
            tuning.TuningInputs(workspace=ws, preset=preset, gpu=gpu, revision=revision, images=imgs)
        )
    if preset is not None:
        return inference.build_inference_objects(
            inference.InferenceInputs(workspace=ws, preset=preset, gpu=gpu, revision=revision, images=imgs,
                                      engine=engine)
        )
    return [template.build_template_deployment(ws, revision=revision)]
