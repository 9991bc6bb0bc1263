"""The command lines we build are ones our runtime accepts, with the meaning we intend.

The manifests room may not import the runtime; tests may. Parsing our own argv with the runtime's
real argument parsers catches a renamed or removed flag before a pod crash-loops on a cluster.
"""

from __future__ import annotations

import pytest

from kaito.catalog.presets import all_presets
from kaito.manifests import inference, inference_command, tuning
from tests.unit.manifests import cases

server_settings = pytest.importorskip("kaito.runtime.inference.settings")
tune_settings = pytest.importorskip("kaito.runtime.tuning.settings")

# Presets our transformers runtime serves; the vLLM command line's contract is vLLM's (issue 12).
SERVED = [p for p in all_presets() if "transformers" in p.runtimes]


@pytest.mark.parametrize("preset", SERVED, ids=lambda p: p.name)
def test_inference_args_parse_in_the_model_server(preset) -> None:
    engine = "transformers"
    ws = cases.workspace("inference-adapters-phi-3")
    container = inference.build_container(inference.InferenceInputs(workspace=ws, preset=preset, engine=engine))
    settings = server_settings.build_settings(container["args"], env={})
    assert settings.model == preset.hf.repo
    assert settings.revision == (preset.hf.revision or "main")
    assert settings.served_model_name == preset.name
    assert settings.engine == engine and settings.device == "cuda" and settings.port == 5000
    assert settings.adapters_dir is not None and str(settings.adapters_dir) == "/mnt/adapter"
    assert settings.trust_remote_code is preset.trust_remote_code
    assert settings.model_kwargs == {}, "a preset flag fell through to from_pretrained"


@pytest.mark.parametrize("case", ["tuning-urls-to-image", "tuning-image-to-volume", "tuning-volume-to-image"])
def test_trainer_args_parse_in_the_trainer(case: str) -> None:
    from kaito.catalog.presets import get_preset

    ws = cases.workspace(case)
    preset = get_preset(ws.tuning.preset.name)
    job = tuning.build_job(tuning.TuningInputs(workspace=ws, preset=preset))
    spec = job["spec"]["template"]["spec"]
    trainer = next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == ws.name)
    settings = tune_settings.compute_settings(trainer["args"], environ={})
    assert settings.model == preset.hf.repo and settings.revision == preset.hf.revision
    assert str(settings.output) == "/mnt/results"
    assert settings.method == (ws.tuning.method or "lora")
    assert settings.overrides["ModelConfig.local_files_only"] is False
    if ws.tuning.input.urls:
        assert settings.data == ws.tuning.input.urls
    else:
        assert settings.data == ["/mnt/data"]


def test_the_inference_config_file_flag_is_the_runtimes(tmp_path) -> None:
    ws = cases.workspace("inference-v1beta1-config-and-token")
    preset = next(p for p in SERVED if p.name == "llama-3.1-8b-instruct")
    container = inference.build_container(inference.InferenceInputs(workspace=ws, preset=preset, engine="transformers"))
    args, extra = server_settings.build_parser().parse_known_args(container["args"])
    assert args.config_file == inference_command.CONFIG_FILE == "/mnt/config/inference_config.yaml"
    assert not [e for e in extra if "config" in e]
    # What the mounted ConfigMap holds reaches the settings: vllm.max-model-len overrides the flag.
    mounted = tmp_path / "inference_config.yaml"
    mounted.write_text("vllm:\n  max-model-len: 1024\n  cpu-offload-gb: 0\n")
    argv = [a if not a.startswith("--kaito-config-file") else f"--kaito-config-file={mounted}" for a in container["args"]]
    settings = server_settings.build_settings(argv, env={})
    assert settings.max_model_len == 1024 and settings.runtime_params == {"cpu-offload-gb": "0"}
    assert settings.model_kwargs == {}
