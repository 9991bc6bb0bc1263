"""`resource` on CREATE: SKUs, BYO nodes, GPU memory, partitions, deprecated models."""

from kaito.api.admission import ClusterReads
from tests.unit.api.v1beta1_cases.base import (
    BYO,
    DELETE,
    MIG,
    TRANSFORMERS,
    Case,
    I,
    T,
    node,
    nodes,
)

BYO_IT = {"resource.instanceType": DELETE}
SEL = "resource.labelSelector"
PART = "resource.partition"
A100 = node("node-a100-1", "NVIDIA-A100-SXM4-80GB", "1", "81920", gpu="a100")
H100 = [node(f"node-h100-{i}", "NVIDIA-H100-SXM5-94GB", "2", "96256", gpu="h100") for i in (1, 2)]
V100 = [node(f"node-v100-{i}", "NVIDIA-V100-SXM2-16GB", "1", "16384", gpu="v100") for i in (1, 2)]
NO_PRODUCT = node("n", None, "1", "16384", gpu="v100")
NO_COUNT = node("n", "NVIDIA-V100-SXM2-16GB", None, "16384", gpu="v100")
NO_MEMORY = node("n", "NVIDIA-V100-SXM2-16GB", "1", None, gpu="v100")
MIXED = [node("node-v100", "NVIDIA-V100-SXM2-16GB", "1", "16384", workload="gpu"),
         node("node-a100", "NVIDIA-A100-SXM4-80GB", "1", "81920", workload="gpu")]
T4 = node("node-t4", "NVIDIA-T4-16GB", "1", "8192", gpu="t4")
TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def partition(**part) -> dict:
    return I(BYO_IT, resource__partition=part)


