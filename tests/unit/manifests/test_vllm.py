"""KAITO v0.12's vLLM pods: golden files, KAITO's sizing rules, and the command parsed by our runtime.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/unit/manifests/test_vllm.py` and review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kaito.manifests import vllm, vllm_command, workspace
from tests.unit.manifests import vllm_cases

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "vllm"
vllm_args = pytest.importorskip("kaito.runtime.inference.vllm_args")
vllm_config = pytest.importorskip("kaito.runtime.inference.vllm_config")
multinode = pytest.importorskip("kaito.runtime.inference.multinode")


@pytest.mark.parametrize("case", sorted(vllm_cases.CASES))
def test_rendered_objects_match_golden(case: str) -> None:
    text = workspace.dump_yaml(vllm.build_vllm_objects(vllm_cases.CASES[case]))
    path = GOLDEN_DIR / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_case() -> None:
    # controller-*.yaml beside them are the controller's plans (tests/unit/controller/test_vllm_plan.py)
    assert {p.stem for p in GOLDEN_DIR.glob("*.yaml") if not p.stem.startswith("controller-")} == set(vllm_cases.CASES)


@pytest.mark.parametrize("gpus, nodes, weights, gpu_memory, expected", [
    (1, 1, 7.0, 80.0, vllm_command.Parallelism()),
    (4, 1, 7.0, 80.0, vllm_command.Parallelism(data=4)),  # 7 × 2 < 80: a whole copy per GPU
    (4, 1, 40.0, 80.0, vllm_command.Parallelism(tensor=4)),  # 40 × 2 is not < 80
    (4, 1, None, None, vllm_command.Parallelism(tensor=4)),  # unknown sizes: shard
    (2, 3, 7.0, 24.0, vllm_command.Parallelism(tensor=2, pipeline=3)),
])
def test_parallelism_follows_kaito(gpus, nodes, weights, gpu_memory, expected) -> None:
    assert vllm_command.plan_parallelism(gpus_per_node=gpus, node_count=nodes, weights_gib=weights,
                                         gpu_memory_gib=gpu_memory) == expected


@pytest.mark.parametrize("weights, budget_min", [(None, 30), (7.15, 30), (100, 45), (1000, 180)])
def test_startup_budget_follows_kaito(weights, budget_min) -> None:
    assert vllm.compute_startup_budget_s(weights) == budget_min * 60
    probes = vllm.build_probes(vllm_cases.CASES["vllm-single-gpu"])
    assert probes["startupProbe"]["failureThreshold"] == 180  # phi-4-mini (7 GiB): 30 min / 10 s


def launch_of(inputs: vllm.VllmInputs):
    def read(path: str):
        assert path == "/mnt/config/inference_config.yaml"
        return vllm_config.RuntimeParameters(vllm={"max-model-len": 4096})

    return vllm_args.plan_launch(vllm_cases.server_args(inputs), env={}, read_parameters=read)


@pytest.mark.parametrize("case", sorted(vllm_cases.CASES))
def test_the_command_parses_in_our_runtime(case: str) -> None:
    inputs = vllm_cases.CASES[case]
    launch = launch_of(inputs)
    preset = inputs.preset
    settings = launch.settings
    assert settings.engine == "vllm" and settings.port == 5000 and settings.host == "0.0.0.0"
    assert settings.model == preset.hf.repo and settings.revision == (preset.hf.revision or "main")
    assert settings.served_model_name == preset.hf.repo.split("/")[-1].lower()
    assert settings.trust_remote_code is preset.trust_remote_code
    assert "--max-model-len=auto" in launch.ours
    assert (launch.config_file is not None) is (inputs.config_map is not None)
    assert str(settings.adapters_dir) == "/mnt/adapter"  # KAITO's default; named when there are adapters
    assert ("--adapters-dir=/mnt/adapter" in vllm_cases.server_args(inputs)) is bool(inputs.adapters)
    passthrough = dict(token.removeprefix("--").split("=", 1) for token in launch.passthrough)
    parallel = inputs.parallelism
    assert passthrough["tensor-parallel-size"] == str(parallel.tensor)
    assert passthrough.get("data-parallel-size", "1") == str(parallel.data)
    assert passthrough.get("pipeline-parallel-size", "1") == str(parallel.pipeline)
    assert passthrough["download-dir"] == "/workspace/weights"
    assert passthrough["kv-events-config"] == '{"enable_kv_cache_events":true}'
    assert launch.kv_cache_cpu_memory_utilization == (0 if parallel.cpu_kv_offload_off else 0.5)
    assert not any(t.startswith("--kaito-") for t in launch.passthrough), "a KAITO flag reached vLLM"


def test_multi_node_probes_run_our_probe_command() -> None:
    inputs = vllm_cases.CASES["vllm-multi-node"]
    container = vllm.build_container(inputs)
    for probe, mode in (("startupProbe", "readiness"), ("livenessProbe", "liveness"), ("readinessProbe", "readiness")):
        command = container[probe]["exec"]["command"]
        assert command[:3] == ["python", "-m", "kaito.runtime.inference.multinode"]
        parsed = multinode.build_parser().parse_args(command[3:])
        assert parsed.command == "probe" and parsed.mode == mode and parsed.port == 5000
    assert {"name": "POD_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}} in container["env"]


def test_builders_do_not_share_or_mutate() -> None:
    inputs = vllm_cases.CASES["vllm-adapters"]
    before = repr(inputs)
    first, second = vllm.build_vllm_objects(inputs), vllm.build_vllm_objects(inputs)
    assert first == second and repr(inputs) == before
    first[2]["spec"]["template"]["spec"]["volumes"].clear()
    assert second[2]["spec"]["template"]["spec"]["volumes"]
