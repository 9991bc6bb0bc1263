"""The Helm chart renders for default and non-default values, and every object is a valid kind."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from lightkube import codecs

from tests.unit.chart.render import CHART, NAMESPACE, by_kind, one, render

ROOT = CHART.parents[1]

NON_DEFAULT = {
    "replicaCount": 3,
    "image": {"repository": "registry.example.com/kaito/operator", "tag": "9.9.9", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "provisioner": "byo",
    "cloudProviderName": "aws",
    "runtimeImage": {"registry": "registry.example.com/kaito", "tag": "1.2.3"},
    "featureGates": {"Karpenter": True},
    "leaderElection": {"enabled": True, "leaseName": "my-lease"},
    "logLevel": "debug",
    "webhook": {"enabled": True, "port": 10443, "selfManagedCerts": False, "certSecretName": "my-tls",
                "caBundle": "Q0EK", "failurePolicy": "Ignore"},
    "nodeSelector": {"kubernetes.io/os": "linux", "pool": "system"},
    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}},
    "podAnnotations": {"prometheus.io/scrape": "true"},
}
MINIMAL = {"webhook": {"enabled": False}, "leaderElection": {"enabled": False}, "tuningTemplates": {"enabled": False},
           "inferenceTemplate": {"enabled": False}}
VARIANTS = {"default": {}, "non-default": NON_DEFAULT, "minimal": MINIMAL}


def _normalize(value):
    """YAML ints in quantity fields and the like compare equal to lightkube's typed round trip."""
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_parses_as_its_kind_without_losing_fields(variant):
    objects = render(VARIANTS[variant])
    assert objects
    for obj in objects:
        typed = codecs.from_dict(obj)  # type-checks every field of the kind (lightkube models)
        assert _normalize(typed.to_dict()) == _normalize(obj), f"{obj['kind']} has fields its kind lacks"
        meta = obj["metadata"]
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
                               "MutatingWebhookConfiguration", "CustomResourceDefinition"):
            assert meta.get("namespace") == NAMESPACE, obj["kind"]


