"""Admission rules for RAGEngines (kaito-v0.12.md §4.1), and the one KAITO lacks: the vector DB engine.

KAITO accepts any `storage.vectorDB.engine` and its service then crashes at start-up; here an engine
the service does not run is refused, naming the field. URLs must be http(s) with a host (the
service calls them; in-cluster Service names are fine, so no public-address policy applies). On
UPDATE the CREATE rules run again, `compute` may be neither added nor removed, and it follows the
Workspace `resource` UPDATE rules. A named guardrails policy ConfigMap is judged from what the
caller read (`ClusterReads`), like a Workspace's ConfigMaps; `needed_configmaps` says which one.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from kaito.api import ragengine
from kaito.api.errors import FieldError
from kaito.api.facts import ModelFacts
from kaito.api.validation import names, update
from kaito.api.validation.configmaps import ConfigMapRef
from kaito.api.validation.context import AdmissionOptions, ClusterReads, RuleSet
from kaito.api.validation.create import validate_label_selector

SPEC = "spec"
COMPUTE = "spec.compute"
GUARDRAILS = "spec.guardrails"
_MISSING = object()
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # DNS-1123 subdomain


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"invalid URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL with a host"
    return None


def _secret_problem(name: str) -> str | None:
    if _SECRET_NAME.match(name) and len(name) <= names.DNS1123_SUBDOMAIN_MAX:
        return None
    return f"{name!r} is not a valid Secret name (lowercase letters, digits, '-' and '.')"


def _validate_name(obj: ragengine.RAGEngine) -> list[FieldError]:
    name = obj.metadata.name
    if not name:
        return [] if obj.metadata.generate_name else [FieldError("metadata.name", "name is required")]
    if not names.is_dns1123_label(name) or not name[0].isalpha():
        return [FieldError("metadata.name", f"name {name[:80]!r} must be a DNS-1035 label (it names the "
                                            "RAGEngine's Service): lowercase letters, digits and '-', starting "
                                            f"with a letter, at most {names.DNS1123_LABEL_MAX} characters")]
    return []


def _validate_embedding(spec: ragengine.RAGEngineSpec) -> list[FieldError]:
    emb, path = spec.embedding, f"{SPEC}.embedding"
    if emb is None:
        return [FieldError(path, "embedding is required: set embedding.local (a model run by the service) or "
                                 "embedding.remote (an embedding endpoint)")]
    if emb.local is None and emb.remote is None:
        return [FieldError(path, "set either embedding.local or embedding.remote (neither is set)")]
    if emb.local is not None and emb.remote is not None:
        return [FieldError(path, "set either embedding.local or embedding.remote, not both")]
    errs: list[FieldError] = []
    if emb.local is not None:
        local, lpath = emb.local, f"{path}.local"
        if not local.image and not local.model_id:
            errs.append(FieldError(lpath, "set either image or modelID (neither is set)"))
        elif local.image and local.model_id:
            errs.append(FieldError(lpath, "set either image or modelID, not both"))
        elif local.image and (problem := names.image_problem(local.image, "embedding model")):
            errs.append(FieldError(f"{lpath}.image", problem))
        elif local.image:  # KAITO's controller ignores it too, and its service embeds with its default
            errs.append(FieldError(f"{lpath}.image", "an embedding image is not run: the service loads the model "
                                                     "named by modelID (default BAAI/bge-small-en-v1.5) itself",
                                   "warning"))
        for field, value in (("imagePullSecret", local.image_pull_secret), ("modelAccessSecret", local.model_access_secret)):
            if value and (problem := _secret_problem(value)):
                errs.append(FieldError(f"{lpath}.{field}", problem))
    else:
        remote, rpath = emb.remote, f"{path}.remote"
        assert remote is not None
        if (problem := _url_problem(remote.url)) is not None:
            errs.append(FieldError(f"{rpath}.url", problem))
        if remote.access_secret and (problem := _secret_problem(remote.access_secret)):
            errs.append(FieldError(f"{rpath}.accessSecret", problem))
    return errs


def _validate_inference_service(spec: ragengine.RAGEngineSpec, rules: RuleSet) -> list[FieldError]:
    svc, path = spec.inference_service, f"{SPEC}.inferenceService"
    if svc is None:
        return []
    errs: list[FieldError] = []
    if svc.url:
        if (problem := _url_problem(svc.url)) is not None:
            errs.append(FieldError(f"{path}.url", problem))
    elif rules is RuleSet.V1ALPHA1:
        errs.append(FieldError(f"{path}.url", "url is required in kaito.sh/v1alpha1 (kaito.sh/v1beta1 leaves it "
                                              "empty for retrieve-only mode)"))
    if svc.context_window_size <= 0:
        errs.append(FieldError(f"{path}.contextWindowSize",
                               f"must be a positive number of tokens, got {svc.context_window_size}"))
    if svc.access_secret and (problem := _secret_problem(svc.access_secret)):
        errs.append(FieldError(f"{path}.accessSecret", problem))
    return errs


def _validate_storage(spec: ragengine.RAGEngineSpec, rules: RuleSet) -> list[FieldError]:
    storage, path = spec.storage, f"{SPEC}.storage"
    if storage is None:
        return []
    errs: list[FieldError] = []
    volume = storage.persistent_volume
    if volume is not None:
        vpath = f"{path}.persistentVolume" if rules is RuleSet.V1BETA1 else path
        if not volume.persistent_volume_claim and rules is RuleSet.V1BETA1:
            errs.append(FieldError(f"{vpath}.persistentVolumeClaim", "name the PersistentVolumeClaim to keep the "
                                                                     "indexes on"))
        if volume.mount_path is not None and not volume.mount_path.startswith("/"):
            errs.append(FieldError(f"{vpath}.mountPath", f"must be an absolute path, got {volume.mount_path!r}"))
    db = storage.vector_db
    if db is not None:
        dpath = f"{path}.vectorDB"
        engine = db.engine.strip().lower()
        if engine not in ragengine.VECTOR_DB_ENGINES:
            errs.append(FieldError(f"{dpath}.engine", f"unsupported vector DB engine {db.engine!r}: use "
                                                      f"{' or '.join(ragengine.VECTOR_DB_ENGINES)}"))
        if db.url and (problem := _url_problem(db.url)) is not None:
            errs.append(FieldError(f"{dpath}.url", problem))
        elif db.url and engine == "faiss":
            errs.append(FieldError(f"{dpath}.url", "FAISS runs inside the service: the url is not used", "warning"))
        elif not db.url and engine == "qdrant":
            errs.append(FieldError(f"{dpath}.url", "no Qdrant server named: the service runs Qdrant's local mode "
                                                   "on its storage volume", "warning"))
        if db.access_secret and (problem := _secret_problem(db.access_secret)):
            errs.append(FieldError(f"{dpath}.accessSecret", problem))
    return errs


def _compute_path(path: str) -> str:
    return COMPUTE + path.removeprefix("resource") if path.startswith("resource") else path


def _validate_compute(spec: ragengine.RAGEngineSpec, facts: ModelFacts, options: AdmissionOptions) -> list[FieldError]:
    res = spec.compute
    if res is None:
        return []
    errs = validate_label_selector(res.label_selector, f"{COMPUTE}.labelSelector")
    if res.count is not None and res.count != 1:
        errs.append(FieldError(f"{COMPUTE}.count", f"the RAG service runs on one node, got count {res.count}"))
    if res.instance_type:
        try:
            errs += [FieldError(_compute_path(e.path), e.message, e.severity)
                     for e in facts.check_instance_type(res.instance_type)]
        except Exception as exc:  # the facts provider is outside this room; admission must still answer
            errs.append(FieldError(f"{COMPUTE}.instanceType", f"could not check the instance type: {exc}"))
    elif options.auto_provisioning:
        errs.append(FieldError(f"{COMPUTE}.instanceType", "instanceType is required: nodes are auto-provisioned "
                                                          "(or leave out compute to run on any node)"))
    return errs


def needed_configmaps(obj: ragengine.RAGEngine, options: AdmissionOptions) -> list[ConfigMapRef]:
    """The guardrails policy ConfigMap admission judges, when one is named.

    KAITO falls back to `ragengine-guardrails-policy-template` in its release namespace; kaito's
    service does not apply guardrails (admission warns), so the chart ships no template to check.
    """
    guard = obj.spec.guardrails if obj.spec is not None else None
    if guard is None or not guard.enabled or guard.config_map_ref is None or not guard.config_map_ref.name:
        return []
    return [ConfigMapRef(obj.namespace, guard.config_map_ref.name, f"{GUARDRAILS}.configMapRef.name", True)]


def _validate_guardrails(obj: ragengine.RAGEngine, options: AdmissionOptions,
                         reads: ClusterReads | None) -> list[FieldError]:
    guard = obj.spec.guardrails if obj.spec is not None else None
    if guard is None or not guard.enabled:
        return []
    errs = [FieldError(f"{GUARDRAILS}.enabled", "kaito's RAG service does not apply output guardrails yet: "
                                                "answers are returned unscanned", "warning")]
    for ref in needed_configmaps(obj, options):
        where = f"ConfigMap {ref.name!r} in namespace {ref.namespace!r}"
        if reads is None:
            continue
        if ref.key in reads.unreadable:
            errs.append(FieldError(ref.path, f"could not read {where}: {reads.unreadable[ref.key]}"))
            continue
        data = reads.configmaps.get(ref.key, _MISSING)
        if data is _MISSING and not reads.complete:
            errs.append(FieldError(ref.path, f"ConfigMap {ref.name!r} is not in the given files: not checked",
                                   "warning"))
        elif data is _MISSING or data is None:
            errs.append(FieldError(ref.path, f"guardrails.configMapRef.name names {where}, which does not exist"))
        elif ragengine.GUARDRAILS_POLICY_KEY not in data:
            errs.append(FieldError(ref.path, f"{where} has no {ragengine.GUARDRAILS_POLICY_KEY} key"))
    return errs


def _validate_update(new: ragengine.RAGEngineSpec, old: ragengine.RAGEngineSpec | None,
                     options: AdmissionOptions) -> list[FieldError]:
    before = old.compute if old is not None else None
    if new.compute is not None and before is None:
        return [FieldError(COMPUTE, "compute cannot be added after creation")]
    if new.compute is None and before is not None:
        return [FieldError(COMPUTE, "compute cannot be removed after creation")]
    return [FieldError(_compute_path(e.path), e.message, e.severity)
            for e in update.validate_resource_update(new.compute, before, RuleSet.V1BETA1, options)]


def validate_ragengine(obj: ragengine.RAGEngine, old: ragengine.RAGEngine | None = None, *, facts: ModelFacts,
                       rules: RuleSet = RuleSet.V1BETA1, options: AdmissionOptions | None = None,
                       reads: ClusterReads | None = None) -> list[FieldError]:
    """Every problem with `obj` (CREATE when `old` is None, else UPDATE against `old`); never raises."""
    options = options or AdmissionOptions()
    obj = ragengine.default_ragengine(obj)
    errs = _validate_name(obj)
    spec = obj.spec
    if spec is None:
        return errs + [FieldError(SPEC, "spec is required, with at least spec.embedding")]
    errs += _validate_embedding(spec) + _validate_inference_service(spec, rules) + _validate_storage(spec, rules)
    errs += _validate_compute(spec, facts, options) + _validate_guardrails(obj, options, reads)
    if old is not None:
        errs += _validate_update(spec, ragengine.default_ragengine(old).spec, options)
    return errs
