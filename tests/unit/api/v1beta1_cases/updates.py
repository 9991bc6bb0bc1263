"""UPDATE cases: toggles, immutable fields, the instanceType rule under each kind of provisioning."""

from tests.unit.api.v1beta1_cases.base import BYO, DELETE, Case, I, T, adapters

R = "TestResourceSpecValidateUpdate/"
TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
V100 = {"matchLabels": {"gpu": "v100"}}
IT = "resource.instanceType"

CASES = [
    Case(R + "Immutable Count", I(resource__count=10), [("resource.count", "immutable")], old=I(resource__count=5)),
    Case(R + "NAP enabled - change instanceType (invalid)", I(resource__instanceType="Standard_NC24ads_A100_v4"),
         [(IT, "cannot change")], old=I()),
    Case(R + "NAP enabled - clear instanceType (invalid)", I(resource__instanceType=DELETE), [(IT, "required")],
         old=I()),
    Case(R + "NAP enabled - set instanceType initially (valid)", I(), old=I(resource__instanceType=DELETE)),
    Case(R + "NAP enabled - keep same instanceType (valid)", I(), old=I()),
    Case(R + "NAP disabled - clear instanceType (valid upgrade path)",
         I(resource__instanceType=DELETE, resource__labelSelector=V100), old=I(resource__labelSelector=V100),
         options=BYO),
    Case(R + "NAP disabled - keep instanceType set (backward compatibility)", I(), old=I(), options=BYO),
    Case(R + "NAP disabled - change to different instanceType (invalid)",
         I(resource__instanceType="Standard_NC24ads_A100_v4"), [(IT, "cannot change")], old=I(), options=BYO),
    Case(R + "NAP disabled - instanceType already empty (valid)", I(resource__instanceType=DELETE),
         old=I(resource__instanceType=DELETE), options=BYO),
    Case(R + "Immutable LabelSelector", I(resource__labelSelector={"matchLabels": {"key1": "value1"}}),
         [("resource.labelSelector", "immutable")], old=I(resource__labelSelector={"matchLabels": {"key2": "value2"}})),
    Case(R + "Valid Update with all fields unchanged", I(resource__count=5), old=I(resource__count=5)),
    Case("ours/partition is immutable", I(resource__instanceType=DELETE, resource__partition={"mode": "mig",
                                                                                               "profile": "2g.20gb"}),
         [("resource.partition", "immutable")],
         old=I(resource__instanceType=DELETE, resource__partition={"mode": "mig", "profile": "1g.10gb"}), options=BYO),
    # TestInferenceSpecValidateUpdate
    Case("TestInferenceSpecValidateUpdate/Preset Immutable", I(inference__preset__name="test-validation-16"),
         [("inference.preset", "immutable")], old=I()),
    Case("TestInferenceSpecValidateUpdate/Template Unset", I(), [("inference.template", "cannot be unset")],
         old=I(inference={"template": TEMPLATE})),
    Case("TestInferenceSpecValidateUpdate/Template Set", I(inference={"template": TEMPLATE}),
         [("inference.template", "cannot be set")], old=I()),
    Case("TestInferenceSpecValidateUpdate/Template Set with duplicate adapters",
         I(inference={"template": TEMPLATE, "adapters": adapters(1) + adapters(1)}),
         [("inference.template", "cannot be set"), ("inference.adapters[1].source.name", "duplicate")], old=I()),
    Case("TestInferenceSpecValidateUpdate/Valid Update", I(inference={"template": TEMPLATE}),
         old=I(inference={"template": TEMPLATE})),
    # TestWorkspaceValidateUpdate
    Case("TestWorkspaceValidateUpdate/Inference toggled on", I(), [("inference", "toggled")],
         old=I(inference=DELETE, tuning=T()["tuning"])),
    Case("TestWorkspaceValidateUpdate/Inference toggled off", I(inference=DELETE, tuning=T()["tuning"]),
         [("inference", "toggled")], old=I()),
    Case("TestWorkspaceValidateUpdate/Tuning toggled on", T(), [("tuning", "toggled")],
         old=T(tuning=DELETE, inference=I()["inference"])),
    Case("TestWorkspaceValidateUpdate/Tuning toggled off", T(tuning=DELETE, inference=I()["inference"]),
         [("tuning", "toggled")], old=T()),
    Case("TestWorkspaceValidateUpdate/No toggling", T(), old=T()),
    Case("TestWorkspaceValidateUpdate/Upgrade scenario - v0.7 workspace with instanceType when disableNAP=true",
         I(resource__instanceType=DELETE, resource__labelSelector={"matchLabels": {"gpu": "nvidia"}}),
         old=I(resource__labelSelector={"matchLabels": {"gpu": "nvidia"}}), options=BYO),
    # TestTuningSpecValidateUpdate
    Case("TestTuningSpecValidateUpdate/No changes", T(), old=T()),
    Case("TestTuningSpecValidateUpdate/Preset changed", T(tuning__preset__name="invalid-preset"),
         [("tuning.preset", "cannot be changed")], old=T()),
    Case("TestTuningSpecValidateUpdate/Method changed", T(tuning__method="qlora"),
         [("tuning.method", "cannot be changed")], old=T()),
    # TestDataSourceValidateUpdate
    # KAITO checks only the name and the image on UPDATE; we run the CREATE rules on a changed source.
    Case("TestDataSourceValidateUpdate/No changes",
         T(tuning__input={"urls": ["http://example.com/data2", "http://example.com/data1"], "image": "data-image:latest"}),
         [("tuning.input", "exactly one of")],
         old=T(tuning__input={"urls": ["http://example.com/data1", "http://example.com/data2"],
                              "image": "data-image:latest"}), differs="source-rules-on-update"),
    Case("TestDataSourceValidateUpdate/Name changed", T(tuning__input__name="new-dataset"),
         [("tuning.input.name", "cannot be changed")], old=T(tuning__input__name="original-dataset")),
    Case("TestDataSourceValidateUpdate/Invalid image", T(tuning__input={"image": "!ValidImage"}),
         [("tuning.input.image", "invalid input image reference")], old=T(tuning__input={"image": "data:1"})),
    # TestDataDestinationValidateUpdate
    Case("TestDataDestinationValidateUpdate/No changes",
         T(tuning__output={"image": "old-image:latest", "imagePushSecret": "old-secret"}),
         old=T(tuning__output={"image": "old-image:latest", "imagePushSecret": "old-secret"})),
    Case("TestDataDestinationValidateUpdate/Invalid image",
         T(tuning__output={"image": "!ValidImage", "imagePushSecret": "imagePushSecret"}),
         [("tuning.output.image", "invalid output image")], old=T()),
]
