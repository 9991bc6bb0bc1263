"""The ConfigMaps a Workspace names, and their checks: the one place both ConfigMap rules live.

A tuning Workspace reads `training_config.yaml` from `tuning.config` (or, when empty, the chart's
`lora-params-template` / `qlora-params-template` in the operator's namespace); an inference Workspace
reads `inference_config.yaml` from `inference.config`. `needed` says which ConfigMaps to read;
`validate_configmaps` judges what the caller read (`ClusterReads`). Both run on CREATE and when the
name changes on UPDATE (an unchanged name was judged when it was set).
"""

from __future__ import annotations

from dataclasses import dataclass

from kaito.api.errors import FieldError
from kaito.api.facts import PresetFacts
from kaito.api.hub import Workspace
from kaito.api.validation import inference_config, tuning_config
from kaito.api.validation.context import AdmissionOptions, ClusterReads


@dataclass(frozen=True)
class ConfigMapRef:
    namespace: str
    name: str
    path: str  # the field that names it: tuning.config or inference.config
    explicit: bool  # False: the default tuning template, not named by the user

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


_MISSING = object()


def needed(ws: Workspace, old: Workspace | None, options: AdmissionOptions) -> list[ConfigMapRef]:
    """The ConfigMaps whose content admission of `ws` (against `old` on UPDATE) judges."""
    refs: list[ConfigMapRef] = []
    tun, old_tun = ws.tuning, (old.tuning if old is not None else None)
    if tun is not None and (old_tun is None or old_tun.config != tun.config):
        if tun.config:
            refs.append(ConfigMapRef(ws.namespace, tun.config, tuning_config.PATH, True))
        elif (default := tuning_config.default_configmap_name(tun.method)) is not None:
            refs.append(ConfigMapRef(options.release_namespace or ws.namespace, default, tuning_config.PATH, False))
    inf, old_inf = ws.inference, (old.inference if old is not None else None)
    if inf is not None and inf.config and (old_inf is None or old_inf.config != inf.config):
        refs.append(ConfigMapRef(ws.namespace, inf.config, inference_config.PATH, True))
    return refs


def validate_configmaps(ws: Workspace, old: Workspace | None, *, options: AdmissionOptions,
                        reads: ClusterReads, found: PresetFacts | None, runtime: str | None = None,
                        vllm_options: frozenset[str] | None = None) -> list[FieldError]:
    """What the ConfigMaps `needed` names say, judged for the runtime the pods run (`runtime`); the
    `inference.config` keys are checked against `vllm_options` when given."""
    errs: list[FieldError] = []
    tun = ws.tuning
    if (reads.complete and tun is not None and not tun.config and options.release_namespace is None
            and tuning_config.default_configmap_name(tun.method) is not None
            and (old is None or old.tuning is None or old.tuning.config != tun.config)):
        return [FieldError(tuning_config.PATH, "cannot find the default tuning ConfigMap: the operator's "
                                               "release namespace is unknown")]
    for ref in needed(ws, old, options):
        if ref.key in reads.unreadable:
            errs.append(FieldError(ref.path, f"could not read ConfigMap {ref.name!r} in namespace "
                                             f"{ref.namespace!r}: {reads.unreadable[ref.key]}"))
            continue
        data = reads.configmaps.get(ref.key, _MISSING)
        if data is _MISSING:
            if reads.complete:
                data = None
            elif ref.explicit:
                errs.append(FieldError(ref.path, f"ConfigMap {ref.name!r} is not in the given files: not checked",
                                       "warning"))
                continue
            else:
                continue
        if ref.path == tuning_config.PATH:
            errs += tuning_config.validate_tuning_config(ref.name, data, tun.method if tun else None, ref.namespace)
        else:
            limit = found.token_limit if found is not None else None
            errs += inference_config.validate_inference_config(ref.name, data, ref.namespace, limit,
                                                               vllm_options=vllm_options, runtime=runtime)
    return errs
