"""UPDATE admission rules (kaito.md §2.1 rules 19–23, kaito-v0.12.md §1.7): what may change later.

The controller sizes nodes and picks the model at creation; changing those later would leave
running nodes and pods that no longer match the spec, so KAITO freezes them. v1beta1 ties the
instanceType rule to node provisioning (BYO nodes may drop an old instanceType) and freezes
`resource.partition` too.
"""

from __future__ import annotations

from kaito.api.errors import FieldError
from kaito.api.hub import InferenceSpec, LabelSelector, ResourceSpec, TuningSpec, Workspace
from kaito.api.validation import annotation_rules, capacity, names, sources
from kaito.api.validation.context import AdmissionOptions, RuleSet


def selector_as_map(selector: LabelSelector) -> dict[str, str] | None:
    """The plain label map KAITO derives from a selector; None when it cannot be derived."""
    out = dict(selector.match_labels or {})
    for expr in selector.match_expressions or []:
        if expr.operator != "In" or len(expr.values or []) != 1:
            return None
        out[expr.key] = (expr.values or [""])[0]
    return out


def validate_resource_update(new: ResourceSpec | None, old: ResourceSpec | None,
                             rules: RuleSet = RuleSet.V1ALPHA1,
                             options: AdmissionOptions | None = None) -> list[FieldError]:
    if new is None or old is None:
        return []
    errs: list[FieldError] = []
    if new.count is not None and old.count is not None and new.count != old.count:
        errs.append(FieldError("resource.count", f"field is immutable (was {old.count}, now {new.count})"))
    if rules is RuleSet.V1BETA1:
        errs += capacity.validate_instance_type_update(new, old, options or AdmissionOptions())
        if new.partition != old.partition:
            errs.append(FieldError("resource.partition", "field is immutable"))
    elif (new.instance_type or "") != (old.instance_type or ""):
        errs.append(
            FieldError(
                "resource.instanceType",
                f"field is immutable (was {old.instance_type!r}, now {new.instance_type!r})",
            )
        )
    new_map, old_map = selector_as_map(new.label_selector), selector_as_map(old.label_selector)
    if new_map is None or old_map is None:
        errs.append(
            FieldError(
                "resource.labelSelector", "only matchLabels or an 'In' expression with one value is allowed"
            )
        )
    elif new_map != old_map:
        errs.append(FieldError("resource.labelSelector", "field is immutable"))
    return errs


def validate_inference_update(new: InferenceSpec, old: InferenceSpec,
                              rules: RuleSet = RuleSet.V1ALPHA1) -> list[FieldError]:
    errs: list[FieldError] = []
    new_preset = new.preset.to_dict() if new.preset else None
    old_preset = old.preset.to_dict() if old.preset else None
    if new_preset != old_preset:
        errs.append(FieldError("inference.preset", "field is immutable"))
    if new.template is None and old.template is not None:
        errs.append(FieldError("inference.template", "field cannot be unset once it was set"))
    if new.template is not None and old.template is None:
        errs.append(FieldError("inference.template", "field cannot be set if it was unset"))
    if new.adapters:
        errs += sources.validate_adapters(new.adapters, "inference.adapters", rules)
    return errs


def validate_tuning_update(
    new: TuningSpec, old: TuningSpec, url_policy: names.UrlPolicy = names.UrlPolicy.PUBLIC_ONLY,
    rules: RuleSet = RuleSet.V1ALPHA1,
) -> list[FieldError]:
    """Input and output may change (a new Job runs), so the new ones pass the CREATE rules: a
    changed URL gets the same SSRF guard as a first one."""
    errs: list[FieldError] = []
    if new.input is None:
        errs.append(FieldError("tuning.input", "tuning input is required"))
    else:
        if old.input is not None and (new.input.name or "") != (old.input.name or ""):
            errs.append(FieldError("tuning.input.name", "the input name cannot be changed once set"))
        errs += sources.validate_data_source(new.input, "tuning.input", url_policy, rules)
    if new.output is None:
        errs.append(FieldError("tuning.output", "tuning output is required"))
    else:
        errs += sources.validate_data_destination(new.output, "tuning.output", rules)
    new_preset = new.preset.to_dict() if new.preset else None
    old_preset = old.preset.to_dict() if old.preset else None
    if new_preset != old_preset:
        errs.append(FieldError("tuning.preset", "preset cannot be changed"))
    if (new.method or "").lower() != (old.method or "").lower():
        errs.append(FieldError("tuning.method", f"method cannot be changed (was {old.method!r})"))
    return errs


def validate_update(
    new: Workspace, old: Workspace, url_policy: names.UrlPolicy = names.UrlPolicy.PUBLIC_ONLY,
    rules: RuleSet = RuleSet.V1ALPHA1, options: AdmissionOptions | None = None,
) -> list[FieldError]:
    options = options or AdmissionOptions()
    errs: list[FieldError] = annotation_rules.validate_annotations_update(new.annotations, old.annotations, options)
    for field, new_spec, old_spec in (
        ("inference", new.inference, old.inference),
        ("tuning", new.tuning, old.tuning),
    ):
        if (new_spec is None) != (old_spec is None):
            errs.append(
                FieldError(
                    field, f"{field} cannot be toggled once set: it was {'set' if old_spec else 'unset'}"
                )
            )
    errs += validate_resource_update(new.resource, old.resource, rules, options)
    if new.inference is not None and old.inference is not None:
        errs += validate_inference_update(new.inference, old.inference, rules)
    if new.tuning is not None and old.tuning is not None:
        errs += validate_tuning_update(new.tuning, old.tuning, url_policy, rules)
    return errs
