"""Inference rules (7–13), adapters on create (22) and volume adapters (v0.12)."""

from tests.unit.api.validation_cases.base import (
    ADAPTERS,
    TEMPLATE,
    Case,
    I,
    adapter,
)

CASES = [
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
]
