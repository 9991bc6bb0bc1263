"""The controller's admission re-check: the webhook's verdict, computed again from what was observed.

A Workspace may be stored without the webhook having seen it (the local cluster has none; a
cluster's webhook may be down, or the catalog changed since), so every reconcile asks
`kaito.api.admission.admit_workspace` again: under the rules of the version the Workspace was
written in (annotation `workspace.kaito.sh/api-version`; v1beta1 when it has none), with the facts
of `kaito.catalog.facts.build_catalog_facts` (the one factory every caller uses), the ConfigMaps
observed and, with BYO nodes, the labels of the nodes found. Its answer feeds the plan: the first
error becomes a condition, the runtime admission judged is the runtime the pods run, a gated model
without a token is the pending reason, and `inference.config`'s context length sizes
`status.targetNodeCount`.

Pure: a function of the hub Workspace, the `Observed` snapshot and the `Settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kaito.api import conversion, hub, labels
from kaito.api.admission import AdmissionOptions, ClusterReads, admit_workspace
from kaito.api.conditions import ConditionReason, ConditionType
from kaito.api.validation import compute_runtime, default_configmap_name
from kaito.api.validation.inference_config import CONFIG_KEY, MAX_MODEL_LEN
from kaito.catalog import facts as catalog_facts
from kaito.catalog import sizing, skus
from kaito.catalog.presets import Preset
from kaito.controller.observe import Observed
from kaito.controller.settings import Settings
from kaito.manifests import tuning_config

DEFAULT_MAX_MODEL_LEN = 2048  # KAITO v0.12's sizing context when inference.config sets none
ACCESS_SECRET_FIELD = "modelAccessSecret"
_CONDITION_OF_SECTION = {
    "resource": ConditionType.RESOURCE_READY,
    "inference": ConditionType.INFERENCE_READY,
    "tuning": ConditionType.JOB_STARTED,
}


@dataclass(frozen=True, kw_only=True)
class Recheck:
    """What admission says about the stored Workspace, in the terms the plan needs."""

    api_version: str  # the version whose rules were applied
    problem: tuple[str, str, str] | None = None  # (condition type, reason, message) of the errors
    access_warning: str | None = None  # a gated model without modelAccessSecret: why pods may fail
    runtime: str | None = None  # the runtime the inference pods run (admission's choice)
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    missing_configmap: bool = False  # a named ConfigMap does not exist (yet): worth looking again


def build_options(ws: hub.Workspace, settings: Settings) -> AdmissionOptions:
    """The operator's settings as admission options (the webhook is built from the same flags)."""
    return AdmissionOptions(url_policy=settings.url_policy, auto_provisioning=settings.provisions_nodes,
                            release_namespace=settings.release_namespace or ws.namespace)


def build_reads(ws: hub.Workspace, observed: Observed, options: AdmissionOptions) -> ClusterReads:
    """What was observed, as admission's `ClusterReads` (complete: the controller read it all).

    The default tuning template is the copy this controller mounts (`manifests.tuning_config`), so
    that copy is what is judged; a user's `tuning.config` is the ConfigMap read from the cluster.
    """
    configmaps: dict[tuple[str, str], Mapping[str, str] | None] = dict(observed.configmaps)
    if ws.tuning is not None and not ws.tuning.config:
        default = default_configmap_name(ws.tuning.method)
        if default is not None:
            method = (ws.tuning.method or "lora").lower()
            data = {tuning_config.CONFIG_KEY: tuning_config.build_default_training_config(method)}
            configmaps[(options.release_namespace or ws.namespace, default)] = data
    nodes = None
    if not options.auto_provisioning and observed.nodes:
        # BYO: the GPU labels of the nodes found. None found is "waiting for nodes" (ResourceReady),
        # not an admission error: the webhook checked there were some when it admitted the Workspace.
        nodes = [((n.get("metadata") or {}).get("labels") or {}) for n in observed.nodes]
    return ClusterReads(configmaps=configmaps, complete=True, nodes=nodes)


def read_max_model_len(ws: hub.Workspace, observed: Observed) -> int:
    """`vllm.max-model-len` of the `inference.config` ConfigMap, else KAITO's sizing default 2048."""
    name = ws.inference.config if ws.inference is not None else None
    data = observed.configmaps.get((ws.namespace, name)) if name else None
    try:
        doc = yaml.safe_load((data or {}).get(CONFIG_KEY) or "")
    except yaml.YAMLError:
        return DEFAULT_MAX_MODEL_LEN
    flags = doc.get("vllm") if isinstance(doc, Mapping) else None
    value = flags.get(MAX_MODEL_LEN) if isinstance(flags, Mapping) else None
    text = str(value).strip() if value is not None and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MAX_MODEL_LEN


def recheck_workspace(ws: hub.Workspace, raw: Mapping[str, Any], observed: Observed, settings: Settings) -> Recheck:
    """Admission's verdict on the stored Workspace `raw` (parsed into `ws`)."""
    api_version = conversion.recorded_version(raw)
    options = build_options(ws, settings)
    reads = build_reads(ws, observed, options)
    facts = catalog_facts.build_catalog_facts(settings.cloud)
    verdict = admit_workspace(ws, api_version=api_version, facts=facts, options=options, reads=reads)
    missing = any(data is None for data in observed.configmaps.values())
    access = next((w.message for w in verdict.warnings if w.path.endswith(ACCESS_SECRET_FIELD)), None)
    runtime = None
    if ws.inference is not None and ws.inference.preset is not None:
        runtime = compute_runtime(ws, facts, options, reads.nodes)
    common = {"api_version": api_version, "max_model_len": read_max_model_len(ws, observed),
              "missing_configmap": missing}
    if not verdict.errors:
        return Recheck(access_warning=access, runtime=runtime, **common)
    first = verdict.errors[0].path.split(".", 1)[0].split("[", 1)[0]
    ctype = _CONDITION_OF_SECTION.get(first, ConditionType.WORKSPACE_SUCCEEDED)
    message = "; ".join(str(e) for e in verdict.errors)
    return Recheck(problem=(ctype, ConditionReason.VALIDATION_FAILED, message), runtime=runtime, **common)


def compute_target_node_count(ws: hub.Workspace, preset: Preset | None, runtime: str | None, max_model_len: int,
                              settings: Settings) -> int:
    """`status.targetNodeCount`: KAITO v0.12's node estimator for the vLLM runtime (weights, runtime
    reserve and the KV cache of `max_model_len` tokens on the SKU's GPUs); `resource.count` for the
    runtimes that serve from the nodes asked for (transformers, template and tuning Workspaces), as
    v0.12 uses `count` for non-vLLM runtimes. An estimate that fails keeps the count: the admission
    rules, not this number, refuse what cannot fit."""
    requested = (ws.resource.count if ws.resource is not None and ws.resource.count else None) or 1
    if runtime != labels.RUNTIME_VLLM or preset is None or ws.tuning is not None:
        return requested
    instance_type = ws.resource.instance_type if ws.resource is not None else None
    gpu = skus.lookup_sku(instance_type, settings.cloud) if instance_type else None
    estimate = sizing.estimate_node_count(preset, gpu, max_model_len, requested)
    return estimate.nodes if estimate.ok and estimate.nodes else requested
