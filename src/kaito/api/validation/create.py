"""CREATE admission rules for `resource`, `inference` and `tuning` (kaito.md §2.1, kaito-v0.12.md §1.7).

Preset questions (does it exist, is its image private, does it fit the SKU) go through
`ModelFacts`, so this module stays free of the catalog. An unknown preset is an ordinary error
(KAITO v0.3.2 panics there), and a failing `ModelFacts` never escapes as an exception. Where the two
served versions answer differently, `RuleSet` picks the version's answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kaito.api import labels
from kaito.api.errors import FieldError
from kaito.api.facts import ModelFacts, PresetFacts
from kaito.api.hub import InferenceSpec, LabelSelector, PresetSpec, ResourceSpec, TuningSpec
from kaito.api.validation import capacity, names, preset_rules, sources
from kaito.api.validation.context import AdmissionOptions, RuleSet

TUNING_METHODS = ("lora", "qlora")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def lookup_preset(facts: ModelFacts, name: str, path: str) -> tuple[PresetFacts | None, list[FieldError]]:
    try:
        return facts.preset(name), []
    except Exception as exc:  # the facts provider is outside this room; admission must still answer
        return None, [FieldError(path, f"could not look up preset {name!r}: {exc}")]


def validate_label_selector(selector: LabelSelector, path: str) -> list[FieldError]:
    """KAITO turns the selector into a plain label map; say so when that is impossible."""
    errs: list[FieldError] = []
    for i, expr in enumerate(selector.match_expressions or []):
        epath = f"{path}.matchExpressions[{i}]"
        if expr.operator not in SELECTOR_OPERATORS:
            errs.append(FieldError(f"{epath}.operator", f"unknown operator {expr.operator!r}"))
        elif expr.operator != "In" or len(expr.values or []) != 1:
            errs.append(
                FieldError(
                    epath,
                    "only matchLabels or an 'In' expression with exactly one value can be used to "
                    f"select nodes (got operator {expr.operator!r} with {len(expr.values or [])} values)",
                )
            )
    match_labels = selector.match_labels or {}
    if match_labels and set(match_labels) <= labels.RESERVED_SELECTOR_KEYS:
        errs.append(
            FieldError(
                f"{path}.matchLabels",
                "matchLabels must contain at least one label that is not reserved by KAITO "
                f"(reserved: {', '.join(sorted(set(match_labels)))})",
            )
        )
    if not match_labels and not selector.match_expressions:
        errs.append(
            FieldError(f"{path}.matchLabels", "the selector is empty: it matches every node", "warning")
        )
    return errs


def _v1alpha1_fit(res: ResourceSpec, count: int, preset_name: str | None, facts: ModelFacts,
                  bypass: bool) -> list[FieldError]:
    """KAITO v0.3.2's SKU rules; with the bypass annotation the GPU shortfalls become warnings."""
    try:
        sku_errs = facts.check_instance_type(res.instance_type or "") if res.instance_type else []
        fit = facts.check_fit(res.instance_type or "", count, preset_name)
    except Exception as exc:
        return [FieldError("resource.instanceType", f"could not check the instance type: {exc}")]
    if not bypass:
        return fit
    return [e if e in sku_errs or e.severity == "warning" else FieldError(e.path, e.message, "warning") for e in fit]


def compute_node_gpus(res: ResourceSpec | None, facts: ModelFacts, options: AdmissionOptions,
                      nodes: Sequence[Mapping[str, str]] | None) -> float | None:
    """GPU memory of one node the Workspace will get (SKU table or BYO labels); None when unknown."""
    if res is None:
        return None
    if options.auto_provisioning and res.instance_type:
        try:
            gpu = facts.instance_type(res.instance_type)
        except Exception:
            return None
        return gpu.gpu_memory_gib if gpu is not None else None
    if not options.auto_provisioning and nodes:
        gpu, _ = capacity.read_node_gpus(nodes)
        return gpu.gpu_memory_gib if gpu is not None else None
    return None


def validate_resource_create(
    res: ResourceSpec,
    *,
    inference: InferenceSpec | None,
    tuning: TuningSpec | None,
    facts: ModelFacts,
    rules: RuleSet = RuleSet.V1ALPHA1,
    options: AdmissionOptions | None = None,
    annotations: Mapping[str, str] | None = None,
    nodes: Sequence[Mapping[str, str]] | None = None,
    runtime: str | None = None,
) -> list[FieldError]:
    options = options or AdmissionOptions()
    annotations = annotations or {}
    bypass = labels.ANNOTATION_BYPASS_RESOURCE_CHECKS in annotations
    errs = validate_label_selector(res.label_selector, "resource.labelSelector")
    count = res.count if res.count is not None else 1
    if count < 1:
        errs.append(FieldError("resource.count", f"count must be at least 1, got {count}"))
        return errs
    if rules is RuleSet.V1BETA1:
        errs += capacity.validate_instance_type_create(res, options)
    if tuning is not None:
        if count > 1:
            errs.append(FieldError(
                "resource.count", "tuning runs on a single node: set count to 1 (multi-node tuning is not supported)"))
        if res.partition is not None and rules is RuleSet.V1BETA1:
            errs.append(FieldError("resource.partition", "GPU partitions are not supported for tuning"))
    if inference is None:
        return errs
    found, name = None, None
    if inference.preset is not None and inference.preset.name:
        found, _ = lookup_preset(facts, inference.preset.name, "inference.preset.name")
        name = inference.preset.name if found is not None else None
        if found is None and rules is RuleSet.V1BETA1:
            return errs  # an unknown preset is reported on inference.preset.name; nothing to size
    if rules is RuleSet.V1ALPHA1:
        return errs + _v1alpha1_fit(res, count, name, facts, bypass)
    runtime = runtime or preset_rules.compute_runtime(annotations, found, rules=rules)
    return errs + capacity.validate_resource_for_inference(
        res, found, facts=facts, options=options, nodes=nodes, runtime=runtime, bypass=bypass)


