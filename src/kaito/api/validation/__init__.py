"""Admission rules for Workspaces (reference §2.1 plus the later rules the issue names).

`validate_workspace` runs them all; `validate_tuning_config` checks a tuning ConfigMap's data.
"""

from kaito.api.validation.names import UrlPolicy
from kaito.api.validation.tuning_config import (
    CONFIG_KEY,
    DEFAULT_CONFIGMAPS,
    default_configmap_name,
    validate_tuning_config,
)
from kaito.api.validation.workspace import validate_workspace

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_CONFIGMAPS",
    "UrlPolicy",
    "default_configmap_name",
    "validate_tuning_config",
    "validate_workspace",
]
