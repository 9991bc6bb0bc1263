"""`kaito.sh/v1alpha1` ↔ hub, losslessly.

v1alpha1 lacks `resource.partition`, `presetOptions.modelAccessSecret`, `status.state`,
`status.targetNodeCount` and `status.performance`: going to v1alpha1 they move into the
`conversion.kaito.sh/hub-fields` annotation (`kaito.api.lossless`) and come back from it. v1alpha1
defaults `instanceType` and adapter `strength` where v1beta1 leaves them empty; the annotation
records such absences so that a round trip does not invent a SKU or a strength.
"""

from __future__ import annotations

from kaito.api import hub, lossless
from kaito.api.v1alpha1.types import (
    DEFAULT_ACCESS_MODE,
    DEFAULT_ADAPTER_STRENGTH,
    DEFAULT_COUNT,
    DEFAULT_INSTANCE_TYPE,
    Workspace,
)

STASHED = (
    lossless.Stashed("resource.partition", anchor=1),
    lossless.Stashed("inference.preset.presetOptions.modelAccessSecret", anchor=2),
    lossless.Stashed("tuning.preset.presetOptions.modelAccessSecret", anchor=2),
    lossless.Stashed("status.state", anchor=0),
    lossless.Stashed("status.targetNodeCount", anchor=0),
    lossless.Stashed("status.performance", anchor=0),
)
DEFAULTED = (
    lossless.Defaulted("resource.instanceType", DEFAULT_INSTANCE_TYPE),
    lossless.Defaulted("inference.adapters[*].strength", DEFAULT_ADAPTER_STRENGTH),
)
_WIRE_ONLY = ("apiVersion", "kind")


def _default_workspace(ws: Workspace) -> Workspace:
    """A copy with every KAITO v0.3.2 default filled in where the value is missing; explicit values kept.

    Parsing already applies the defaults; this also covers objects built in code with explicit Nones
    (e.g. `ResourceSpec(count=None, ...)`), which is how the Go types' nil pointers arrive.
    """
    out = ws.model_copy(deep=True)
    if out.resource is not None:
        if out.resource.count is None:
            out.resource.count = DEFAULT_COUNT
        if out.resource.instance_type is None:
            out.resource.instance_type = DEFAULT_INSTANCE_TYPE
    for spec in (out.inference, out.tuning):
        if spec is not None and spec.preset is not None and spec.preset.access_mode is None:
            spec.preset.access_mode = DEFAULT_ACCESS_MODE
    if out.inference is not None:
        for adapter in out.inference.adapters or []:
            if adapter.strength is None:
                adapter.strength = DEFAULT_ADAPTER_STRENGTH
    return out


def to_hub(ws: Workspace) -> hub.Workspace:
    """The hub form of a v1alpha1 Workspace (v1alpha1 defaults applied, carried fields restored)."""
    data = _default_workspace(ws).model_dump(by_alias=True, exclude_none=True)
    for key in _WIRE_ONLY:
        data.pop(key, None)
    lossless.restore(data, STASHED, DEFAULTED)
    return hub.Workspace.model_validate(data)


def from_hub(ws: hub.Workspace) -> Workspace:
    """The v1alpha1 form of a hub Workspace; what v1alpha1 cannot hold rides in the annotation."""
    data = ws.model_dump(by_alias=True, exclude_none=True)
    lossless.stash(data, STASHED, DEFAULTED)
    return Workspace.model_validate(data)
