"""Rules for where data comes from and goes to: DataSource, DataDestination and adapters.

Volumes follow KAITO v0.12, not v0.3.2 (which refused them as "not implemented yet"): a tuning
input may be a volume, an output is exactly one of a volume or an image, and an adapter comes from
an image or a volume (never URLs). KAITO v0.3.2 runs the per-adapter rules only on UPDATE (a TODO
in its source); they run on CREATE here as well, so a bad adapter is rejected before any node is
bought for it.

Image references follow the served version's rules: v1alpha1 wants v0.3.2's full
`registry/repository:tag`, v1beta1 accepts any Docker reference, as KAITO v0.12 does.
"""

from __future__ import annotations

import math
from typing import Any

from kaito.api.errors import FieldError
from kaito.api.hub import AdapterSpec, DataDestination, DataSource
from kaito.api.validation import names
from kaito.api.validation.context import RuleSet

MAX_ADAPTERS = 10


def image_problem(image: str, what: str, rules: RuleSet) -> str | None:
    if rules is RuleSet.V1ALPHA1:
        return names.image_problem(image, what)
    return names.docker_reference_problem(image, what)


def validate_volume_source(volume: dict[str, Any], path: str) -> list[FieldError]:
    """A `volumeSource` is a Kubernetes VolumeSource: exactly one volume type, nothing else.

    The API server checks the volume type's own fields; what is caught here is what would otherwise
    surface only as a pod that never starts (an empty or doubled volumeSource).
    """
    kinds = sorted(volume)
    if len(kinds) == 1:
        return []
    if not kinds:
        return [
            FieldError(
                path, "volumeSource must name one volume type (persistentVolumeClaim, hostPath, emptyDir, ...)"
            )
        ]
    return [FieldError(path, f"volumeSource must name exactly one volume type, got {', '.join(kinds)}")]


def validate_data_source(
    src: DataSource, path: str, url_policy: names.UrlPolicy = names.UrlPolicy.PUBLIC_ONLY,
    rules: RuleSet = RuleSet.V1ALPHA1,
) -> list[FieldError]:
    errs: list[FieldError] = []
    given = 0
    if src.urls:
        given += 1
        for i, url in enumerate(src.urls):
            problem = names.url_problem(url, url_policy)
            if problem:
                errs.append(FieldError(f"{path}.urls[{i}]", problem))
    if src.volume_source is not None:
        given += 1
        errs += validate_volume_source(src.volume_source, f"{path}.volumeSource")
    if src.image:
        given += 1
        problem = image_problem(src.image, "input", rules)
        if problem:
            errs.append(FieldError(f"{path}.image", problem))
    if given != 1:
        errs.append(
            FieldError(path, f"exactly one of urls, volumeSource or image must be specified (found {given})")
        )
    return errs


def validate_data_destination(
    dst: DataDestination, path: str, rules: RuleSet = RuleSet.V1ALPHA1
) -> list[FieldError]:
    errs: list[FieldError] = []
    if dst.volume_source is not None:
        errs += validate_volume_source(dst.volume_source, f"{path}.volumeSource")
    if dst.image:
        problem = image_problem(dst.image, "output", rules)
        if problem:
            errs.append(FieldError(f"{path}.image", problem))
        if not dst.image_push_secret:
            errs.append(
                FieldError(f"{path}.imagePushSecret", "imagePushSecret is required with an output image")
            )
    given = (dst.volume_source is not None) + bool(dst.image)
    if given != 1:
        errs.append(
            FieldError(path, f"exactly one of volumeSource or image must be specified (found {given})")
        )
    return errs


def validate_adapter_source(src: DataSource, path: str, rules: RuleSet = RuleSet.V1ALPHA1) -> list[FieldError]:
    """An adapter comes from an image (copied in by an init container) or a volume (mounted)."""
    errs: list[FieldError] = []
    if src.urls:
        errs.append(
            FieldError(f"{path}.urls", "URLs are not supported as an adapter source; use image or volumeSource")
        )
    if src.image and src.volume_source is not None:
        errs.append(FieldError(path, "exactly one of image or volumeSource must be specified, not both"))
    elif not src.image and src.volume_source is None:
        errs.append(FieldError(f"{path}.image", "adapter image or volumeSource must be specified"))
    if src.image:
        problem = image_problem(src.image, "adapter", rules)
        if problem:
            errs.append(FieldError(f"{path}.image", problem))
    if src.volume_source is not None:
        errs += validate_volume_source(src.volume_source, f"{path}.volumeSource")
    return errs


def validate_adapter(adapter: AdapterSpec, path: str, rules: RuleSet = RuleSet.V1ALPHA1) -> list[FieldError]:
    errs: list[FieldError] = []
    src = adapter.source
    if src is None:
        errs.append(FieldError(f"{path}.source", "adapter source is required"))
    else:
        errs += validate_adapter_source(src, f"{path}.source", rules)
        if not src.name:
            errs.append(FieldError(f"{path}.source.name", "adapter name must be specified"))
        elif not names.is_adapter_name(src.name):
            errs.append(
                FieldError(
                    f"{path}.source.name",
                    f"adapter name {src.name[:80]!r} must be a valid DNS subdomain "
                    f"(letters, digits and '-', at most {names.DNS1123_SUBDOMAIN_MAX} characters)",
                )
            )
    if adapter.strength is not None:
        label = (src.name if src and src.name else "") or path
        try:
            strength = float(adapter.strength)
        except ValueError:
            errs.append(
                FieldError(
                    f"{path}.strength", f"strength {adapter.strength!r} of adapter {label!r} is not a number"
                )
            )
        else:
            if not math.isfinite(strength):
                errs.append(
                    FieldError(
                        f"{path}.strength",
                        f"strength {adapter.strength!r} of adapter {label!r} is not a number",
                    )
                )
            elif not 0.0 <= strength <= 1.0:
                errs.append(
                    FieldError(
                        f"{path}.strength",
                        f"strength of adapter {label!r} must be between 0 and 1, got {strength}",
                    )
                )
    return errs


def validate_adapters(
    adapters: list[AdapterSpec], path: str, rules: RuleSet = RuleSet.V1ALPHA1
) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(adapters) > MAX_ADAPTERS:
        errs.append(
            FieldError(path, f"number of adapters ({len(adapters)}) exceeds the maximum of {MAX_ADAPTERS}")
        )
    seen: set[str] = set()
    for i, adapter in enumerate(adapters):
        errs += validate_adapter(adapter, f"{path}[{i}]", rules)
        name = adapter.source.name if adapter.source else None
        if name:
            if name in seen:
                errs.append(FieldError(f"{path}[{i}].source.name", f"duplicate adapter source name {name!r}"))
            seen.add(name)
    return errs
