"""Admission rules for InferenceSets (kaito-v0.12.md §3.2), plus the autoscaling annotations (§3.5).

The set's own rules (name, replicas, node provisioning, the auto-upgrade window, a partition frozen
on UPDATE) run first; then, on CREATE and UPDATE alike, the child Workspace the set would make
(`kaito.api.inferenceset.build_child_workspace`) is judged with the full Workspace CREATE rules of
v1beta1 (children are always v1beta1 Workspaces) and each of its errors is reported where the user
wrote the value: `spec.template…`, `spec.labelSelector…` for the selector every child shares, and
the set's own `metadata.annotations[…]` for an annotation the set passes down.
"""

from __future__ import annotations

from kaito.api import autoscaling, inferenceset
from kaito.api.errors import FieldError
from kaito.api.facts import ModelFacts
from kaito.api.validation import names, schedule
from kaito.api.validation.context import AdmissionOptions, ClusterReads, RuleSet
from kaito.api.validation.workspace import validate_hub

TEMPLATE = "spec.template"
WINDOW = "spec.autoUpgrade.maintenanceWindow"


def validate_name(obj: inferenceset.InferenceSet) -> list[FieldError]:
    name = obj.metadata.name
    if not name:
        return [] if obj.metadata.generate_name else [FieldError("metadata.name", "name is required")]
    if not names.is_dns1123_label(name):
        return [FieldError("metadata.name", f"name {name[:80]!r} must be a DNS-1123 label: lowercase letters, "
                                            "digits and '-', starting and ending with a letter or digit, at most "
                                            f"{names.DNS1123_LABEL_MAX} characters")]
    return []


def _validate_template_metadata(obj: inferenceset.InferenceSet) -> list[FieldError]:
    meta = obj.spec.template.metadata or {}
    errs = []
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and (not isinstance(value, dict) or inferenceset.string_map(value) != value):
            errs.append(FieldError(f"{TEMPLATE}.metadata.{key}", f"{key} must map strings to strings"))
    labels = inferenceset.template_labels(obj)
    if labels.get(inferenceset.LABEL_CREATED_BY, obj.name) != obj.name:
        errs.append(FieldError(f"{TEMPLATE}.metadata.labels", f"{inferenceset.LABEL_CREATED_BY} is set by the "
                                                              "InferenceSet to its own name; this value is replaced",
                               "warning"))
    return errs


def _validate_window(obj: inferenceset.InferenceSet) -> list[FieldError]:
    upgrade = obj.spec.auto_upgrade
    window = upgrade.maintenance_window if upgrade is not None else None
    if window is None:
        return []
    if not window.schedule.strip():
        return [FieldError(f"{WINDOW}.schedule", "a maintenance window needs a schedule, e.g. \"0 2 * * 6\" "
                                                 "(Saturdays 02:00 UTC)")]
    errs = []
    problem = schedule.cron_problem(window.schedule)
    if problem is not None:
        errs.append(FieldError(f"{WINDOW}.schedule", f"invalid cron schedule {window.schedule!r}: {problem}"))
    if window.duration is not None:
        seconds = schedule.parse_go_duration(window.duration)
        if seconds is None:
            errs.append(FieldError(f"{WINDOW}.duration", f"{window.duration!r} is not a duration (e.g. 4h, 90m)"))
        elif seconds <= 0:
            errs.append(FieldError(f"{WINDOW}.duration", f"must be a positive duration, got {window.duration!r}"))
    return errs


def _validate_spec(obj: inferenceset.InferenceSet, options: AdmissionOptions) -> list[FieldError]:
    spec, errs = obj.spec, []
    if spec.replicas is not None and spec.replicas < 0:
        errs.append(FieldError("spec.replicas", f"must not be negative, got {spec.replicas}"))
    if spec.node_count_limit is not None and spec.node_count_limit < 0:
        errs.append(FieldError("spec.nodeCountLimit", f"must not be negative, got {spec.node_count_limit}"))
    resource = spec.template.resource
    if not options.auto_provisioning and resource is not None and resource.instance_type:
        # The child drops it (as KAITO does), so the Workspace rules below cannot see it.
        errs.append(FieldError(f"{TEMPLATE}.resource.instanceType",
                               f"instanceType must be empty with bring-your-own nodes (got {resource.instance_type!r})"))
    return errs + _validate_window(obj) + _validate_template_metadata(obj)


def _child_path(path: str, obj: inferenceset.InferenceSet) -> str:
    """Where the user wrote the value a child Workspace's error is about."""
    if path.startswith("resource.labelSelector"):
        return "spec." + path.removeprefix("resource.")
    if path.startswith("metadata.annotations["):
        key = path.removeprefix("metadata.annotations[").split("]", 1)[0]
        if key not in inferenceset.template_annotations(obj) and key in obj.annotations:
            return path  # passed down from the set's own annotations
    if path.startswith("metadata.name") or path.startswith("metadata.generateName"):
        return "metadata.name"
    return f"{TEMPLATE}.{path}" if path else TEMPLATE


def validate_child(obj: inferenceset.InferenceSet, *, facts: ModelFacts, options: AdmissionOptions,
                   reads: ClusterReads | None) -> list[FieldError]:
    """The child Workspace under the full Workspace CREATE rules, errors placed in the set."""
    child = inferenceset.build_child_workspace(obj, auto_provisioning=options.auto_provisioning)
    problems = validate_hub(child, None, facts=facts, rules=RuleSet.V1BETA1, options=options, reads=reads)
    return [FieldError(_child_path(p.path, obj), p.message, p.severity) for p in problems]


def validate_inferenceset(obj: inferenceset.InferenceSet, old: inferenceset.InferenceSet | None = None, *,
                          facts: ModelFacts, options: AdmissionOptions | None = None,
                          reads: ClusterReads | None = None) -> list[FieldError]:
    """Every problem with `obj` (CREATE when `old` is None, else UPDATE against `old`); never raises."""
    options = options or AdmissionOptions()
    obj = inferenceset.default_inferenceset(obj)
    errs = validate_name(obj) + _validate_spec(obj, options)
    if old is not None:
        old = inferenceset.default_inferenceset(old)
        new_part = obj.spec.template.resource.partition if obj.spec.template.resource else None
        old_part = old.spec.template.resource.partition if old.spec.template.resource else None
        if new_part != old_part:
            errs.append(FieldError(f"{TEMPLATE}.resource.partition", "field is immutable"))
    errs += validate_child(obj, facts=facts, options=options, reads=reads)
    _, scaling = autoscaling.parse_autoscaling(obj.annotations, node_count_limit=obj.spec.node_count_limit)
    errs += scaling
    seen: set[FieldError] = set()
    return [e for e in errs if not (e in seen or seen.add(e))]
