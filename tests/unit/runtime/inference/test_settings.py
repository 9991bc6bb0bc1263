"""Settings: our flags, KAITO's aliases and extras, environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaito.runtime.inference.settings import (
    SettingsError,
    build_extra_kwargs,
    build_settings,
    compute_adapter_strength,
)


def test_defaults_follow_kaito():
    s = build_settings([], env={})
    assert (s.host, s.port) == ("0.0.0.0", 5000)
    assert s.model == "/workspace/tfs/weights"
    assert s.adapters_dir == Path("/mnt/adapter")
    assert s.pipeline == "text-generation"
    assert s.api_key is None


def test_our_flags():
    s = build_settings(["--model", "org/name", "--revision", "abc", "--served-model-name", "m", "--dtype",
                        "bfloat16", "--device", "cpu", "--engine", "transformers", "--adapters-dir", "/a",
                        "--max-model-len", "256", "--api-key", "k", "--host", "127.0.0.1", "--port", "8000",
                        "--adapter-strength", "x=0.5"], env={})
    assert (s.model, s.revision, s.served_model_name, s.dtype, s.device, s.engine) == (
        "org/name", "abc", "m", "bfloat16", "cpu", "transformers")
    assert (s.adapters_dir, s.max_model_len, s.api_key, s.host, s.port) == (Path("/a"), 256, "k", "127.0.0.1", 8000)
    assert s.adapter_strengths == {"x": 0.5}
    assert s.model_name == "m"


def test_engine_process_by_default_and_its_switch():
    assert build_settings([], env={}).engine_process is True
    assert build_settings(["--engine-process", "false"], env={}).engine_process is False
    assert build_settings([], env={"KAITO_ENGINE_PROCESS": "false"}).engine_process is False
    assert build_settings(["--max-prefill-tokens", "256"], env={}).max_prefill_tokens == 256
    assert build_settings([], env={}).max_prefill_tokens == 2048


def test_kaito_command_line_with_extras():
    s = build_settings(["--pipeline", "conversational", "--pretrained_model_name_or_path", "/w",
                        "--torch_dtype", "float16", "--trust_remote_code", "--allow_remote_files", "True",
                        "--load_in_8bit", "false", "--offload_folder", "/tmp/o", "--low_cpu_mem_usage"], env={})
    assert (s.pipeline, s.model, s.dtype, s.trust_remote_code, s.load_in_8bit) == (
        "conversational", "/w", "float16", True, False)
    assert s.model_kwargs == {"offload_folder": "/tmp/o", "low_cpu_mem_usage": True}


def test_extra_kwargs_fold_like_kaito():
    assert build_extra_kwargs(["--a", "--b"]) == {"a": True, "b": True}
    assert build_extra_kwargs(["--k", "v", "--x=1"]) == {"k": "v", "x": "1"}
    with pytest.raises(SettingsError, match="stray"):
        build_extra_kwargs(["stray"])


def test_environment_then_flags_win():
    s = build_settings(["--port", "7000"], env={"KAITO_PORT": "6000", "KAITO_MODEL": "org/env",
                                                "KAITO_TRUST_REMOTE_CODE": "true"})
    assert (s.port, s.model, s.trust_remote_code) == (7000, "org/env", True)


@pytest.mark.parametrize(("argv", "needle"), [
    (["--torch_dtype", "float8"], "dtype"),
    (["--pipeline", "summarization"], "pipeline"),
    (["--port", "99999"], "--port"),
    (["--max-model-len", "0"], "--max-model-len"),
    (["--adapter-strength", "x"], "NAME=STRENGTH"),
    (["--adapter-strength", "x=-1"], "x"),
    (["--engine", "tgi"], "--engine"),
    (["--max-prefill-tokens", "0"], "--max-prefill-tokens"),
    (["--device", "tpu"], "--device"),
    (["--device", "balanced"], "--device"),
])
def test_bad_values_name_the_flag(argv, needle):
    with pytest.raises(SettingsError, match=needle):
        build_settings(argv, env={})


def test_adapter_strength_flag_then_kaito_env_then_one():
    s = build_settings(["--adapter-strength", "a=0.25"], env={})
    assert compute_adapter_strength(s, "a", {"a": "0.9"}) == 0.25
    assert compute_adapter_strength(s, "b", {"b": "0.5"}) == 0.5
    assert compute_adapter_strength(s, "c", {}) == 1.0
    with pytest.raises(SettingsError, match="environment variable b"):
        compute_adapter_strength(s, "b", {"b": "lots"})


def test_main_exits_2_with_a_message(capsys):
    from kaito.runtime.inference.__main__ import main

    assert main(["--dtype", "int3"]) == 2
    assert "invalid torch dtype" in capsys.readouterr().err


def test_kaito_serve_forwards_flags_and_exit_code():
    import typer
    from typer.testing import CliRunner

    from kaito.cli import serve

    app = typer.Typer()
    serve.register(app)

    @app.command()
    def other() -> None:  # a second command keeps typer from flattening `serve` into the app itself
        pass

    result = CliRunner().invoke(app, ["serve", "--torch_dtype", "int3"])
    assert result.exit_code == 2
    assert "invalid torch dtype" in result.output


def test_chat_template_override_from_file_or_text(tmp_path):
    from kaito.runtime.inference.engines.loading import LoadError, build_chat_template

    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    path = tmp_path / "t.jinja"
    path.write_text(template)
    assert build_chat_template(str(path)) == template
    assert build_chat_template(template) == template
    assert build_chat_template(None) is None
    with pytest.raises(LoadError, match="chat-template"):
        build_chat_template(str(tmp_path / "absent.jinja"))


def test_device_map_alone_passes_accelerate_maps():
    s = build_settings(["--device_map", "balanced"], env={})
    assert (s.device, s.model_kwargs) == ("auto", {"device_map": "balanced"})
    assert build_settings(["--device_map", "cpu"], env={}).device == "cpu"
    assert build_settings(["--device_map", "auto"], env={}).model_kwargs == {}
    assert build_settings(["--device", "cuda"], env={}).device == "cuda"
    assert build_settings(["--device_map", "cpu"], env={"KAITO_DEVICE": "cuda"}).device == "cpu"
    assert build_settings(["--device", "cuda", "--device_map", "cpu"], env={}).device == "cuda"


def test_device_from_environment_is_checked_too():
    with pytest.raises(SettingsError, match="KAITO_DEVICE"):
        build_settings([], env={"KAITO_DEVICE": "tpu"})


def test_main_exits_2_on_bad_device(capsys):
    from kaito.runtime.inference.__main__ import main

    assert main(["--device", "tpu"]) == 2
    assert "--device" in capsys.readouterr().err


def test_empty_adapters_dir_turns_adapters_off():
    assert build_settings(["--adapters-dir", ""], env={}).adapters_dir is None
