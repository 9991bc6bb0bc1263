"""Every admission rule of reference §2.1 (and the later rules of the issue), accepting and rejecting.

Each case is a Workspace (a valid base plus dotted-path overrides), optionally an old Workspace
(UPDATE), and the errors expected: field path plus a phrase of the message. An empty expectation
means the Workspace is admitted (warnings allowed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kaito.api.errors import errors_only
from kaito.api.v1alpha1 import Workspace
from kaito.api.validation import UrlPolicy, validate_workspace
from tests.unit.api.factories import DELETE, adapter, ws
from tests.unit.api.fake_facts import FakeFacts


@dataclass
class Case:
    id: str
    rule: str
    new: dict[str, Any]
    expect: list[tuple[str, str]] = field(default_factory=list)
    old: dict[str, Any] | None = None


def I(**kw) -> dict:  # noqa: E743 - short names keep the table readable
    return ws("inference", {k.replace("__", "."): v for k, v in kw.items()})


def T(**kw) -> dict:
    return ws("tuning", {k.replace("__", "."): v for k, v in kw.items()})


def P(base: str, paths: dict[str, Any]) -> dict:
    return ws(base, paths)


BOTH = P("inference", {"tuning": T()["tuning"]})
NEITHER = P("inference", {"inference": DELETE})
INPUT = "tuning.input"
OUTPUT = "tuning.output"
ADAPTERS = "inference.adapters"
EXPR_NOTIN = [{"key": "apps", "operator": "NotIn", "values": ["x"]}]
EXPR_IN1 = [{"key": "apps", "operator": "In", "values": ["test"]}]
EXPR_IN2 = [{"key": "apps", "operator": "In", "values": ["a", "b"]}]
TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
TEMPLATE2 = {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
SEL = "resource.labelSelector"

CASES = [
    # --- rules 1, 2: exactly one of inference / tuning (CREATE)
    Case("neither", "1", NEITHER, [("inference", "not neither")]),
    Case("both", "2", BOTH, [("tuning", "not both")]),
    Case("only-inference", "1-2", I()),
    Case("only-tuning", "1-2", T()),
    # --- later rule: metadata.name is a DNS-1123 label
    Case(
        "name-uppercase", "name", P("inference", {"metadata.name": "My-WS"}), [("metadata.name", "DNS-1123")]
    ),
    Case(
        "name-64-chars", "name", P("inference", {"metadata.name": "a" * 64}), [("metadata.name", "DNS-1123")]
    ),
    Case("name-dot", "name", P("inference", {"metadata.name": "a.b"}), [("metadata.name", "DNS-1123")]),
    Case("name-missing", "name", P("inference", {"metadata.name": DELETE}), [("metadata.name", "required")]),
    Case("name-generate", "name", P("inference", {"metadata.name": DELETE, "metadata.generateName": "ws-"})),
    Case("name-63-chars", "name", P("inference", {"metadata.name": "a" * 63})),
    # --- rule 3: preset fits the SKU
    Case(
        "fit-nd96-8gpu",
        "3",
        I(resource__instanceType="Standard_ND96asr_v4", inference__preset__name="fit-8gpu"),
    ),
    Case("fit-equal", "3", I(resource__instanceType="Standard_NC6s_v3", inference__preset__name="fit-1x16")),
    Case(
        "fit-total",
        "3",
        I(resource__instanceType="Standard_NC6"),
        [("resource.instanceType", "total GPU memory")],
    ),
    Case(
        "fit-gpu-count",
        "3",
        I(resource__instanceType="Standard_NC24ads_A100_v4", inference__preset__name="fit-2gpu"),
        [("resource.instanceType", "number of GPUs")],
    ),
    Case(
        "fit-per-gpu",
        "3",
        I(resource__instanceType="Standard_NC6", resource__count=2, inference__preset__name="fit-15pergpu"),
        [("resource.instanceType", "per GPU memory")],
    ),
    Case("fit-count-multiplies", "3", I(resource__instanceType="Standard_NC6", resource__count=2)),
    Case("fit-hf-id", "3", I(inference__preset__name="microsoft/Phi-4")),
    # --- rule 4: SKUs outside the table
    Case(
        "sku-invalid",
        "4",
        I(resource__instanceType="Standard_invalid_sku"),
        [("resource.instanceType", "Unsupported instance type")],
    ),
    Case(
        "sku-aws-rejected",
        "4",
        I(resource__instanceType="p4d.24xlarge"),
        [("resource.instanceType", "Unsupported")],
    ),
    Case("sku-N-prefix", "4", I(resource__instanceType="Standard_NV_future_v9")),
    Case("sku-D-prefix", "4", I(resource__instanceType="Standard_D4s_v5")),
    Case(
        "sku-invalid-template",
        "4",
        I(inference={"template": TEMPLATE}, resource__instanceType="bogus"),
        [("resource.instanceType", "Unsupported")],
    ),
    Case("template-only", "4", I(inference={"template": TEMPLATE}, resource__instanceType="Standard_NC6")),
    # --- rule 5: the selector must be expressible as labels; reserved keys
    Case(
        "selector-notin",
        "5",
        I(**{"resource__labelSelector__matchExpressions": EXPR_NOTIN}),
        [(f"{SEL}.matchExpressions[0]", "only matchLabels")],
    ),
    Case(
        "selector-in-two",
        "5",
        I(**{"resource__labelSelector__matchExpressions": EXPR_IN2}),
        [(f"{SEL}.matchExpressions[0]", "exactly one value")],
    ),
    Case(
        "selector-bad-operator",
        "5",
        I(resource__labelSelector__matchExpressions=[{"key": "a", "operator": "Equals", "values": ["x"]}]),
        [(f"{SEL}.matchExpressions[0].operator", "unknown operator")],
    ),
    Case("selector-in-one", "5", I(resource__labelSelector__matchExpressions=EXPR_IN1)),
    Case(
        "selector-reserved-only",
        "5",
        I(resource__labelSelector__matchLabels={"kaito.sh/workspace": "x"}),
        [(f"{SEL}.matchLabels", "not reserved")],
    ),
    Case(
        "selector-reserved-and-own",
        "5",
        I(resource__labelSelector__matchLabels={"kaito.sh/workspace": "x", "a": "b"}),
    ),
    Case("selector-empty-warns", "5", I(resource__labelSelector={})),
    Case("resource-missing", "5", P("inference", {"resource": DELETE}), [(SEL, "required")]),
    # --- rule 6: tuning is single-node; count sanity
    Case("tuning-single-node", "6", T(resource__count=1)),
    Case("tuning-multinode", "6", T(resource__count=2), [("resource.count", "single node")]),
    Case("count-zero", "6", I(resource__count=0), [("resource.count", "at least 1")]),
    Case("inference-multinode", "6", I(resource__count=3)),
    # --- rules 7-11: inference preset / template / access
    Case(
        "preset-unknown",
        "9",
        I(inference__preset__name="no-such-model"),
        [("inference.preset.name", "unsupported inference preset")],
    ),
    Case("preset-case-insensitive", "9", I(inference__preset__name="Test-Validation")),
    Case(
        "preset-facts-fail",
        "9",
        I(inference__preset__name="explode"),
        [("inference.preset.name", "could not look up")],
    ),
    Case("preset-deprecated-warns", "9", I(inference__preset__name="deprecated-model")),
    Case("inference-empty", "7", I(inference={}), [("inference", "either preset or template")]),
    Case(
        "preset-and-template",
        "8",
        I(inference={"preset": {"name": "test-validation"}, "template": TEMPLATE}),
        [("inference.template", "same time")],
    ),
    Case(
        "private-preset-public-mode",
        "10",
        I(inference__preset={"name": "private-test-validation", "presetOptions": {"image": "r.io/a/b:1"}}),
        [("inference.preset.accessMode", "private")],
    ),
    Case(
        "private-without-image",
        "11",
        I(inference__preset={"name": "private-test-validation", "accessMode": "private"}),
        [("inference.preset.presetOptions.image", "image is required")],
    ),
    Case(
        "private-with-image",
        "11",
        I(
            resource__instanceType="Standard_NC6s_v3",
            inference__preset={
                "name": "private-test-validation",
                "accessMode": "private",
                "presetOptions": {"image": "r.io/a/b:1"},
            },
        ),
    ),
    Case(
        "private-no-secrets-needed",
        "11",
        I(
            inference__preset={
                "name": "test-validation",
                "accessMode": "private",
                "presetOptions": {"image": "r.io/x/y:1"},
            }
        ),
    ),
    # --- rules 12, 13: adapter count and duplicates
    Case(
        "adapters-11",
        "12",
        I(inference__adapters=[adapter(f"a{i}") for i in range(11)]),
        [(ADAPTERS, "maximum of 10")],
    ),
    Case("adapters-10", "12", I(inference__adapters=[adapter(f"a{i}") for i in range(10)])),
    Case(
        "adapters-duplicate",
        "13",
        I(inference__adapters=[adapter("a"), adapter("a")]),
        [(f"{ADAPTERS}[1].source.name", "duplicate")],
    ),
    Case("adapters-valid", "13", I(inference__adapters=[adapter("a", strength="0.2"), adapter("b")])),
    # --- rule 22 (run on CREATE too): each adapter
    Case(
        "adapter-no-source",
        "22",
        I(inference__adapters=[{"strength": "0.5"}]),
        [(f"{ADAPTERS}[0].source", "required")],
    ),
    Case(
        "adapter-no-name",
        "22",
        I(inference__adapters=[{"source": {"image": "r.io/a/b:1"}}]),
        [(f"{ADAPTERS}[0].source.name", "must be specified")],
    ),
    Case(
        "adapter-strength-text",
        "22",
        I(inference__adapters=[adapter(strength="invalid")]),
        [(f"{ADAPTERS}[0].strength", "not a number")],
    ),
    Case(
        "adapter-strength-nan",
        "22",
        I(inference__adapters=[adapter(strength="NaN")]),
        [(f"{ADAPTERS}[0].strength", "not a number")],
    ),
    Case(
        "adapter-strength-1.5",
        "22",
        I(inference__adapters=[adapter(strength="1.5")]),
        [(f"{ADAPTERS}[0].strength", "between 0 and 1")],
    ),
    Case(
        "adapter-strength-negative",
        "22",
        I(inference__adapters=[adapter(strength="-0.1")]),
        [(f"{ADAPTERS}[0].strength", "between 0 and 1")],
    ),
    Case("adapter-strength-zero", "22", I(inference__adapters=[adapter(strength="0")])),
    Case(
        "adapter-name-254",
        "22",
        I(inference__adapters=[adapter("a" * 254)]),
        [(f"{ADAPTERS}[0].source.name", "DNS subdomain")],
    ),
    Case(
        "adapter-name-underscore",
        "22",
        I(inference__adapters=[adapter("bad_name")]),
        [(f"{ADAPTERS}[0].source.name", "DNS subdomain")],
    ),
    Case(
        "adapter-urls",
        "22",
        I(inference__adapters=[{"source": {"name": "a", "urls": ["https://example.com/a"]}}]),
        [(f"{ADAPTERS}[0].source.urls", "URLs are not supported")],
    ),
    Case(
        "adapter-no-image-nor-volume",
        "22",
        I(inference__adapters=[{"source": {"name": "a"}}]),
        [(f"{ADAPTERS}[0].source.image", "image or volumeSource must be specified")],
    ),
    # --- v0.12: an adapter from a volume
    Case(
        "adapter-volume",
        "22",
        I(inference__adapters=[{"source": {"name": "a", "volumeSource": {"persistentVolumeClaim": {"claimName": "x"}}}}]),
    ),
    Case(
        "adapter-volume-and-image",
        "22",
        I(inference__adapters=[{"source": {"name": "a", "image": "r.io/a/b:1", "volumeSource": {"emptyDir": {}}}}]),
        [(f"{ADAPTERS}[0].source", "exactly one of image or volumeSource")],
    ),
    Case(
        "adapter-volume-empty",
        "22",
        I(inference__adapters=[{"source": {"name": "a", "volumeSource": {}}}]),
        [(f"{ADAPTERS}[0].source.volumeSource", "one volume type")],
    ),
    Case(
        "adapter-image-uppercase",
        "22",
        I(inference__adapters=[adapter(image="r.io/adapters/Falcon:1")]),
        [(f"{ADAPTERS}[0].source.image", "lowercase")],
    ),
    # --- rules 14, 16-18: tuning
    Case("tuning-lora", "14", T()),
    Case("tuning-qlora", "14", T(tuning__method="qlora")),
    Case("tuning-method-case", "14", T(tuning__method="QLoRA")),
    Case("tuning-method-invalid", "14", T(tuning__method="sft"), [("tuning.method", "lora or qlora")]),
    Case("tuning-method-missing", "14", T(tuning__method=DELETE), [("tuning.method", "lora or qlora")]),
    Case(
        "tuning-method-unsupported-warns", "14", T(tuning__preset__name="lora-only", tuning__method="qlora")
    ),
    Case("tuning-no-input", "16", T(tuning__input=DELETE), [(INPUT, "required")]),
    Case("tuning-no-output", "17", T(tuning__output=DELETE), [(OUTPUT, "required")]),
    Case("tuning-no-preset", "18", T(tuning__preset=DELETE), [("tuning.preset", "required")]),
    Case(
        "tuning-preset-unknown",
        "18",
        T(tuning__preset__name="nope"),
        [("tuning.preset.name", "unsupported tuning preset")],
    ),
    Case("tuning-hf-id", "18", T(tuning__preset__name="Qwen/Qwen2.5-0.5B-Instruct")),
    # --- DataSource (create)
    Case("input-urls", "ds", T()),
    Case("input-image", "ds", T(tuning__input={"image": "registry.example.com/data/set:1"})),
    Case("input-image-nested", "ds", T(tuning__input={"image": "r.io/org/team/set:v2"})),
    Case(
        "input-image-no-registry",
        "ds",
        T(tuning__input={"image": "dataset:1"}),
        [(f"{INPUT}.image", "full input image")],
    ),
    Case(
        "input-image-no-tag",
        "ds",
        T(tuning__input={"image": "r.io/data/set"}),
        [(f"{INPUT}.image", "full input image")],
    ),
    Case(
        "input-image-uppercase",
        "ds",
        T(tuning__input={"image": "r.io/data/DataSet:1"}),
        [(f"{INPUT}.image", "lowercase")],
    ),
    Case("input-none", "ds", T(tuning__input={"name": "in"}), [(INPUT, "exactly one")]),
    Case(
        "input-urls-and-image",
        "ds",
        T(tuning__input={"urls": ["https://e.com/a"], "image": "r.io/d/s:1"}),
        [(INPUT, "exactly one")],
    ),
    # --- v0.12: volumes are data sources (v0.3.2 said "not implemented yet")
    Case("input-volume", "ds", T(tuning__input={"volumeSource": {"persistentVolumeClaim": {"claimName": "d"}}})),
    Case("input-volume-named", "ds", T(tuning__input={"name": "in", "volumeSource": {"hostPath": {"path": "/d"}}})),
    Case(
        "input-volume-and-urls",
        "ds",
        T(tuning__input={"urls": ["https://e.com/a"], "volumeSource": {"emptyDir": {}}}),
        [(INPUT, "exactly one")],
    ),
    Case(
        "input-volume-empty",
        "ds",
        T(tuning__input={"volumeSource": {}}),
        [(f"{INPUT}.volumeSource", "one volume type")],
    ),
    Case(
        "input-volume-two-kinds",
        "ds",
        T(tuning__input={"volumeSource": {"emptyDir": {}, "hostPath": {"path": "/d"}}}),
        [(f"{INPUT}.volumeSource", "exactly one volume type, got emptyDir, hostPath")],
    ),
    # --- later rule: URL inputs (SSRF guard)
    Case(
        "url-ftp",
        "url",
        T(tuning__input={"urls": ["ftp://e.com/a"]}),
        [(f"{INPUT}.urls[0]", "http or https")],
    ),
    Case(
        "url-localhost",
        "url",
        T(tuning__input={"urls": ["http://localhost:8080/a"]}),
        [(f"{INPUT}.urls[0]", "localhost")],
    ),
    Case(
        "url-sub-localhost",
        "url",
        T(tuning__input={"urls": ["http://api.localhost/a"]}),
        [(f"{INPUT}.urls[0]", "localhost")],
    ),
    Case(
        "url-loopback",
        "url",
        T(tuning__input={"urls": ["http://127.0.0.1/a"]}),
        [(f"{INPUT}.urls[0]", "loopback")],
    ),
    Case(
        "url-ipv6-loopback",
        "url",
        T(tuning__input={"urls": ["http://[::1]/a"]}),
        [(f"{INPUT}.urls[0]", "loopback")],
    ),
    Case(
        "url-metadata-ip",
        "url",
        T(tuning__input={"urls": ["http://169.254.169.254/latest"]}),
        [(f"{INPUT}.urls[0]", "link-local")],
    ),
    Case(
        "url-metadata-host",
        "url",
        T(tuning__input={"urls": ["http://metadata.google.internal/x"]}),
        [(f"{INPUT}.urls[0]", "metadata")],
    ),
    Case(
        "url-private",
        "url",
        T(tuning__input={"urls": ["https://10.1.2.3/a"]}),
        [(f"{INPUT}.urls[0]", "private")],
    ),
    Case(
        "url-mapped-private",
        "url",
        T(tuning__input={"urls": ["https://[::ffff:192.168.0.1]/a"]}),
        [(f"{INPUT}.urls[0]", "private")],
    ),
    Case("url-no-host", "url", T(tuning__input={"urls": ["https:///a"]}), [(f"{INPUT}.urls[0]", "no host")]),
    Case(
        "url-second-bad",
        "url",
        T(tuning__input={"urls": ["https://e.com/a", "http://0.0.0.0/"]}),
        [(f"{INPUT}.urls[1]", "loopback")],
    ),
    Case("url-public-ip", "url", T(tuning__input={"urls": ["https://8.8.8.8/data"]})),
    # Numeric host forms resolvers turn into addresses (inet_aton): they must not pass as DNS names.
    *(
        Case(f"url-numeric-{n}", "url", T(tuning__input={"urls": [u]}), [(f"{INPUT}.urls[0]", phrase)])
        for n, (u, phrase) in enumerate(
            [
                ("http://2130706433/x", "loopback"),
                ("http://0x7f000001/x", "loopback"),
                ("http://127.1/x", "loopback"),
                ("http://0177.0.0.1/x", "loopback"),
                ("http://0/", "loopback"),
                ("http://0xa9fea9fe/latest", "link-local"),
                ("http://0300.0250.1.1/x", "private"),
                ("http://[0:0:0:0:0:0:0:1]/x", "loopback"),
                ("http://[::ffff:7f00:1]/x", "loopback"),
                ("http://[v1.x]/x", "IPv6"),
                ("http://100.64.0.1/x", "shared address"),
                ("http://100.100.100.200/latest", "metadata"),
            ]
        )
    ),
    Case("url-hex-letters-dns-name", "url", T(tuning__input={"urls": ["https://cafe.be/data"]})),
    Case("url-digits-dns-name", "url", T(tuning__input={"urls": ["https://1.2.3.4.5/data"]})),
    # --- DataDestination (create)
    Case("output-none", "dd", T(tuning__output={}), [(OUTPUT, "exactly one of volumeSource or image")]),
    Case(
        "output-no-secret",
        "dd",
        T(tuning__output={"image": "r.io/a/b:1"}),
        [(f"{OUTPUT}.imagePushSecret", "required")],
    ),
    Case(
        "output-no-registry",
        "dd",
        T(tuning__output__image="adapter:1"),
        [(f"{OUTPUT}.image", "full output image")],
    ),
    Case(
        "output-no-tag",
        "dd",
        T(tuning__output__image="r.io/a/adapter"),
        [(f"{OUTPUT}.image", "full output image")],
    ),
    Case(
        "output-uppercase",
        "dd",
        T(tuning__output__image="r.io/a/Adapter:1"),
        [(f"{OUTPUT}.image", "lowercase")],
    ),
    # --- v0.12: exactly one of volume or image
    Case("output-volume", "dd", T(tuning__output={"volumeSource": {"emptyDir": {}}})),
    Case("output-volume-pvc", "dd", T(tuning__output={"volumeSource": {"persistentVolumeClaim": {"claimName": "r"}}})),
    Case(
        "output-volume-and-image",
        "dd",
        T(tuning__output__volumeSource={"emptyDir": {}}),
        [(OUTPUT, "exactly one of volumeSource or image")],
    ),
    Case(
        "output-volume-empty",
        "dd",
        T(tuning__output={"volumeSource": {}}),
        [(f"{OUTPUT}.volumeSource", "one volume type")],
    ),
    # --- rule 19: toggling inference / tuning (UPDATE)
    Case(
        "toggle-inference-off",
        "19",
        P("inference", {"inference": DELETE, "tuning": T()["tuning"]}),
        [("inference", "toggled")],
        old=I(),
    ),
    Case(
        "toggle-tuning-on", "19", P("inference", {"tuning": T()["tuning"]}), [("tuning", "toggled")], old=I()
    ),
    Case(
        "toggle-tuning-off",
        "19",
        P("tuning", {"tuning": DELETE, "inference": I()["inference"]}),
        [("tuning", "toggled")],
        old=T(),
    ),
    Case("no-toggle", "19", I(), old=I()),
    # --- rule 20: resource immutability
    Case("update-count", "20", I(resource__count=2), [("resource.count", "immutable")], old=I()),
    Case("update-count-default", "20", I(resource__count=1), old=I()),
    Case(
        "update-instance",
        "20",
        I(resource__instanceType="Standard_NC6"),
        [("resource.instanceType", "immutable")],
        old=I(),
    ),
    Case(
        "update-selector",
        "20",
        I(resource__labelSelector__matchLabels={"apps": "other"}),
        [(SEL, "immutable")],
        old=I(),
    ),
    Case(
        "update-selector-notin",
        "20",
        I(resource__labelSelector__matchExpressions=EXPR_NOTIN),
        [(SEL, "only matchLabels")],
        old=I(),
    ),
    Case(
        "update-selector-same-map",
        "20",
        I(resource__labelSelector={"matchExpressions": EXPR_IN1}),
        old=I(),
    ),
    Case("update-preferred-nodes", "20", I(resource__preferredNodes=["node-1"]), old=I()),
    # --- rule 21: inference immutability
    Case(
        "update-preset",
        "21",
        I(inference__preset__name="fit-1x16"),
        [("inference.preset", "immutable")],
        old=I(),
    ),
    Case(
        "update-access-mode",
        "21",
        I(inference__preset__accessMode="private", inference__preset__presetOptions={"image": "r.io/a/b:1"}),
        [("inference.preset", "immutable")],
        old=I(),
    ),
    Case(
        "update-template-unset",
        "21",
        I(inference={"preset": {"name": "test-validation"}}),
        [("inference.template", "unset")],
        old=I(inference={"template": TEMPLATE}),
    ),
    Case(
        "update-template-set",
        "21",
        I(inference={"template": TEMPLATE}),
        [("inference.template", "set if it was unset")],
        old=I(inference={"preset": {"name": "test-validation"}}),
    ),
    Case(
        "update-template-content",
        "21",
        I(inference={"template": TEMPLATE2}),
        old=I(inference={"template": TEMPLATE}),
    ),
    Case("update-add-adapter", "22", I(inference__adapters=[adapter("a")]), old=I()),
    Case(
        "update-bad-adapter",
        "22",
        I(inference__adapters=[adapter(strength="2")]),
        [(f"{ADAPTERS}[0].strength", "between 0 and 1")],
        old=I(),
    ),
    # --- rule 23: tuning updates
    Case("update-tuning-same", "23", T(), old=T()),
    Case(
        "update-tuning-preset",
        "23",
        T(tuning__preset__name="fit-1x16"),
        [("tuning.preset", "cannot be changed")],
        old=T(),
    ),
    Case(
        "update-tuning-method",
        "23",
        T(tuning__method="qlora"),
        [("tuning.method", "cannot be changed")],
        old=T(),
    ),
    Case("update-tuning-method-case", "23", T(tuning__method="LORA"), old=T()),
    Case(
        "update-input-name",
        "23",
        T(tuning__input__name="new"),
        [(f"{INPUT}.name", "cannot be changed")],
        old=T(tuning__input__name="old"),
    ),
    Case("update-input-urls", "23", T(tuning__input__urls=["https://e.com/other"]), old=T()),
    Case("update-output-image", "23", T(tuning__output__image="r.io/a/other:2"), old=T()),
    Case("update-input-missing", "23", T(tuning__input=DELETE), [(INPUT, "required")], old=T()),
    Case("update-input-volume", "23", T(tuning__input={"volumeSource": {"emptyDir": {}}}), old=T()),
    Case("update-output-volume", "23", T(tuning__output={"volumeSource": {"emptyDir": {}}}), old=T()),
    Case(
        "update-output-volume-and-image",
        "23",
        T(tuning__output__volumeSource={"emptyDir": {}}),
        [(OUTPUT, "exactly one of volumeSource or image")],
        old=T(),
    ),
    Case(
        "update-input-url-loopback",
        "23",
        T(tuning__input__urls=["http://127.0.0.1:8000/a"]),
        [(f"{INPUT}.urls[0]", "loopback")],
        old=T(),
    ),
    Case(
        "update-name-checked",
        "name",
        P("inference", {"metadata.name": "Bad_Name"}),
        [("metadata.name", "DNS-1123")],
        old=I(),
    ),
]


@pytest.fixture(scope="module")
def facts() -> FakeFacts:
    return FakeFacts()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case: Case, facts: FakeFacts) -> None:
    new = Workspace.from_dict(case.new)
    old = Workspace.from_dict(case.old) if case.old is not None else None
    errors = errors_only(validate_workspace(new, old, facts=facts))
    if not case.expect:
        assert errors == [], f"rule {case.rule}: expected admission, got {errors}"
        return
    for path, phrase in case.expect:
        hits = [e for e in errors if e.path == path and phrase.lower() in e.message.lower()]
        assert hits, f"rule {case.rule}: no error at {path!r} mentioning {phrase!r}; got {errors}"


# `tuning.input.urls` under both URL policies: (url, phrase when strict, phrase on the local cluster);
# None means admitted. Strict is the default everywhere; the local cluster admits its own addresses
# but never a metadata service or a link-local address.
URL_POLICY_CASES = [
    ("http://127.0.0.1:8000/train.jsonl", "loopback", None),
    ("http://[::1]:8000/train.jsonl", "loopback", None),
    ("http://0.0.0.0:8000/train.jsonl", "loopback", None),
    ("http://localhost:8000/train.jsonl", "localhost", None),
    ("http://data.localhost/train.jsonl", "localhost", None),
    ("http://192.168.1.20/train.jsonl", "private", None),
    ("http://[fd00::1]/train.jsonl", "private", None),
    ("https://example.com/train.jsonl", None, None),
    ("http://169.254.169.254/latest/meta-data", "link-local", "link-local"),
    ("http://[fe80::1]/x", "link-local", "link-local"),
    ("http://metadata.google.internal/x", "metadata", "metadata"),
    ("http://224.0.0.1/x", "multicast", "multicast"),
    ("file:///etc/passwd", "http or https", "http or https"),
    ("http:///train.jsonl", "no host", "no host"),
    ("http://2130706433/train.jsonl", "loopback", None),
    ("http://0x7f000001/train.jsonl", "loopback", None),
    ("http://127.1/train.jsonl", "loopback", None),
    ("http://0177.0.0.1/train.jsonl", "loopback", None),
    ("http://0/", "loopback", None),
    ("http://0300.0250.1.1/x", "private", None),
    ("http://[::ffff:7f00:1]/x", "loopback", None),
    ("http://0xa9fea9fe/latest", "link-local", "link-local"),
    ("http://169.254.43518/latest", "link-local", "link-local"),
    ("http://100.64.0.1/x", "shared address", None),
    ("http://100.100.100.200/latest", "metadata", "metadata"),
    ("http://[fd00:ec2::254]/latest", "metadata", "metadata"),
    ("http://[v1.x]/x", "IPv6", "IPv6"),
]


@pytest.mark.parametrize("policy", [UrlPolicy.PUBLIC_ONLY, UrlPolicy.ALLOW_LOCAL], ids=lambda p: p.value)
@pytest.mark.parametrize(("url", "strict", "local"), URL_POLICY_CASES, ids=[c[0] for c in URL_POLICY_CASES])
def test_url_policy(facts: FakeFacts, policy: UrlPolicy, url: str, strict: str | None, local: str | None) -> None:
    expected = strict if policy is UrlPolicy.PUBLIC_ONLY else local
    new = Workspace.from_dict(T(tuning__input={"urls": [url]}))
    for old in (None, Workspace.from_dict(T())):  # CREATE, and UPDATE to this URL
        errors = errors_only(validate_workspace(new, old, facts=facts, url_policy=policy))
        if expected is None:
            assert errors == []
        else:
            assert [e.path for e in errors] == [f"{INPUT}.urls[0]"], errors
            assert expected in errors[0].message
            assert url in errors[0].message


def test_strict_url_errors_say_where_the_address_is_allowed(facts: FakeFacts) -> None:
    new = Workspace.from_dict(T(tuning__input={"urls": ["http://127.0.0.1:9/a"]}))
    default = errors_only(validate_workspace(new, facts=facts))
    assert default == errors_only(validate_workspace(new, facts=facts, url_policy=UrlPolicy.PUBLIC_ONLY))
    assert "local cluster" in default[0].message
    metadata = Workspace.from_dict(T(tuning__input={"urls": ["http://169.254.169.254/"]}))
    assert "local cluster" not in errors_only(validate_workspace(metadata, facts=facts))[0].message


def test_table_covers_every_rule_both_ways() -> None:
    assert len(CASES) >= 80
    rules = {c.rule for c in CASES}
    for rule in [
        *(str(n) for n in range(1, 15)),
        "16",
        "17",
        "18",
        "19",
        "20",
        "21",
        "22",
        "23",
        "ds",
        "dd",
        "url",
        "name",
    ]:
        accepting = [c for c in CASES if rule in c.rule.split("-") and not c.expect]
        rejecting = [c for c in CASES if rule in c.rule.split("-") and c.expect]
        if rule in ("1", "2"):
            continue  # covered jointly by the "1-2" accepting cases and their own rejecting cases
        assert rule in rules or accepting or rejecting, rule
        assert rejecting, f"no rejecting case for rule {rule}"
    # rules with an accepting case of their own
    for rule in (
        "3",
        "4",
        "5",
        "6",
        "9",
        "11",
        "12",
        "13",
        "14",
        "18",
        "19",
        "20",
        "21",
        "22",
        "23",
        "ds",
        "url",
        "name",
    ):
        assert any(c.rule == rule and not c.expect for c in CASES), f"no accepting case for rule {rule}"


def test_unknown_preset_never_reaches_fit_check(facts: FakeFacts) -> None:
    calls = []

    class Spy(FakeFacts):
        def check_fit(self, instance_type, count, preset_name):
            calls.append(preset_name)
            return super().check_fit(instance_type, count, preset_name)

    errors = validate_workspace(Workspace.from_dict(I(inference__preset__name="ghost")), facts=Spy())
    assert calls == [None]
    assert [e.path for e in errors_only(errors)] == ["inference.preset.name"]


def test_warnings_for_deprecated_and_unknown_size(facts: FakeFacts) -> None:
    problems = validate_workspace(
        Workspace.from_dict(I(inference__preset__name="deprecated-model")), facts=facts
    )
    assert any(p.severity == "warning" and "deprecated" in p.message for p in problems)
    problems = validate_workspace(Workspace.from_dict(I(inference__preset__name="org/model")), facts=facts)
    assert any(
        p.severity == "warning" and "fit not checked" in p.message and p.path == "resource.instanceType"
        for p in problems
    )
