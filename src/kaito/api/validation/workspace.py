"""Every rule for a hub Workspace on CREATE (no old object) or UPDATE, for one served version's rules.

`validate_hub` is what `kaito.api.admission` runs after parsing and defaulting; it returns every
problem found, with its field path, and never raises. `compute_runtime` is the runtime choice the
rules judge, which the pod builders use too (one answer for admission and the pods).
"""

from __future__ import annotations

from kaito.api import hub
from kaito.api.errors import FieldError
from kaito.api.facts import ModelFacts
from kaito.api.validation import annotation_rules, configmaps, create, names, preset_rules, update
from kaito.api.validation.context import AdmissionOptions, ClusterReads, RuleSet


def validate_metadata(ws: hub.Workspace) -> list[FieldError]:
    name = ws.metadata.name
    if not name:
        if ws.metadata.generate_name:
            return []
        return [FieldError("metadata.name", "name is required")]
    if not names.is_dns1123_label(name):
        return [
            FieldError(
                "metadata.name",
                f"name {name[:80]!r} must be a DNS-1123 label: lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit, at most {names.DNS1123_LABEL_MAX} characters",
            )
        ]
    return []


def compute_runtime(ws: hub.Workspace, facts: ModelFacts, options: AdmissionOptions | None = None,
                    nodes=None) -> str:
    """The runtime the Workspace's pods will run (see `preset_rules.compute_runtime`)."""
    options = options or AdmissionOptions()
    preset = ws.inference.preset if ws.inference is not None else None
    found = None
    if preset is not None and preset.name:
        found, _ = create.lookup_preset(facts, preset.name, "inference.preset.name")
    node_gib = create.compute_node_gpus(ws.resource, facts, options, nodes)
    return preset_rules.compute_runtime(ws.annotations, found, node_gib)


def validate_create(
    ws: hub.Workspace,
    facts: ModelFacts,
    *,
    rules: RuleSet = RuleSet.V1ALPHA1,
    options: AdmissionOptions | None = None,
    reads: ClusterReads | None = None,
) -> list[FieldError]:
    options = options or AdmissionOptions()
    policy = options.url_policy
    errs: list[FieldError] = []
    if ws.inference is None and ws.tuning is None:
        errs.append(FieldError("inference", "either inference or tuning must be specified, not neither"))
    if ws.inference is not None and ws.tuning is not None:
        errs.append(FieldError("tuning", "either inference or tuning must be specified, but not both"))
    errs += annotation_rules.validate_annotations(ws.annotations, options)
    nodes = reads.nodes if reads is not None else None
    runtime = compute_runtime(ws, facts, options, nodes)
    if ws.resource is None:
        errs.append(FieldError("resource.labelSelector", "resource with a labelSelector is required"))
    else:
        errs += create.validate_resource_create(
            ws.resource, inference=ws.inference, tuning=ws.tuning, facts=facts, rules=rules, options=options,
            annotations=ws.annotations, nodes=nodes, runtime=runtime,
        )
    if ws.inference is not None:
        errs += create.validate_inference_create(ws.inference, facts, rules, ws.annotations, runtime)
    if ws.tuning is not None:
        errs += create.validate_tuning_create(ws.tuning, facts, policy, rules)
    return errs


def validate_hub(
    ws: hub.Workspace,
    old: hub.Workspace | None = None,
    *,
    facts: ModelFacts,
    rules: RuleSet = RuleSet.V1ALPHA1,
    options: AdmissionOptions | None = None,
    reads: ClusterReads | None = None,
) -> list[FieldError]:
    """All problems with `ws`: CREATE rules when `old` is None, else UPDATE rules against `old`.

    ConfigMap contents are judged only when `reads` is given (what the caller read); without it the
    caller checks them itself (the phase-1 callers do).
    """
    options = options or AdmissionOptions()
    ws = hub.default_workspace(ws)
    old = hub.default_workspace(old) if old is not None else None
    errs = validate_metadata(ws)
    if old is None:
        errs += validate_create(ws, facts, rules=rules, options=options, reads=reads)
    else:
        errs += update.validate_update(ws, old, options.url_policy, rules, options)
    if reads is not None:
        preset = ws.inference.preset if ws.inference is not None else None
        found = None
        if preset is not None and preset.name:
            found, _ = create.lookup_preset(facts, preset.name, "inference.preset.name")
        errs += configmaps.validate_configmaps(ws, old, options=options, reads=reads, found=found)
    return _dedupe(errs)


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    seen: set[FieldError] = set()
    out = []
    for err in errs:
        if err not in seen:
            seen.add(err)
            out.append(err)
    return out


__all__ = ["compute_runtime", "validate_create", "validate_hub", "validate_metadata"]
