"""Admission rules for Workspaces (kaito.md §2.1, kaito-v0.12.md §1.7, plus the rules the issues name).

`validate_hub` runs them all on a hub Workspace for one served version's `RuleSet`;
`kaito.api.admission` is the entry point that parses, defaults and calls it. The ConfigMap rules
(`validate_tuning_config`, `validate_inference_config`) judge data the caller read.
"""

from kaito.api.validation.context import AdmissionOptions, ClusterReads, RuleSet
from kaito.api.validation.inference_config import validate_inference_config
from kaito.api.validation.names import UrlPolicy
from kaito.api.validation.tuning_config import (
    CONFIG_KEY,
    DEFAULT_CONFIGMAPS,
    default_configmap_name,
    validate_tuning_config,
)
from kaito.api.validation.workspace import compute_runtime, validate_hub

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_CONFIGMAPS",
    "AdmissionOptions",
    "ClusterReads",
    "RuleSet",
    "UrlPolicy",
    "compute_runtime",
    "default_configmap_name",
    "validate_hub",
    "validate_inference_config",
    "validate_tuning_config",
]
