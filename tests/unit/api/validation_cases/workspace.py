"""Workspace-level and resource rules (rules 1–6, DNS name, selectors, SKU fit)."""

from tests.unit.api.validation_cases.base import (
    BOTH,
    DELETE,
    EXPR_IN1,
    EXPR_IN2,
    EXPR_NOTIN,
    NEITHER,
    SEL,
    TEMPLATE,
    Case,
    I,
    P,
    T,
)

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
]
