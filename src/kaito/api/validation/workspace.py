"""The admission entry point: every rule for a Workspace on CREATE (no old object) or UPDATE.

One function serves the CLI, the webhook and the controller, so all three give the same answer.
It returns every problem found, with its field path, and never raises.
"""

from __future__ import annotations

from kaito.api.errors import FieldError
from kaito.api.facts import ModelFacts
from kaito.api.v1alpha1 import Workspace, default_workspace
from kaito.api.validation import create, names, update


def validate_metadata(ws: Workspace) -> list[FieldError]:
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


def validate_create(
    ws: Workspace, facts: ModelFacts, url_policy: names.UrlPolicy = names.UrlPolicy.PUBLIC_ONLY
) -> list[FieldError]:
    errs: list[FieldError] = []
    if ws.inference is None and ws.tuning is None:
        errs.append(FieldError("inference", "either inference or tuning must be specified, not neither"))
    if ws.inference is not None and ws.tuning is not None:
        errs.append(FieldError("tuning", "either inference or tuning must be specified, but not both"))
    if ws.resource is None:
        errs.append(FieldError("resource.labelSelector", "resource with a labelSelector is required"))
    else:
        errs += create.validate_resource_create(
            ws.resource, inference=ws.inference, tuning=ws.tuning, facts=facts
        )
    if ws.inference is not None:
        errs += create.validate_inference_create(ws.inference, facts)
    if ws.tuning is not None:
        errs += create.validate_tuning_create(ws.tuning, facts, url_policy)
    return errs


def validate_workspace(
    ws: Workspace,
    old: Workspace | None = None,
    *,
    facts: ModelFacts,
    url_policy: names.UrlPolicy = names.UrlPolicy.PUBLIC_ONLY,
) -> list[FieldError]:
    """All problems with `ws`: CREATE rules when `old` is None, else UPDATE rules against `old`.

    `url_policy` is strict unless the caller knows the Workspace runs on the embedded local cluster
    (`UrlPolicy.ALLOW_LOCAL`: the user's machine is the cluster, its own addresses are fair game).
    """
    ws = default_workspace(ws)
    errs = validate_metadata(ws)
    if old is None:
        errs += validate_create(ws, facts, url_policy)
    else:
        errs += update.validate_update(ws, default_workspace(old), url_policy)
    return _dedupe(errs)


def _dedupe(errs: list[FieldError]) -> list[FieldError]:
    seen: set[FieldError] = set()
    out = []
    for err in errs:
        if err not in seen:
            seen.add(err)
            out.append(err)
    return out


__all__ = ["validate_create", "validate_metadata", "validate_workspace"]
