"""Upper bounds on every list, number and string a user controls in a Workspace.

KAITO bounds only the adapters (10). Everything else a user writes is sized by the controller:
`resource.count` becomes NodeClaims, a StatefulSet's replicas and pods; URLs become arguments of
the tuning pod; selector labels become node labels and NodeClaim requirements. Unbounded, one
Workspace with `count: 1000000` made the local control plane build NodeClaims until it held 3 GB.
So admission refuses, on CREATE and UPDATE alike, anything past these bounds, before any other
rule does work sized by the input (`validate_bounds` runs first and alone when it finds a problem).

Where the numbers come from (README, "Bounds"):
- nodes: 100. The largest catalog model (about 800 GiB of weights) on the smallest GPU SKU of the
  tables (16 GiB) needs about 51 nodes; a count past 100 is a typo or an attack.
- partition count: 16 whole GPUs, the most any node of the SKU tables carries is 8.
- names Kubernetes knows (Secrets, ConfigMaps, nodes, adapters): DNS subdomains, 253 characters;
  label keys and values: Kubernetes' own syntax (name 63, prefix 253, value 63); annotations:
  256 KiB in all, Kubernetes' `TotalAnnotationSizeLimitB`.
- lists with no Kubernetes bound: 32 selector terms, 32 values in one expression, 64 labels,
  16 image pull secrets, 64 tuning URLs of at most 2048 characters each (each is one argument of
  the tuning pod; 64 × 2 KiB stays far below Linux's argument limits).
- free-form parts (the pod template, a volumeSource): 512 KiB of JSON each, a third of the
  1.5 MiB etcd stores for a whole object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from kaito.api import hub
from kaito.api.errors import FieldError
from kaito.api.validation.names import DNS1123_SUBDOMAIN_MAX
from kaito.api.validation.sources import MAX_ADAPTERS

MAX_NODE_COUNT = 100
MAX_PARTITION_COUNT = 16
MAX_PREFERRED_NODES = MAX_NODE_COUNT
MAX_SELECTOR_TERMS = 32
MAX_SELECTOR_VALUES = 32
MAX_LABELS = 64
MAX_ANNOTATION_BYTES = 256 * 1024
MAX_SECRETS = 16
MAX_URLS = 64
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = DNS1123_SUBDOMAIN_MAX
MAX_IMAGE_LENGTH = 1024  # a Docker reference: 255 for the name, plus registry, tag and digest
MAX_SHORT_VALUE = 63  # instance types, MIG profiles, adapter strengths: each ends up in a label value
MAX_FREEFORM_BYTES = 512 * 1024
LABEL_NAME_MAX = 63
LABEL_PREFIX_MAX = 253
LABEL_VALUE_MAX = 63

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SHOWN = 60  # characters of a refused value quoted in a message


def _quote(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes label (or annotation) key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > LABEL_PREFIX_MAX or not _DNS_SUBDOMAIN.match(prefix)):
        return f"key {_quote(key)}: the prefix must be a DNS subdomain of at most {LABEL_PREFIX_MAX} characters"
    if not name or len(name) > LABEL_NAME_MAX or not _LABEL_NAME.match(name):
        return (f"key {_quote(key)}: the name must be at most {LABEL_NAME_MAX} characters of letters, digits, "
                "'-', '_' and '.', starting and ending with a letter or digit")
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a Kubernetes label value, or None."""
    if value == "":
        return None
    if len(value) > LABEL_VALUE_MAX or not _LABEL_NAME.match(value):
        return (f"value {_quote(value)} must be at most {LABEL_VALUE_MAX} characters of letters, digits, "
                "'-', '_' and '.', starting and ending with a letter or digit")
    return None


def _too_many(path: str, n: int, limit: int, what: str) -> list[FieldError]:
    return [FieldError(path, f"{n} {what} given, at most {limit} are allowed")] if n > limit else []


