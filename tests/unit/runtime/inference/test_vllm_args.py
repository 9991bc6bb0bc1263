"""The vLLM command line without vLLM: our flags mapped, vLLM's passed through, the file typed by option kind.

A small argparse parser with the option kinds vLLM uses (switches with `--no-`, plain switches, ints,
lists, JSON configs) stands in for vLLM's; the vLLM lane runs the same paths against the real one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from kaito.runtime.inference import vllm_args, vllm_config
from kaito.runtime.inference.startup_errors import ArgumentsError, RuntimeConfigError


class FakeVllmParser(argparse.ArgumentParser):
    def __init__(self) -> None:
        super().__init__(allow_abbrev=False, exit_on_error=False)
        self.add_argument("--model")
        self.add_argument("--served-model-name", nargs="+")
        self.add_argument("--host")
        self.add_argument("--port", type=int)
        self.add_argument("--uvicorn-log-level")
        self.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
        self.add_argument("--max-model-len")
        self.add_argument("--max-num-seqs", type=int)
        self.add_argument("--enable-lora", action=argparse.BooleanOptionalAction)
        self.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction)
        self.add_argument("--disable-log-stats", action="store_true")
        self.add_argument("--max-loras", type=int)
        self.add_argument("--max-lora-rank", type=int, choices=[1, 8, 16, 32, 64])
        self.add_argument("--lora-modules", nargs="+")
        self.add_argument("--tensor-parallel-size", type=int)
        self.add_argument("--kv-events-config", type=json.loads)
        self.add_argument("--compilation-config", type=json.loads)

    def error(self, message):  # vllm_server's parser raises the same way
        raise vllm_args.VllmParseError(message)


@pytest.fixture
def parser() -> FakeVllmParser:
    return FakeVllmParser()


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / vllm_config.CONFIG_KEY
    path.write_text(text)
    return path


@pytest.mark.parametrize("key, value, tokens", [
    ("enforce-eager", True, ["--enforce-eager"]),  # KAITO would send `--enforce-eager True`
    ("enforce_eager", False, ["--no-enforce-eager"]),
    ("enforce-eager", "true", ["--enforce-eager"]),
    ("disable-log-stats", False, []),  # a plain switch is off unless given
    ("max-num-seqs", 8, ["--max-num-seqs=8"]),
    ("max_model_len", "auto", ["--max-model-len=auto"]),
    ("lora-modules", ["a=/x", "b=/y"], ["--lora-modules", "a=/x", "b=/y"]),
    ("kv-events-config", {"enable_kv_cache_events": True}, ['--kv-events-config={"enable_kv_cache_events": true}']),
    ("compilation-config.pass_config.fuse_allreduce_rms", False, ["--compilation-config.pass_config.fuse_allreduce_rms=false"]),
])
def test_file_entries_render_by_option_kind(parser, key, value, tokens) -> None:
    assert vllm_config.render_option(parser._option_string_actions, key, value) == tokens


@pytest.mark.parametrize("key, value, problem", [
    ("max-num-seq", 4, "vllm.max-num-seq: vLLM has no option --max-num-seq (did you mean max-num-seqs?)"),
    ("enforce-eager", "yes please", "vllm.enforce-eager: --enforce-eager is a switch; use true or false"),
    ("max-num-seqs", None, "vllm.max-num-seqs: needs a value"),
    ("max-num-seqs", [1, 2], "vllm.max-num-seqs: --max-num-seqs takes one value, got a list"),
])
def test_bad_file_entries_name_the_key(parser, key, value, problem) -> None:
    with pytest.raises(RuntimeConfigError) as caught:
        vllm_config.render_option(parser._option_string_actions, key, value, file="/mnt/config/x.yaml")
    assert str(caught.value).startswith(problem)
    assert caught.value.field == f"vllm.{key}" and caught.value.exit_code == 3
    assert caught.value.record()["reason"] == "InvalidRuntimeParameters"


@pytest.mark.parametrize("text, problem", [
    ("vllm: [1, 2]\n", "vllm: Input should be a valid dictionary"),
    ("vllm: {}\nmax_model_len: 4\n", "max_model_len: unknown key"),
    ("kv_cache_cpu_memory_utilization: 2\n", "kv_cache_cpu_memory_utilization: Input should be less than or equal to 1"),
    ("vllm:\n  a: [\n", "not valid YAML at line"),
    ("- just a list\n", "expected a map with a `vllm:` section"),
])
def test_malformed_files_are_clear_errors(tmp_path, text, problem) -> None:
    with pytest.raises(RuntimeConfigError, match="^" + problem.replace("[", "\\[")) as caught:
        vllm_config.load_runtime_parameters(write_config(tmp_path, text))
    assert caught.value.file.endswith(vllm_config.CONFIG_KEY)


def test_missing_and_empty_files(tmp_path) -> None:
    with pytest.raises(RuntimeConfigError, match="does not exist"):
        vllm_config.load_runtime_parameters(tmp_path / "absent.yaml")
    assert vllm_config.load_runtime_parameters(write_config(tmp_path, "# only comments\n")).vllm == {}
    shipped = vllm_config.load_runtime_parameters(write_config(
        tmp_path, "kv_cache_cpu_memory_utilization: 0.5\nvllm:\n  cpu-offload-gb: 0\n"))  # KAITO's template
    assert shipped.vllm == {"cpu-offload-gb": 0} and shipped.max_probe_steps == 6


def test_our_flags_map_to_vllm_and_the_rest_passes_through(tmp_path) -> None:
    adapters = tmp_path / "adapters"
    for name, rank in (("alpha", 4), ("beta", 24)):
        (adapters / name).mkdir(parents=True)
        (adapters / name / "adapter_config.json").write_text(json.dumps({"r": rank}))
    config = write_config(tmp_path, "kv_cache_cpu_memory_utilization: 0.3\nmax_probe_steps: 2\nvllm:\n  enforce-eager: true\n")
    launch = vllm_args.plan_launch([
        "--engine=vllm", "--model=org/Model", "--served-model-name=m", "--max-model-len=auto",
        "--dtype", "bfloat16", f"--adapters-dir={adapters}", "--tensor-parallel-size=2",
        "--kv-events-config", '{"enable_kv_cache_events":true}', f"--kaito-config-file={config}",
        "--kaito-kv-cache-cpu-memory-utilization=0", "--port=5000",
    ], env={})
    assert launch.settings.engine == "vllm" and launch.settings.model == "org/Model"
    assert launch.ours == ("--model=org/Model", "--served-model-name=m", "--host=0.0.0.0", "--port=5000",
                           "--uvicorn-log-level=warning", "--dtype=bfloat16", "--max-model-len=auto",
                           "--enable-lora", "--max-loras=2", "--lora-modules",
                           f"alpha={adapters / 'alpha'}", f"beta={adapters / 'beta'}")
    assert launch.passthrough == ("--tensor-parallel-size=2", "--kv-events-config", '{"enable_kv_cache_events":true}')
    assert launch.from_file == (("enforce-eager", True),) and launch.config_file == str(config)
    assert launch.kv_cache_cpu_memory_utilization == 0  # the command line's 0 beats the file's 0.3
    assert launch.max_probe_steps == 2 and launch.rate_limit and launch.max_lora_rank == 24


def test_defaults_leave_vllm_its_own(tmp_path) -> None:
    launch = vllm_args.plan_launch(["--model", str(tmp_path), "--adapters-dir", "", "--kaito-disable-rate-limit"],
                                   env={"KAITO_MAX_MODEL_LEN": "4k", "KAITO_MAX_RUNNING": "8"})
    # max_num_seqs only when asked (env counts), dtype and revision never invented
    assert launch.ours == (f"--model={tmp_path}", f"--served-model-name={tmp_path.name}", "--host=0.0.0.0",
                           "--port=5000", "--uvicorn-log-level=warning", "--max-model-len=4k", "--max-num-seqs=8")
    assert not launch.rate_limit and launch.kv_cache_cpu_memory_utilization == 0.5


def test_an_explicit_lora_modules_wins_over_the_adapters_dir(tmp_path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "alpha" / "adapter_config.json").write_text("{}")
    launch = vllm_args.plan_launch([f"--adapters-dir={tmp_path}", "--lora-modules", "x=/y", "z=/w"], env={})
    assert launch.adapters == () and "--enable-lora" not in launch.ours
    assert launch.passthrough == ("--lora-modules", "x=/y", "z=/w")


@pytest.mark.parametrize("argv, problem", [
    (["--load-in-8bit"], "--load-in-8bit: vLLM has no 8-bit"),
    (["--pipeline", "summarize"], "--pipeline: unsupported pipeline"),
])
def test_bad_flags_are_argument_errors(argv, problem) -> None:
    with pytest.raises(ArgumentsError, match="^" + problem) as caught:
        vllm_args.plan_launch(argv, env={})
    assert caught.value.exit_code == 2


def test_parse_types_everything_with_the_vllm_parser(tmp_path, parser) -> None:
    config = write_config(tmp_path, "vllm:\n  enforce-eager: true\n  max-num-seqs: 3\n  max-model-len: 128\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_config.json").write_text('{"r": 20}')
    launch = vllm_args.plan_launch(["--model=org/m", "--max-running=16", f"--adapters-dir={tmp_path}",
                                    f"--kaito-config-file={config}", "--tensor-parallel-size", "2"], env={})
    ns = vllm_args.parse_vllm_args(launch, parser)
    assert ns.enforce_eager is True and ns.max_num_seqs == 3 and ns.max_model_len == "128"  # the file wins
    assert ns.tensor_parallel_size == 2 and ns.enable_lora and ns.lora_modules == [f"a={tmp_path / 'a'}"]
    assert ns.max_lora_rank == 32  # the smallest of vLLM's ranks that holds r=20
    assert ns.served_model_name == ["org/m"]


def test_parse_errors_name_their_source(tmp_path, parser) -> None:
    bad_value = write_config(tmp_path, "vllm:\n  max-num-seqs: many\n")
    launch = vllm_args.plan_launch(["--adapters-dir=", f"--kaito-config-file={bad_value}"], env={})
    with pytest.raises(RuntimeConfigError, match="^vllm.max-num-seqs: argument --max-num-seqs: invalid int") as caught:
        vllm_args.parse_vllm_args(launch, parser)
    assert caught.value.field == "vllm.max-num-seqs"
    launch = vllm_args.plan_launch(["--adapters-dir=", "--tensor-parallel-size=two"], env={})
    with pytest.raises(ArgumentsError, match="refused the command line: argument --tensor-parallel-size"):
        vllm_args.parse_vllm_args(launch, parser)
    launch = vllm_args.plan_launch(["--adapters-dir=", "--no-such-vllm-flag=1"], env={})
    with pytest.raises(ArgumentsError, match="unrecognized arguments: --no-such-vllm-flag=1"):
        vllm_args.parse_vllm_args(launch, parser)


def test_kv_cache_plan_follows_kaito_where_it_can_work() -> None:
    base = dict(utilization=0.5, build="cuda", lmcache_installed=True, role="", configured=False,
                tensor_parallel=2, free_memory_gib=100.0)
    offload = vllm_config.plan_kv_cache(**base)
    assert offload.kv_transfer_config == {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}
    assert offload.env["LMCACHE_MAX_LOCAL_CPU_SIZE"] == "25.00"
    assert vllm_config.plan_kv_cache(**{**base, "role": "decode"}).kv_transfer_config["kv_connector"] == "NixlConnector"
    for change in ({"utilization": 0}, {"build": "cpu"}, {"lmcache_installed": False}, {"configured": True}):
        plan = vllm_config.plan_kv_cache(**{**base, **change})
        assert plan.kv_transfer_config is None and plan.env == {} and plan.note
