"""Rules for where data comes from and goes to: DataSource, DataDestination and adapters.

KAITO v0.3.2 runs the per-adapter rules only on UPDATE (a TODO in its source); they run on CREATE
here as well, so a bad adapter is rejected before any node is bought for it.
"""

from __future__ import annotations

import math

from kaito.api.errors import FieldError
from kaito.api.v1alpha1 import AdapterSpec, DataDestination, DataSource
from kaito.api.validation import names

MAX_ADAPTERS = 10
NOT_IMPLEMENTED_VOLUME = "volume sources are not supported yet; use urls or image"


def validate_data_source(src: DataSource, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    given = 0
    if src.urls:
        given += 1
        for i, url in enumerate(src.urls):
            problem = names.url_problem(url)
            if problem:
                errs.append(FieldError(f"{path}.urls[{i}]", problem))
    if src.volume_source is not None:
        given += 1
        errs.append(FieldError(f"{path}.volumeSource", NOT_IMPLEMENTED_VOLUME))
    if src.image:
        given += 1
        problem = names.image_problem(src.image, "input")
        if problem:
            errs.append(FieldError(f"{path}.image", problem))
    if given != 1:
        errs.append(
            FieldError(path, f"exactly one of urls, volumeSource or image must be specified (found {given})")
        )
    return errs


def validate_data_destination(dst: DataDestination, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if dst.volume_source is not None:
        errs.append(FieldError(f"{path}.volumeSource", NOT_IMPLEMENTED_VOLUME))
    if dst.image:
        problem = names.image_problem(dst.image, "output")
        if problem:
            errs.append(FieldError(f"{path}.image", problem))
        if not dst.image_push_secret:
            errs.append(
                FieldError(f"{path}.imagePushSecret", "imagePushSecret is required with an output image")
            )
    if dst.volume_source is None and not dst.image:
        errs.append(FieldError(path, "at least one of volumeSource or image must be specified"))
    return errs


def validate_adapter(adapter: AdapterSpec, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    src = adapter.source
    if src is None:
        errs.append(FieldError(f"{path}.source", "adapter source is required"))
    else:
        errs += validate_data_source(src, f"{path}.source")
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
        if not src.image:
            errs.append(FieldError(f"{path}.source.image", "adapter image must be specified"))
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


def validate_adapters(adapters: list[AdapterSpec], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if len(adapters) > MAX_ADAPTERS:
        errs.append(
            FieldError(path, f"number of adapters ({len(adapters)}) exceeds the maximum of {MAX_ADAPTERS}")
        )
    seen: set[str] = set()
    for i, adapter in enumerate(adapters):
        errs += validate_adapter(adapter, f"{path}[{i}]")
        name = adapter.source.name if adapter.source else None
        if name:
            if name in seen:
                errs.append(FieldError(f"{path}[{i}].source.name", f"duplicate adapter source name {name!r}"))
            seen.add(name)
    return errs
