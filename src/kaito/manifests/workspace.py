"""Every object the controller creates for one Workspace, from the Workspace alone.

This is what `kaito render` prints, so users can review or GitOps a Workspace: the NodeClaims for
the whole `resource.count` (as if no node existed yet), the first ControllerRevision, then the
workload objects. Preset and GPU facts are looked up in the catalog here; the controller instead
calls the per-kind builders with what its plan resolved (chosen nodes, current revision).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from kaito.api.errors import FieldError
from kaito.api.hub import Workspace, default_workspace
from kaito.catalog import outside, presets, skus
from kaito.manifests import images, inference, inference_command, nodeclaim, revision, template, tuning


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (scripts) as `|` blocks; no anchors, so each document stands alone."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML of `objects`, keys in builder order, as `kaito render` prints it."""
    return yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, explicit_start=True)


class ManifestError(ValueError):
    """A Workspace that cannot be turned into objects; carries the field at fault."""

    def __init__(self, error: FieldError):
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, kw_only=True)
class RenderSettings:
    images: images.ImageSettings = field(default_factory=images.ImageSettings)
    cloud: nodeclaim.Cloud = "azure"
    provision_nodes: bool = True  # False: BYO nodes, no NodeClaims


def resolve_preset(ws: Workspace) -> presets.Preset | None:
    """The catalog preset a Workspace names (None for a template Workspace)."""
    spec, path = None, ""
    if ws.inference is not None and ws.inference.preset is not None:
        spec, path = ws.inference.preset, "inference.preset.name"
    elif ws.tuning is not None and ws.tuning.preset is not None:
        spec, path = ws.tuning.preset, "tuning.preset.name"
    if spec is None:
        return None
    found = outside.resolve_preset(spec.name)
    if found is None:
        raise ManifestError(FieldError(path, f"unknown preset {spec.name!r} (see `kaito models`)"))
    return found


def build_workspace_objects(ws: Workspace, settings: RenderSettings | None = None, *,
                            engine: str | None = None) -> list[dict[str, Any]]:
    """NodeClaims, ControllerRevision, then the inference or tuning objects of `ws` (a hub Workspace
    of any served version: both forms of one Workspace render the same objects).

    `engine`: the runtime admission chose (`kaito.api.validation.compute_runtime` with the caller's
    facts); None: chosen here from catalog facts.
    """
    settings = settings or RenderSettings()
    ws = default_workspace(ws)  # builders never mutate their input; work on a defaulted copy
    if ws.inference is None and ws.tuning is None:
        raise ManifestError(FieldError("", "a Workspace needs an inference or a tuning section"))
    if ws.resource is None:
        raise ManifestError(FieldError("resource", "resource is required"))
    preset = resolve_preset(ws)
    gpu = skus.lookup_sku(ws.resource.instance_type or "", settings.cloud)
    plan = revision.plan_revision(ws, [])
    objects: list[dict[str, Any]] = []
    if settings.provision_nodes:
        objects += nodeclaim.build_nodeclaims(ws, preset, cloud=settings.cloud)
    if plan.create is not None:
        objects.append(plan.create)
    if ws.tuning is not None and preset is not None:
        objects += tuning.build_tuning_objects(
            tuning.TuningInputs(workspace=ws, preset=preset, gpu=gpu, revision=plan.number, images=settings.images)
        )
    elif preset is not None:
        engine = inference_command.choose_engine(ws, preset, engine, cloud=settings.cloud,
                                                 provision_nodes=settings.provision_nodes)
        objects += inference.build_inference_objects(inference.InferenceInputs(
            workspace=ws, preset=preset, gpu=gpu, revision=plan.number, images=settings.images, engine=engine))
    else:
        objects.append(template.build_template_deployment(ws, revision=plan.number))
    return objects