F = "TestResourceSpecValidateCreate/"
CASES = [
    Case(F + "Valid Resource", I(resource__instanceType="Standard_ND96asr_v4",
                                 inference__preset__name="test-validation-152")),
    Case(F + "Valid Resource - SKU Capacity == Model Requirement", I(inference__preset__name="test-validation-16")),
    Case(F + "Invalid SKU", I(resource__instanceType="Standard_invalid_sku"),
         [("resource.instanceType", "Unsupported instance type")]),
    Case(F + "Only Template set", I(inference={"template": TEMPLATE})),
    Case(F + "N-Prefix SKU", I(resource__instanceType="Standard_Nsku")),
    Case(F + "D-Prefix SKU", I(resource__instanceType="Standard_Dsku")),
    Case(F + "Tuning validation with single node", T(resource__instanceType="Standard_NV36ads_A10_v5")),
    Case(F + "Tuning validation with multinode", T(resource__instanceType="Standard_NV36ads_A10_v5", resource__count=2),
         [("resource.count", "single node")]),
    # KAITO leaves the unknown name to the inference rules; so do we (nothing on resource.*).
    Case(F + "Invalid Preset Name", I(resource__count=2, inference__preset__name="Invalid-Preset-Name"),
         [("inference.preset.name", "unsupported")], absent=["resource.instanceType", "resource.count"]),
    Case(F + "vLLM + Distributed Inference",
         I(resource__count=4, inference__preset__name="test-validation-download",
           inference__preset__presetOptions={"modelAccessSecret": "hf"})),
    Case(F + "Valid single A100 node with sufficient GPU memory",
         I(BYO_IT, resource__labelSelector={"matchLabels": {"gpu": "a100"}}), options=BYO, reads=nodes(A100)),
    Case(F + "Valid multiple H100 nodes with uniform configuration",
         I(BYO_IT, resource__count=2, resource__labelSelector={"matchLabels": {"gpu": "h100"}}),
         options=BYO, reads=nodes(*H100)),
    Case(F + "Invalid - no nodes matching label selector in BYO",
         I(BYO_IT, resource__labelSelector={"matchLabels": {"gpu": "nonexistent"}}), [(SEL, "no node matches")],
         options=BYO, reads=nodes()),
    Case(F + "Invalid - missing GPU product label", I(BYO_IT), [(SEL, "NVIDIA GPU labels")], options=BYO,
         reads=nodes(NO_PRODUCT)),
    Case(F + "Invalid - missing GPU count label", I(BYO_IT), [(SEL, "NVIDIA GPU labels")], options=BYO,
         reads=nodes(NO_COUNT)),
    Case(F + "Invalid - missing GPU memory label", I(BYO_IT), [(SEL, "NVIDIA GPU labels")], options=BYO,
         reads=nodes(NO_MEMORY)),
    Case(F + "Invalid - non-uniform GPU products", I(BYO_IT, resource__count=2), [(SEL, "differ in GPUs")],
         options=BYO, reads=nodes(*MIXED)),
    Case(F + "Invalid - insufficient GPU memory for non-distributed model", I(BYO_IT, TRANSFORMERS),
         [(SEL, "Insufficient total GPU memory")], options=BYO, reads=nodes(T4)),
    Case(F + "Valid - distributed model on nodes with sufficient combined memory",
         I(BYO_IT, resource__count=2, inference__preset__name="test-validation-download",
           inference__preset__presetOptions={"modelAccessSecret": "hf"}), options=BYO, reads=nodes(*V100)),
    Case(F + "Invalid - missing labelSelector for BYO mode", I(BYO_IT, resource__labelSelector={"matchLabels": {}}),
         [(SEL, "no node matches")], options=BYO, reads=nodes()),
    Case(F + "Invalid - matchLabels only contains reserved KAITO labels",
         I(BYO_IT, resource__labelSelector={"matchLabels": {"kaito.sh/workspace": "ws1",
                                                            "kaito.sh/workspacenamespace": "ns1"}}),
         [(SEL + ".matchLabels", "reserved")], options=BYO, reads=nodes()),
    Case(F + "Deprecated Model", I(inference__preset__name="phi-2"), [("inference.preset.name", "deprecated")]),
    Case(F + "Empty TotalSafeTensorFileSize skips GPU memory validation",
         I(TRANSFORMERS, inference__preset__name="test-validation")),
    Case(F + "Valid TotalSafeTensorFileSize with sufficient memory passes",
         I(TRANSFORMERS, inference__preset__name="test-validation-1")),
    # Not KAITO cases: what the memory rule does where KAITO's table does not look.
    Case("ours/too big for the SKU on transformers", I(TRANSFORMERS, inference__preset__name="test-large-model"),
         [("resource.instanceType", "Insufficient total GPU memory"), ("resource.instanceType", "more than one node")]),
    Case("ours/too big for one node runs on vLLM by default", I(inference__preset__name="test-large-model")),
    Case("ours/bypass-resource-checks turns the memory refusal into a warning",
         I(inference__preset__name="test-large-model",
           metadata__annotations={"kaito.sh/runtime": "transformers", "kaito.sh/bypass-resource-checks": ""}),
         [("resource.instanceType", "more than one node")]),
    # TestValidateMIGModelFit (BYO nodes, enableMIG)
    Case("TestValidateMIGModelFit/model fits within the MIG slice",
         partition(mode="mig", profile="2g.24gb") | {"inference": {"preset": {"name": "test-validation-8"}}},
         options=MIG, reads=ClusterReads()),
    Case("TestValidateMIGModelFit/model exceeds the MIG slice",
         partition(mode="mig", profile="1g.10gb") | {"inference": {"preset": {"name": "test-large-model"}}},
         [(PART, "exceed the 1g.10gb MIG slice")], options=MIG, reads=ClusterReads()),
    Case("TestValidateMIGModelFit/bypass annotation allows an oversized model",
         partition(mode="mig", profile="1g.10gb") | {"inference": {"preset": {"name": "test-large-model"}}}
         | {"metadata": {"name": "ws", "namespace": "kaito", "annotations": {"kaito.sh/bypass-resource-checks": "true"}}},
         options=MIG, reads=ClusterReads()),
    # TestValidatePartition
    Case("TestValidatePartition/accelerator with valid count", partition(mode="accelerator", count=2), options=MIG),
    Case("TestValidatePartition/accelerator missing count", partition(mode="accelerator"), [(PART + ".count", "required")],
         options=MIG),
    Case("TestValidatePartition/accelerator with profile set", partition(mode="accelerator", count=2, profile="1g.10gb"),
         [(PART + ".profile", "not valid for accelerator")], options=MIG),
    Case("TestValidatePartition/mig with valid profile", partition(mode="mig", profile="1g.10gb")
         | {"inference": {"preset": {"name": "test-validation-8"}}}, options=MIG),
    Case("TestValidatePartition/mig with count set", partition(mode="mig", profile="1g.10gb", count=2),
         [(PART + ".count", "only valid for accelerator")], options=MIG),
    Case("TestValidatePartition/unsupported mode", partition(mode="bogus"), [(PART + ".mode", "mig")], options=MIG),
    Case("ours/partition needs BYO nodes", I(resource__partition={"mode": "mig", "profile": "1g.10gb"}),
         [(PART, "bring-your-own")]),
    Case("ours/partition gate off", partition(mode="mig", profile="1g.10gb"), [(PART, "enableMIG")], options=BYO),
    Case("ours/partition on tuning", T(resource__partition={"mode": "accelerator", "count": 1}),
         [(PART, "not supported for tuning")]),
]
