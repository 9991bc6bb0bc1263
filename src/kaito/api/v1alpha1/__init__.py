"""`kaito.sh/v1alpha1`: the Workspace as KAITO v0.3.2 defines it, and its lossless conversion to the hub.

Only `kaito.api` imports this module (ARCHITECTURE.md rule 8, an import-linter contract with no
exceptions); everything else speaks `kaito.api.hub`.
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
    "from_hub",
    "to_hub",
]