def validate_preset_access(preset: PresetSpec, found: PresetFacts, path: str,
                           rules: RuleSet = RuleSet.V1ALPHA1) -> list[FieldError]:
    errs: list[FieldError] = []
    if found.access == "private" and preset.access_mode != "private":
        errs.append(
            FieldError(
                f"{path}.accessMode",
                f"preset {preset.name!r} only supports private access: set accessMode to private "
                "and give the image in presetOptions",
            )
        )
    if preset.access_mode == "private" and not (preset.preset_options and preset.preset_options.image):
        errs.append(
            FieldError(
                f"{path}.presetOptions.image",
                "an image is required in presetOptions when accessMode is private",
            )
        )
    errs += preset_rules.validate_deprecated(preset, found, path, rules)
    errs += preset_rules.validate_model_access(preset, found, path, rules)
    return errs


def validate_inference_create(inf: InferenceSpec, facts: ModelFacts, rules: RuleSet = RuleSet.V1ALPHA1,
                              annotations: Mapping[str, str] | None = None,
                              runtime: str | None = None) -> list[FieldError]:
    annotations = annotations or {}
    errs: list[FieldError] = []
    if inf.preset is None and inf.template is None:
        errs.append(FieldError("inference", "either preset or template must be specified"))
    if inf.preset is not None and inf.template is not None:
        errs.append(FieldError("inference.template", "preset and template cannot be set at the same time"))
    if inf.preset is not None:
        if not inf.preset.name:
            errs.append(FieldError("inference.preset.name", "preset name is required"))
        else:
            found, lookup_errs = lookup_preset(facts, inf.preset.name, "inference.preset.name")
            errs += lookup_errs
            if found is None and not lookup_errs:
                errs.append(
                    FieldError(
                        "inference.preset.name", f"unsupported inference preset name {inf.preset.name!r}"
                    )
                )
            elif found is not None:
                errs += validate_preset_access(inf.preset, found, "inference.preset", rules)
                errs += preset_rules.validate_runtime_choice(annotations, found)
                chosen = runtime or preset_rules.compute_runtime(annotations, found, rules=rules)
                errs += preset_rules.validate_adapters_on_runtime(inf, chosen, rules)
    if inf.adapters:
        errs += sources.validate_adapters(inf.adapters, "inference.adapters", rules)
    return errs


def validate_tuning_create(
    tun: TuningSpec, facts: ModelFacts, url_policy: names.UrlPolicy = names.UrlPolicy.PUBLIC_ONLY,
    rules: RuleSet = RuleSet.V1ALPHA1,
) -> list[FieldError]:
    errs: list[FieldError] = []
    method = (tun.method or "").lower()
    if method not in TUNING_METHODS:
        errs.append(
            FieldError("tuning.method", f"invalid tuning method {tun.method or ''!r}: must be lora or qlora")
        )
    if tun.input is None:
        errs.append(FieldError("tuning.input", "tuning input is required"))
    else:
        errs += sources.validate_data_source(tun.input, "tuning.input", url_policy, rules)
    if tun.output is None:
        errs.append(FieldError("tuning.output", "tuning output is required"))
    else:
        errs += sources.validate_data_destination(tun.output, "tuning.output", rules)
    if tun.preset is None:
        errs.append(FieldError("tuning.preset", "tuning preset is required"))
    elif not tun.preset.name:
        errs.append(FieldError("tuning.preset.name", "preset name is required"))
    else:
        found, lookup_errs = lookup_preset(facts, tun.preset.name, "tuning.preset.name")
        errs += lookup_errs
        if found is None and not lookup_errs:
            errs.append(
                FieldError("tuning.preset.name", f"unsupported tuning preset name {tun.preset.name!r}")
            )
        elif found is not None:
            errs += validate_preset_access(tun.preset, found, "tuning.preset", rules)
            errs += _tuning_support(tun, found, method)
    return errs


def _tuning_support(tun: TuningSpec, found: PresetFacts, method: str) -> list[FieldError]:
    """KAITO admits these and fails later in the controller; warn now."""
    name = tun.preset.name if tun.preset else found.name
    if method in TUNING_METHODS and found.tuning_methods and method not in found.tuning_methods:
        return [FieldError("tuning.method", f"preset {name!r} does not support {method} tuning "
                                            f"(supported: {', '.join(sorted(found.tuning_methods))})", "warning")]
    if method in TUNING_METHODS and not found.tuning_methods and found.known_size:
        return [FieldError("tuning.preset.name", f"preset {name!r} does not support tuning", "warning")]
    return []
