"""`inference` on CREATE: preset or template, adapters and the runtime, `inference.config`, access secrets."""

from kaito.api.admission import ClusterReads
from tests.unit.api.v1beta1_cases.base import TRANSFORMERS, Case, I, adapters

ADAPTERS = "inference.adapters"
TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
CONFIGS = ClusterReads(configmaps={
    ("kaito", "valid-config"): {"inference_config.yaml": "a: b"},
    ("kaito", "missing-key-config"): {"other_key": "some value"},
    ("kaito", "in-limit"): {"inference_config.yaml": "vllm:\n  max-model-len: 2048\n"},
    ("kaito", "over-limit"): {"inference_config.yaml": "vllm:\n  max-model-len: 8192\n"},
    ("kaito", "nested"): {"inference_config.yaml": "vllm:\n  compilation-config: {level: 3}\n"},
}, complete=True)
VOLUME_ADAPTERS = [{"source": {"name": f"adapter-{i}", "volumeSource": {
    "persistentVolumeClaim": {"claimName": f"pvc-adapter-{i}"}}}} for i in (1, 2)]
SECRET = {"modelAccessSecret": "test-secret"}

F = "TestInferenceSpecValidateCreate/"
A = "TestAdapterSpecValidateCreateorUpdate/"
CASES = [
    Case(F + "Invalid Preset Name", I(inference__preset__name="Invalid-Preset-Name"),
         [("inference.preset.name", "unsupported inference preset name")]),
    Case(F + "Only Template set", I(inference={"template": TEMPLATE})),
    Case(F + "Preset and Template Unset", I(inference={}), [("inference", "either preset or template")]),
    Case(F + "Preset and Template Set", I(inference__template=TEMPLATE), [("inference.template", "at the same time")]),
    Case(F + "Adapeters more than 10", I(inference__adapters=adapters(11, strength="0.5")),
         [(ADAPTERS, "exceeds the maximum of 10")]),
    Case(F + "Valid with adapters/vllm", I(inference__adapters=adapters(2))),
    Case(F + "Valid with adapters/transformers", I(TRANSFORMERS, inference__adapters=adapters(2, strength="0.5"))),
    Case(F + "Valid with volume adapters/vllm", I(inference__adapters=VOLUME_ADAPTERS)),
    Case(F + "Adapters with strength/vllm", I(inference__adapters=adapters(2, strength="0.5")),
         [(ADAPTERS + "[0].strength", "vLLM runtime does not support adapter strength")]),
    Case(F + "Adapters names are duplicated", I(inference__adapters=adapters(2, name="Adapter")),
         [(ADAPTERS + "[1].source.name", "duplicate")]),
    Case(F + "Valid Preset", I()),
    Case(F + "Config specified with valid ConfigMap", I(inference__config="valid-config"), reads=CONFIGS),
    Case(F + "download model at runtime with access secret",
         I(inference__preset={"name": "test-validation-download", "presetOptions": SECRET})),
    # KAITO refuses; we admit with a warning on the field (the weights may already be on the node).
    Case(F + "download model at runtime but no access secret", I(inference__preset__name="test-validation-download"),
         differs="gated-model-without-secret"),
    # KAITO's "packaged weights" preset is ours with weights in the user's image: a private preset.
    Case(F + "Preset with model weights packaged but with access secret",
         I(inference__preset={"name": "test-validation-packaged", "accessMode": "private",
                              "presetOptions": {"image": "registry.example.com/m:1", **SECRET}}),
         [("inference.preset.presetOptions.modelAccessSecret", "does not use a modelAccessSecret")]),
    # TestInferenceConfigMapValidation (model token limit 4096)
    Case("TestInferenceConfigMapValidation/Valid max-model-len within ModelTokenLimit",
         I(inference__preset__name="test-validation", inference__config="in-limit"), reads=CONFIGS),
    Case("TestInferenceConfigMapValidation/max-model-len exceeds ModelTokenLimit",
         I(inference__preset__name="test-validation", inference__config="over-limit"),
         [("inference.config", "exceeds the model's context window of 4096")], reads=CONFIGS),
    Case("ours/config map missing", I(inference__config="nope"), [("inference.config", "does not exist")], reads=CONFIGS),
    Case("ours/config map without the key", I(inference__config="missing-key-config"),
         [("inference.config", "no key 'inference_config.yaml'")], reads=CONFIGS),
    Case("ours/config map vllm value not a scalar", I(inference__config="nested"),
         [("inference.config", "single value")], reads=CONFIGS),
    # TestAdapterSpecValidateCreateorUpdate (run on CREATE too: see README)
    Case(A + "Missing Source", I(TRANSFORMERS, inference__adapters=[{"strength": "0.5"}]),
         [(ADAPTERS + "[0].source", "required")]),
    Case(A + "Missing Source Name",
         I(TRANSFORMERS, inference__adapters=[{"source": {"image": "fake.kaito.com/kaito-image:0.0.1"}, "strength": "0.5"}]),
         [(ADAPTERS + "[0].source.name", "must be specified")]),
    Case(A + "Invalid Strength, not a number", I(TRANSFORMERS, inference__adapters=adapters(1, strength="invalid")),
         [(ADAPTERS + "[0].strength", "not a number")]),
    Case(A + "Invalid Strength, larger than 1", I(TRANSFORMERS, inference__adapters=adapters(1, strength="1.5")),
         [(ADAPTERS + "[0].strength", "between 0 and 1")]),
    Case(A + "Invalid Source Name, longer than 253",
         I(TRANSFORMERS, inference__adapters=adapters(1, strength="0.5", name="Adapter1" * 32)),
         [(ADAPTERS + "[0].source.name", "DNS subdomain")]),
    Case(A + "Valid Adapter", I(inference__adapters=adapters(1, name="adapter-{}"))),
    Case(A + "Valid Adapter with Volume source",
         I(TRANSFORMERS, inference__adapters=[{"source": {"name": "adapter-1", "volumeSource": {
             "persistentVolumeClaim": {"claimName": "test-pvc"}}}, "strength": "0.5"}])),
    Case(A + "Missing both Image and Volume",
         I(TRANSFORMERS, inference__adapters=[{"source": {"name": "adapter-1"}, "strength": "0.5"}]),
         [(ADAPTERS + "[0].source.image", "image or volumeSource")]),
    Case(A + "Adapter with unsupported URLs source",
         I(TRANSFORMERS, inference__adapters=[{"source": {"name": "adapter-1", "urls": ["https://example.com/a.bin"]},
                                               "strength": "0.5"}]),
         [(ADAPTERS + "[0].source.urls", "not supported")]),
]
