"""Against the installed vLLM: our pods' commands parse with its parser; a bad runtime parameter stops
the server before it loads anything, naming the key, with its exit code and a termination message."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kaito.manifests import vllm as vllm_manifests
from kaito.runtime.inference import vllm_args, vllm_config, vllm_platform, vllm_server
from tests.unit.manifests import vllm_cases
from tests.vllm_lane.conftest import vllm_env

AUTO_MAX_MODEL_LEN = -1  # vLLM's value for `--max-model-len auto`: fit the context to the memory


@pytest.fixture(scope="module")
def vllm_entry_points():
    return vllm_server.import_vllm()


def test_auto_picks_vllm_where_its_cpu_build_is_installed() -> None:
    assert vllm_platform.find_vllm_build() == "cpu"
    assert vllm_platform.wants_vllm([], {}) and not vllm_platform.wants_vllm(["--engine=transformers"], {})


@pytest.mark.parametrize("case", sorted(vllm_cases.CASES))
def test_rendered_pod_commands_parse_with_this_vllm(case, vllm_entry_points) -> None:
    inputs = vllm_cases.CASES[case]
    parameters = vllm_config.RuntimeParameters(vllm={"max-model-len": 4096, "enforce-eager": True})
    launch = vllm_args.plan_launch(vllm_cases.server_args(inputs), env={}, read_parameters=lambda path: parameters)
    namespace = vllm_args.parse_vllm_args(launch, vllm_server.build_vllm_parser(vllm_entry_points))
    vllm_entry_points.validate(namespace)
    parallel = inputs.parallelism
    assert (namespace.tensor_parallel_size, namespace.pipeline_parallel_size, namespace.data_parallel_size) == (
        parallel.tensor, parallel.pipeline, parallel.data)
    assert namespace.model == inputs.preset.hf.repo and namespace.revision == inputs.preset.hf.revision
    assert namespace.served_model_name == [inputs.preset.hf.repo.split("/")[-1].lower()]
    assert namespace.gpu_memory_utilization in (0.84, 0.82) and namespace.download_dir == "/workspace/weights"
    assert namespace.kv_events_config.enable_kv_cache_events is True
    assert namespace.compilation_config.pass_config.fuse_allreduce_rms is False
    assert namespace.distributed_executor_backend == ("ray" if inputs.node_count > 1 else None)
    assert namespace.trust_remote_code is inputs.preset.trust_remote_code
    if inputs.config_map:  # the file's entries came last and typed: a switch, an int over `auto`
        assert namespace.enforce_eager is True and namespace.max_model_len == 4096
    else:
        assert namespace.enforce_eager is False and namespace.max_model_len == AUTO_MAX_MODEL_LEN
    assert namespace.port == 5000 and namespace.host == "0.0.0.0"
    assert vllm_manifests.build_container(inputs)["image"] == vllm_cases.IMAGE


def run_server(tmp_path, config_text: str, *extra: str, model: str = "kaito-test/none"
               ) -> tuple[subprocess.CompletedProcess, dict | None]:
    config = tmp_path / "inference_config.yaml"
    config.write_text(config_text)
    termination = tmp_path / "termination-log"
    done = subprocess.run(
        [sys.executable, "-m", "kaito.runtime.inference", "--engine=vllm", f"--model={model}", "--dtype=float32",
         "--adapters-dir=", f"--kaito-config-file={config}", *extra],
        capture_output=True, text=True, timeout=240, env=vllm_env({"KAITO_TERMINATION_LOG": str(termination)}))
    record = json.loads(termination.read_text()) if termination.exists() else None
    return done, record


def test_an_unknown_vllm_option_in_the_file_is_a_clear_start_up_error(tmp_path) -> None:
    done, record = run_server(tmp_path, "vllm:\n  max-num-seq: 4\n")
    assert done.returncode == 3, done.stderr
    assert "error: vllm.max-num-seq: vLLM has no option --max-num-seq (did you mean max-num-seqs?)" in done.stderr
    assert "Traceback" not in done.stderr
    assert record == {"reason": "InvalidRuntimeParameters", "field": "vllm.max-num-seq",
                      "message": "vllm.max-num-seq: vLLM has no option --max-num-seq (did you mean max-num-seqs?)",
                      "file": str(tmp_path / "inference_config.yaml")}


def test_a_mistyped_value_and_a_bad_flag_are_errors_of_their_kind(tmp_path) -> None:
    done, record = run_server(tmp_path, "vllm:\n  max-num-seqs: many\n")
    assert done.returncode == 3 and record["field"] == "vllm.max-num-seqs", done.stderr
    assert "invalid int value: 'many'" in record["message"] and "Traceback" not in done.stderr
    done, record = run_server(tmp_path, "vllm: {}\n", "--tensor-parallel-size=two")
    assert done.returncode == 2 and record["reason"] == "InvalidArguments", done.stderr
    assert "--tensor-parallel-size" in record["message"] and "Traceback" not in done.stderr


def test_a_value_vllm_refuses_for_this_model_is_blamed_on_the_file(tmp_path, vllm_model) -> None:
    """The tiny model has 512 positions: vLLM's engine configuration refuses 4096, before any engine runs."""
    done, record = run_server(tmp_path, "vllm:\n  max-model-len: 4096\n", model=vllm_model.repo_id)
    assert done.returncode == 3, done.stderr[-2000:]
    assert record["reason"] == "InvalidRuntimeParameters" and "vLLM refused the runtime parameters" in record["message"]
    assert "Traceback" not in done.stderr
