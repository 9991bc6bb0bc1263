"""The annotations that change what KAITO does (kaito-v0.12.md §1.5), checked for their values.

A misspelt value would otherwise be ignored silently (`performance-mode: fast` runs as balanced),
so each annotation with a closed set of values is refused with the values it accepts. The same
checks hold for both served versions: annotations are not versioned.
"""

from __future__ import annotations

from collections.abc import Mapping

from kaito.api import labels
from kaito.api.errors import FieldError
from kaito.api.validation.context import AdmissionOptions

RUNTIMES = (labels.RUNTIME_VLLM, labels.RUNTIME_TRANSFORMERS)


def _path(key: str) -> str:
    return f"metadata.annotations[{key}]"


def validate_annotations(annotations: Mapping[str, str], options: AdmissionOptions) -> list[FieldError]:
    """CREATE checks of the behaviour annotations; an absent annotation is always fine."""
    errs: list[FieldError] = []
    mode = annotations.get(labels.ANNOTATION_PERFORMANCE_MODE)
    if mode is not None and mode not in labels.PERFORMANCE_MODES:
        errs.append(FieldError(_path(labels.ANNOTATION_PERFORMANCE_MODE),
                               f"unknown performance mode {mode!r}: use one of {', '.join(labels.PERFORMANCE_MODES)}"))
    local = annotations.get(labels.ANNOTATION_USE_LOCAL_WEIGHTS)
    if local is not None and local not in ("true", "false"):
        errs.append(FieldError(_path(labels.ANNOTATION_USE_LOCAL_WEIGHTS),
                               f"{local!r} is not a boolean: write \"true\" or \"false\""))
    family = annotations.get(labels.ANNOTATION_NODE_IMAGE_FAMILY)
    if family is not None and family.lower() not in labels.NODE_IMAGE_FAMILIES:
        errs.append(FieldError(_path(labels.ANNOTATION_NODE_IMAGE_FAMILY),
                               f"unsupported node image family {family!r}: use one of "
                               f"{', '.join(labels.NODE_IMAGE_FAMILIES)}"))
    runtime = annotations.get(labels.ANNOTATION_RUNTIME)
    if runtime is not None and runtime not in RUNTIMES:
        # KAITO runs an unknown value as vLLM; saying so beats guessing silently.
        errs.append(FieldError(_path(labels.ANNOTATION_RUNTIME),
                               f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)}); the preset's "
                               "default runtime is used", "warning"))
    errs += validate_node_class(annotations, options)
    return errs


def validate_node_class(annotations: Mapping[str, str], options: AdmissionOptions) -> list[FieldError]:
    """`kaito.sh/node-class-name` names a NodeClass the operator manages (only when it checks them)."""
    name = annotations.get(labels.ANNOTATION_NODE_CLASS_NAME)
    if not name or options.node_classes is None or name in options.node_classes:
        return []
    return [FieldError(_path(labels.ANNOTATION_NODE_CLASS_NAME),
                       f"{name!r} is not a NodeClass this operator manages (managed: "
                       f"{', '.join(options.node_classes) or 'none'})")]


def validate_annotations_update(new: Mapping[str, str], old: Mapping[str, str],
                                options: AdmissionOptions) -> list[FieldError]:
    """On UPDATE only a changed node class is checked, so an object stored before the check existed
    stays updatable (its finalizer must be removable)."""
    if new.get(labels.ANNOTATION_NODE_CLASS_NAME) == old.get(labels.ANNOTATION_NODE_CLASS_NAME):
        return []
    return validate_node_class(new, options)
