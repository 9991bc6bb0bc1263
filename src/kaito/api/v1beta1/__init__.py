"""`kaito.sh/v1beta1`: the Workspace as KAITO v0.12 defines it, and its conversion to the hub.

Only `kaito.api` imports this module (ARCHITECTURE.md rule 8); everything else speaks `kaito.api.hub`.
"""

from kaito.api.v1beta1.convert import from_hub, to_hub
from kaito.api.v1beta1.types import (
    API_VERSION,
    DEFAULT_ACCESS_MODE,
    DEFAULT_COUNT,
    GROUP,
    KIND,
    VERSION,
    AdapterSpec,
    DataDestination,
    DataSource,
    InferenceSpec,
    Metric,
    PartitionSpec,
    Performance,
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
    "DEFAULT_COUNT",
    "GROUP",
    "KIND",
    "VERSION",
    "AdapterSpec",
    "DataDestination",
    "DataSource",
    "InferenceSpec",
    "Metric",
    "PartitionSpec",
    "Performance",
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
