"""Workspace-level cases: inference xor tuning, the name, the behaviour annotations, node provisioning."""

from tests.unit.api.v1beta1_cases.base import (
    BYO,
    DELETE,
    NAP,
    TRANSFORMERS,
    AdmissionOptions,
    Case,
    I,
    T,
    node,
    nodes,
)

FAMILY = "metadata.annotations[kaito.sh/node-image-family]"
PERF = "metadata.annotations[kaito.sh/performance-mode]"
LOCAL = "metadata.annotations[kaito.sh/use-local-weights]"
CLASS = "metadata.annotations[kaito.sh/node-class-name]"
KARPENTER = AdmissionOptions(node_classes=("aks-azurelinux", "aks-ubuntu"))
V100 = node("test-node", "NVIDIA-V100-SXM2-16GB", "1", "16384", gpu="v100")


def annotated(**annotations: str) -> dict:
    return I(**{"metadata__annotations": annotations})


CASES = [
    # TestWorkspaceValidateCreate
    Case("TestWorkspaceValidateCreate/Neither Inference nor Tuning specified", I(inference=DELETE),
         [("inference", "neither")]),
    Case("TestWorkspaceValidateCreate/Both Inference and Tuning specified", I(tuning=T()["tuning"]),
         [("tuning", "not both")]),
    Case("TestWorkspaceValidateCreate/Only Inference specified", I()),
    Case("TestWorkspaceValidateCreate/Only Tuning specified", T()),
    Case("TestWorkspaceValidateCreate/Unsupported node image family annotation",
         annotated(**{"kaito.sh/node-image-family": "CustomLinux"}), [(FAMILY, "CustomLinux")]),
    # TestWorkspaceValidateName
    Case("TestWorkspaceValidateName/Valid name", I(metadata__name="valid-name")),
    Case("TestWorkspaceValidateName/Name with invalid characters", I(metadata__name="phi-3.5-mini"),
         [("metadata.name", "DNS-1123 label")]),
    Case("TestWorkspaceValidateName/Name start with invalid character", I(metadata__name="-mini"),
         [("metadata.name", "DNS-1123 label")]),
    # TestWorkspaceValidatePerformanceModeAnnotation
    Case("TestWorkspaceValidatePerformanceModeAnnotation/no annotation is valid", I()),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/balanced is valid",
         annotated(**{"kaito.sh/performance-mode": "balanced"})),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/interactivity is valid",
         annotated(**{"kaito.sh/performance-mode": "interactivity"})),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/throughput is valid",
         annotated(**{"kaito.sh/performance-mode": "throughput"})),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/unknown value is invalid",
         annotated(**{"kaito.sh/performance-mode": "fast"}), [(PERF, "fast")]),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/use local weights true is valid",
         annotated(**{"kaito.sh/use-local-weights": "true"})),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/use local weights false is valid",
         annotated(**{"kaito.sh/use-local-weights": "false"})),
    Case("TestWorkspaceValidatePerformanceModeAnnotation/use local weights non-boolean is invalid",
         annotated(**{"kaito.sh/use-local-weights": "yes"}), [(LOCAL, "boolean")]),
    # TestWorkspaceValidateNodeClassNameAnnotation (Karpenter provisioner with two managed NodeClasses)
    Case("TestWorkspaceValidateNodeClassNameAnnotation/no annotation is valid", I(), options=KARPENTER),
    Case("TestWorkspaceValidateNodeClassNameAnnotation/empty annotation falls back to the default",
         annotated(**{"kaito.sh/node-class-name": ""}), options=KARPENTER),
    Case("TestWorkspaceValidateNodeClassNameAnnotation/KAITO-managed NodeClass is valid",
         annotated(**{"kaito.sh/node-class-name": "aks-azurelinux"}), options=KARPENTER),
    Case("TestWorkspaceValidateNodeClassNameAnnotation/NodeClass outside the managed set is rejected",
         annotated(**{"kaito.sh/node-class-name": "someone-elses-nodeclass"}), [(CLASS, "someone-elses")],
         options=KARPENTER),
    Case("TestWorkspaceValidateNodeClassNameAnnotation/annotation is ignored when the provisioner is not karpenter",
         annotated(**{"kaito.sh/node-class-name": "someone-elses-nodeclass"}), options=NAP),
    Case("TestWorkspaceValidateNodeClassNameAnnotation/unchanged pre-existing annotation is allowed on update",
         annotated(**{"kaito.sh/node-class-name": "legacy-nodeclass"}),
         old=annotated(**{"kaito.sh/node-class-name": "legacy-nodeclass"}), options=KARPENTER),
    Case("TestWorkspaceValidateNodeClassNameAnnotation/changing to a disallowed annotation is rejected on update",
         annotated(**{"kaito.sh/node-class-name": "someone-elses-nodeclass"}), [(CLASS, "someone-elses")],
         old=I(), options=KARPENTER),
    # TestWorkspaceValidateNAPFeatureGate
    Case("TestWorkspaceValidateNAPFeatureGate/NAP enabled - instanceType required", I(resource__instanceType=DELETE),
         [("resource.instanceType", "required")]),
    Case("TestWorkspaceValidateNAPFeatureGate/NAP enabled - instanceType provided (valid)", I()),
    Case("TestWorkspaceValidateNAPFeatureGate/NAP disabled - instanceType must be empty",
         I(resource__labelSelector={"matchLabels": {"gpu": "v100"}}), [("resource.instanceType", "must be empty")],
         options=BYO, reads=nodes(V100)),
    Case("TestWorkspaceValidateNAPFeatureGate/NAP disabled - instanceType empty (valid)",
         I(resource__instanceType=DELETE, resource__labelSelector={"matchLabels": {"gpu": "v100"}}),
         options=BYO, reads=nodes(V100)),
    # Not a KAITO case: an unknown runtime is run as the preset's default, and said so.
    Case("ours/runtime annotation names a runtime the preset lacks",
         I(TRANSFORMERS, inference__preset__name="test-validation-static")),
]