def _too_long(path: str, value: str | None, limit: int) -> list[FieldError]:
    if value is not None and len(value) > limit:
        return [FieldError(path, f"{len(value)} characters given, at most {limit} are allowed")]
    return []


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, separators=(",", ":"), default=str))
    except (TypeError, ValueError, RecursionError):
        return MAX_FREEFORM_BYTES + 1  # not even serialisable: certainly not a pod template we run


def _too_big(path: str, value: Any) -> list[FieldError]:
    if value is None:
        return []
    size = _json_size(value)
    if size > MAX_FREEFORM_BYTES:
        return [FieldError(path, f"{size} bytes of JSON, at most {MAX_FREEFORM_BYTES} are allowed")]
    return []


def _names(path: str, values: Iterable[str] | None, limit: int, what: str) -> list[FieldError]:
    values = list(values or [])
    errs = _too_many(path, len(values), limit, what)
    if errs:
        return errs
    for i, value in enumerate(values):
        errs += _too_long(f"{path}[{i}]", value, MAX_NAME_LENGTH)
    return errs


def validate_labels(labels: Mapping[str, str] | None, path: str, limit: int = MAX_LABELS) -> list[FieldError]:
    labels = labels or {}
    errs = _too_many(path, len(labels), limit, "labels")
    if errs:
        return errs
    for key, value in labels.items():
        problem = label_key_problem(str(key)) or label_value_problem(str(value))
        if problem:
            errs.append(FieldError(f"{path}[{key[:_SHOWN]}]", problem))
    return errs


def validate_annotation_size(annotations: Mapping[str, str] | None, path: str) -> list[FieldError]:
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in (annotations or {}).items())
    if size > MAX_ANNOTATION_BYTES:
        return [FieldError(path, f"annotations take {size} bytes, at most {MAX_ANNOTATION_BYTES} are allowed "
                                 "(Kubernetes' limit)")]
    return []


def validate_selector(selector: hub.LabelSelector, path: str) -> list[FieldError]:
    match_labels = selector.match_labels or {}
    expressions = selector.match_expressions or []
    errs = _too_many(path, len(match_labels) + len(expressions), MAX_SELECTOR_TERMS,
                     "selector terms (matchLabels and matchExpressions)")
    if errs:
        return errs
    errs += validate_labels(match_labels, f"{path}.matchLabels", MAX_SELECTOR_TERMS)
    for i, expr in enumerate(expressions):
        epath = f"{path}.matchExpressions[{i}]"
        problem = label_key_problem(expr.key)
        if problem:
            errs.append(FieldError(f"{epath}.key", problem))
        values = expr.values or []
        many = _too_many(f"{epath}.values", len(values), MAX_SELECTOR_VALUES, "values")
        errs += many
        if not many:
            for j, value in enumerate(values):
                problem = label_value_problem(value)
                if problem:
                    errs.append(FieldError(f"{epath}.values[{j}]", problem))
    return errs


def validate_resource(res: hub.ResourceSpec) -> list[FieldError]:
    errs: list[FieldError] = []
    if res.count is not None and res.count > MAX_NODE_COUNT:
        errs.append(FieldError("resource.count", f"count {res.count} is more nodes than one Workspace may ask "
                                                 f"for: at most {MAX_NODE_COUNT}"))
    errs += _too_long("resource.instanceType", res.instance_type, MAX_SHORT_VALUE)
    errs += validate_selector(res.label_selector, "resource.labelSelector")
    errs += _names("resource.preferredNodes", res.preferred_nodes, MAX_PREFERRED_NODES, "preferred nodes")
    if res.partition is not None:
        if res.partition.count is not None and res.partition.count > MAX_PARTITION_COUNT:
            errs.append(FieldError("resource.partition.count", f"count {res.partition.count} is more GPUs than a "
                                                               f"node holds: at most {MAX_PARTITION_COUNT}"))
        errs += _too_long("resource.partition.profile", res.partition.profile, MAX_SHORT_VALUE)
    return errs