def test_default_install_has_every_piece():
    objects = render()
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == sorted(["ClusterRole", "ClusterRoleBinding", "ConfigMap", "CustomResourceDefinition", "Deployment",
                            "MutatingWebhookConfiguration", "Role", "RoleBinding", "Service", "ServiceAccount",
                            "ValidatingWebhookConfiguration"])
    crds = {c["metadata"]["name"] for c in by_kind(objects, "CustomResourceDefinition")}
    assert crds == {"workspaces.kaito.sh", "inferencesets.kaito.sh", "ragengines.kaito.sh"}
    vwc = one(objects, "ValidatingWebhookConfiguration")
    hook = vwc["webhooks"][0]
    assert hook["clientConfig"]["service"]["path"] == "/validate/workspace.kaito.sh"
    assert hook["failurePolicy"] == "Fail" and hook["admissionReviewVersions"] == ["v1"]
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["rules"][0]["resources"] == ["workspaces"]
    svc = one(objects, "Service")
    assert svc["spec"]["selector"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert hook["clientConfig"]["service"]["name"] == svc["metadata"]["name"]
    # The version stamp: both versions, same Service, never blocking a write.
    mwc = one(objects, "MutatingWebhookConfiguration")
    stamp = mwc["webhooks"][0]
    assert mwc["metadata"]["name"] == vwc["metadata"]["name"]  # --webhook-configuration names both
    assert stamp["clientConfig"]["service"] == {**hook["clientConfig"]["service"], "path": "/mutate/workspace.kaito.sh"}
    assert stamp["failurePolicy"] == "Ignore" and stamp["sideEffects"] == "None"
    assert stamp["rules"] == hook["rules"]


def test_operator_pod_is_locked_down():
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["containerPort"] for p in container["ports"]} == {8080, 8081, 9443}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_values_reach_the_pod():
    objects = render(NON_DEFAULT)
    dep = one(objects, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert dep["spec"]["replicas"] == 3
    assert pod["containers"][0]["image"] == "registry.example.com/kaito/operator:9.9.9"
    for flag in ("--provisioner=byo", "--cloud=aws", "--runtime-image-registry=registry.example.com/kaito",
                 "--runtime-image-tag=1.2.3", "--feature-gates=Karpenter=true", "--lease-name=my-lease",
                 "--webhook-port=10443", "--no-self-managed-certs", "--log-level=debug"):
        assert flag in args
    assert pod["nodeSelector"] == NON_DEFAULT["nodeSelector"]
    assert pod["tolerations"] == NON_DEFAULT["tolerations"]
    assert pod["affinity"] == NON_DEFAULT["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert {v["name"]: v for v in pod["volumes"]}["webhook-cert"]["secret"]["secretName"] == "my-tls"
    vwc = one(objects, "ValidatingWebhookConfiguration")
    assert vwc["webhooks"][0]["clientConfig"]["caBundle"] == "Q0EK"
    assert vwc["webhooks"][0]["failurePolicy"] == "Ignore"
    assert one(objects, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"] == "Q0EK"
    # BYO: no NodeClaim permissions at all
    rules = operator_role(objects)["rules"]
    assert not [r for r in rules if "karpenter.sh" in r["apiGroups"]]


def test_minimal_install_drops_webhook_and_templates():
    objects = render(MINIMAL)
    assert not by_kind(objects, "ValidatingWebhookConfiguration") and not by_kind(objects, "ConfigMap")
    assert not by_kind(objects, "MutatingWebhookConfiguration")
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-webhook" in args and "--no-leader-elect" in args


@pytest.mark.parametrize("values", [{"provisioner": "gke"}, {"cloudProviderName": "gcp"},
                                    {"featureGates": {"Karpenter": "yes"}}, {"webhook": {"port": 0}}])
def test_bad_values_are_rejected_by_the_schema(values):
    helm = pytest.importorskip("helm_python")
    with pytest.raises(helm.HelmValuesError):
        render(values)


def test_no_wildcards_in_any_role():
    for variant in VARIANTS.values():
        objects = render(variant)
        for role in by_kind(objects, "ClusterRole") + by_kind(objects, "Role"):
            for rule in role["rules"]:
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule.get(key, []), (role["kind"], rule)
                assert not any("*" in r for r in rule["resources"])


def test_tuning_templates_are_the_trainers_package_data():
    objects = render()
    cms = {cm["metadata"]["name"]: cm for cm in by_kind(objects, "ConfigMap")}
    assert set(cms) == {"lora-params-template", "qlora-params-template", "inference-params-template"}
    for name, method in (("lora-params-template", "lora"), ("qlora-params-template", "qlora")):
        package = ROOT / "src" / "kaito" / "runtime" / "tuning" / "templates" / f"{method}.yaml"
        copy = CHART / "files" / f"{method}.yaml"
        assert copy.read_text() == package.read_text(), f"charts/kaito/files/{method}.yaml is stale: copy it again"
        assert yaml.safe_load(cms[name]["data"]["training_config.yaml"]) == yaml.safe_load(package.read_text())


def test_tuning_templates_pass_the_admission_rules():
    from kaito.api.validation import validate_tuning_config

    for cm in by_kind(render(), "ConfigMap"):
        if "training_config.yaml" in cm["data"]:
            method = cm["metadata"]["name"].split("-")[0]
            assert validate_tuning_config(cm["metadata"]["name"], cm["data"], method, NAMESPACE) == []


def test_inference_template_is_kaitos_default_and_passes_the_admission_rules():
    from importlib import resources

    from kaito.api.validation import validate_inference_config

    package = resources.files("kaito.api").joinpath("templates/inference_config.yaml").read_text()
    assert (CHART / "files" / "inference.yaml").read_text() == package, "charts/kaito/files/inference.yaml is stale"
    cm = next(c for c in by_kind(render(), "ConfigMap") if c["metadata"]["name"] == "inference-params-template")
    assert yaml.safe_load(cm["data"]["inference_config.yaml"]) == {
        "kv_cache_cpu_memory_utilization": 0.5, "vllm": {"cpu-offload-gb": 0}}
    assert validate_inference_config("inference-params-template", cm["data"], NAMESPACE, 4096) == []


def operator_role(objects):
    """The operator's own ClusterRole (the others are aggregated into users' roles)."""
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    return next(r for r in by_kind(objects, "ClusterRole") if r["metadata"]["name"] == binding["roleRef"]["name"])


def test_webhooks_admit_every_kind_and_crds_of_new_kinds_are_generated():
    from kaito.api import crd_kinds

    hooks = {h["name"]: h for h in one(render(), "ValidatingWebhookConfiguration")["webhooks"]}
    assert set(hooks) == {"validation.workspace.kaito.sh", "validation.inferenceset.kaito.sh",
                          "validation.ragengine.kaito.sh"}
    for kind in ("inferenceset", "ragengine"):
        hook = hooks[f"validation.{kind}.kaito.sh"]
        assert hook["clientConfig"]["service"]["path"] == f"/validate/{kind}.kaito.sh"
        assert hook["rules"] == [{"apiGroups": ["kaito.sh"], "apiVersions": ["v1alpha1", "v1beta1"],
                                  "resources": [f"{kind}s"], "operations": ["CREATE", "UPDATE"],
                                  "scope": "Namespaced"}]
    for name, build in crd_kinds.BUILDERS.items():
        committed = yaml.safe_load((CHART / "crds" / f"{name}.yaml").read_text())
        assert committed == build(), f"regenerate with: kaito crd {name.split('.')[0]} > charts/kaito/crds/{name}.yaml"


def test_rbac_covers_the_new_kinds_and_users_may_scale_sets():
    objects = render()
    rules = operator_role(objects)["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    for kind in ("inferencesets", "ragengines"):
        assert {("kaito.sh", kind, v) for v in ("get", "list", "watch", "patch")} <= granted
        assert ("kaito.sh", f"{kind}/status", "patch") in granted
        assert ("kaito.sh", f"{kind}/finalizers", "update") in granted
    crd_rule = next(r for r in rules if r["resources"] == ["customresourcedefinitions"])
    assert set(crd_rule["resourceNames"]) == {"workspaces.kaito.sh", "inferencesets.kaito.sh", "ragengines.kaito.sh"}
    roles = {r["metadata"]["name"]: r for r in by_kind(objects, "ClusterRole")}
    edit = roles["kaito-edit"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert {"update", "patch"} <= {v for r in edit["rules"] if "inferencesets/scale" in r["resources"]
                                   for v in r["verbs"]}
    assert not [r for r in by_kind(render({"aggregateRoles": False}), "ClusterRole") if r["metadata"]["name"] != "kaito"]


def test_crd_copy_is_what_kaito_crd_generates():
    crd_mod = pytest.importorskip("kaito.api.crd")
    build = getattr(crd_mod, "build_crd", None) or getattr(crd_mod, "generate_crd", None)
    if build is None:
        pytest.skip("kaito.api.crd has no build function to compare with")
    committed = yaml.safe_load((CHART / "crds" / "workspaces.kaito.sh.yaml").read_text())
    assert committed == build()


def test_chart_version_follows_the_package():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart["version"] == version and chart["appVersion"] == version


def test_helm_lint_is_clean():
    helm = pytest.importorskip("helm_python")
    report = helm.lint(str(CHART), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_chart_has_no_stray_files():
    allowed = {".helmignore", "Chart.yaml", "values.yaml", "values.schema.json"}
    top = {p.name for p in CHART.iterdir() if p.is_file()}
    assert top <= allowed, top - allowed
    assert all(isinstance(p, Path) for p in (CHART / "templates").iterdir())
