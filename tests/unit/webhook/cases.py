"""Admission cases for the webhook tests: (id, operation, object, old object, expect allowed).

Built with the api engineer's factories and fake facts (`tests/unit/api`), so the webhook is
checked on the same shapes as the rule table; the expected messages are always computed by
calling `kaito.api` directly, never written here.
"""

from __future__ import annotations

from tests.unit.api import factories as f

CASES = [
    ("valid-inference", "CREATE", f.inference_ws(), None, True),
    ("valid-tuning-lora", "CREATE", f.tuning_ws(), None, True),
    ("neither-inference-nor-tuning", "CREATE", f.inference_ws(**{"inference": f.DELETE}), None, False),
    ("both-inference-and-tuning", "CREATE",
     f.inference_ws(**{"tuning": f.tuning_ws()["tuning"]}), None, False),
    ("unknown-preset", "CREATE", f.inference_ws(**{"inference.preset.name": "no-such-model"}), None, False),
    ("bad-instance-type", "CREATE", f.inference_ws(**{"resource.instanceType": "Bad_SKU"}), None, False),
    ("too-small-sku", "CREATE", f.inference_ws(**{"resource.instanceType": "Standard_NC6"}), None, False),
    ("private-without-image", "CREATE",
     f.inference_ws(**{"inference.preset.name": "private-test-validation",
                       "inference.preset.accessMode": "private"}), None, False),
    ("tuning-bad-method", "CREATE", f.tuning_ws(**{"tuning.method": "full"}), None, False),
    ("tuning-uppercase-output-repo", "CREATE",
     f.tuning_ws(**{"tuning.output.image": "registry.example.com/Adapters/OUT:1"}), None, False),
    ("unknown-field", "CREATE", f.inference_ws(**{"resource.gpus": 3}), None, False),
    ("update-no-change", "UPDATE", f.inference_ws(), f.inference_ws(), True),
    ("update-instance-type-immutable", "UPDATE",
     f.inference_ws(**{"resource.instanceType": "Standard_ND96asr_v4"}), f.inference_ws(), False),
    ("update-preset-immutable", "UPDATE",
     f.inference_ws(**{"inference.preset.name": "fit-8gpu"}), f.inference_ws(), False),
    ("update-tuning-method-immutable", "UPDATE", f.tuning_ws(**{"tuning.method": "qlora"}), f.tuning_ws(), False),
    ("update-toggle-inference-off", "UPDATE",
     f.tuning_ws(), f.tuning_ws(**{"inference": f.inference_ws()["inference"]}), False),
]