def validate_preset(preset: hub.PresetSpec | None, path: str) -> list[FieldError]:
    if preset is None:
        return []
    errs = _too_long(f"{path}.name", preset.name, MAX_NAME_LENGTH)
    errs += _too_long(f"{path}.accessMode", preset.access_mode, MAX_SHORT_VALUE)
    options = preset.preset_options
    if options is not None:
        errs += _too_long(f"{path}.presetOptions.image", options.image, MAX_IMAGE_LENGTH)
        errs += _names(f"{path}.presetOptions.imagePullSecrets", options.image_pull_secrets, MAX_SECRETS, "secrets")
        errs += _too_long(f"{path}.presetOptions.modelAccessSecret", options.model_access_secret, MAX_NAME_LENGTH)
    return errs


def validate_source(src: hub.DataSource | None, path: str, *, name: bool = True) -> list[FieldError]:
    """`name`: bound the source's name here (an adapter's name has KAITO's own rule, in `sources`)."""
    if src is None:
        return []
    errs = _too_long(f"{path}.name", src.name, MAX_NAME_LENGTH) if name else []
    urls = src.urls or []
    many = _too_many(f"{path}.urls", len(urls), MAX_URLS, "URLs")
    errs += many
    if not many:
        for i, url in enumerate(urls):
            errs += _too_long(f"{path}.urls[{i}]", url, MAX_URL_LENGTH)
    errs += _too_big(f"{path}.volumeSource", src.volume_source)
    errs += _too_long(f"{path}.image", src.image, MAX_IMAGE_LENGTH)
    errs += _names(f"{path}.imagePullSecrets", src.image_pull_secrets, MAX_SECRETS, "secrets")
    return errs


def validate_inference(inf: hub.InferenceSpec) -> list[FieldError]:
    errs = validate_preset(inf.preset, "inference.preset")
    errs += _too_big("inference.template", inf.template)
    errs += _too_long("inference.config", inf.config, MAX_NAME_LENGTH)
    adapters = inf.adapters or []
    if len(adapters) > MAX_ADAPTERS:  # KAITO's bound, in the words `sources.validate_adapters` uses
        errs.append(FieldError("inference.adapters",
                               f"number of adapters ({len(adapters)}) exceeds the maximum of {MAX_ADAPTERS}"))
    else:
        for i, adapter in enumerate(adapters):
            errs += validate_source(adapter.source, f"inference.adapters[{i}].source", name=False)
            errs += _too_long(f"inference.adapters[{i}].strength", adapter.strength, MAX_SHORT_VALUE)
    return errs


def validate_tuning(tun: hub.TuningSpec) -> list[FieldError]:
    errs = validate_preset(tun.preset, "tuning.preset")
    errs += _too_long("tuning.method", tun.method, MAX_SHORT_VALUE)
    errs += _too_long("tuning.config", tun.config, MAX_NAME_LENGTH)
    errs += validate_source(tun.input, "tuning.input")
    if tun.output is not None:
        errs += _too_big("tuning.output.volumeSource", tun.output.volume_source)
        errs += _too_long("tuning.output.image", tun.output.image, MAX_IMAGE_LENGTH)
        errs += _too_long("tuning.output.imagePushSecret", tun.output.image_push_secret, MAX_NAME_LENGTH)
    return errs


def compute_node_count(resource: hub.ResourceSpec | None) -> int:
    """The nodes (and replicas) the controller builds for `resource`: its count (default 1), never
    more than `MAX_NODE_COUNT` even for an object that reached the store past admission."""
    count = resource.count if resource is not None and resource.count else 1
    return max(1, min(count, MAX_NODE_COUNT))


def validate_bounds(ws: hub.Workspace) -> list[FieldError]:
    """Every bound `ws` breaks, with its field path; [] when it keeps them all."""
    errs = validate_labels(ws.metadata.labels, "metadata.labels")
    errs += validate_annotation_size(ws.metadata.annotations, "metadata.annotations")
    errs += _too_long("metadata.namespace", ws.metadata.namespace, LABEL_NAME_MAX)
    if ws.resource is not None:
        errs += validate_resource(ws.resource)
    if ws.inference is not None:
        errs += validate_inference(ws.inference)
    if ws.tuning is not None:
        errs += validate_tuning(ws.tuning)
    return errs
