"""`kaito.sh/v1alpha1`: the Workspace as KAITO v0.3.2 defines it, and its lossless conversion to the hub.

Only `kaito.api` should import this module (ARCHITECTURE.md rule 8); the callers that still do are
listed in pyproject.toml's import contract and move to `kaito.api.hub` next.
"""

from kaito.api.meta import Condition, LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference
from kaito.api.v1alpha1.convert import from_hub, to_hub
from kaito.api.v1alpha1.types import (
    API_VERSION,
    DEFAULT_ACCESS_MODE,
    DEFAULT_ADAPTER_STRENGTH,
    DEFAULT_COUNT,
    DEFAULT_INSTANCE_TYPE,
    GROUP,
    KIND,
    VERSION,
    AdapterSpec,
    DataDestination,
    DataSource,
    InferenceSpec,
    PresetOptions,
    PresetSpec,
    ResourceSpec,
    TuningSpec,
    Workspace,
    WorkspaceStatus,
    default_workspace,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCESS_MODE",
    "DEFAULT_ADAPTER_STRENGTH",
    "DEFAULT_COUNT",
    "DEFAULT_INSTANCE_TYPE",
    "GROUP",
    "KIND",
    "VERSION",
    "AdapterSpec",
    "Condition",
    "DataDestination",
    "DataSource",
    "InferenceSpec",
    "LabelSelector",
    "LabelSelectorRequirement",
    "ObjectMeta",
    "OwnerReference",
    "PresetOptions",
    "PresetSpec",
    "ResourceSpec",
    "TuningSpec",
    "Workspace",
    "WorkspaceStatus",
    "default_workspace",
    "from_hub",
    "to_hub",
]
