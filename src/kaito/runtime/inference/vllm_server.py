"""The vLLM path of `python -m kaito.runtime.inference`: vLLM's own OpenAI server, with ours added.

The full OpenAI surface of the installed vLLM (tools, structured output, logprobs, /tokenize,
embeddings, the `vllm:` metrics) comes from vLLM's public entry points, called in the order its own
`run_server` calls them: bind the socket, build the engine client, `build_app`, `init_app_state`,
`serve_http`. Between the last two we add KAITO's routes and 429 guard (`vllm_kaito`), and KAITO's
download and rate-limit metrics go into vLLM's registry, so one `/metrics` shows both. While the
engine loads, the bound port already answers `/metrics` (download progress) and 503 elsewhere.

Failures before serving are typed (`startup_errors`): one line on stderr, a JSON termination
message, an exit code by kind; never a traceback for a mistake the user can fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

from kaito.runtime.inference import vllm_args, vllm_config, vllm_platform
from kaito.runtime.inference.startup_errors import (
    ArgumentsError,
    EngineUnavailableError,
    ModelLoadError,
    RuntimeConfigError,
    StartupError,
    report,
)

log = logging.getLogger("kaito.runtime.inference")


def import_vllm() -> SimpleNamespace:
    """vLLM's server entry points: `vllm.entrypoints.launchers` (0.3x), else the older `openai` modules."""
    try:
        import vllm
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.utils.argparse_utils import FlexibleArgumentParser
        from vllm.v1.metrics.prometheus import get_prometheus_registry
    except ImportError as exc:
        raise EngineUnavailableError(f"vLLM cannot be imported: {exc}") from None
    try:
        from vllm.entrypoints.launchers import cli_args, launcher
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.entrypoints.launchers.api_server.entry import build_async_engine_client
        from vllm.entrypoints.launchers.app import build_app
        from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    except ImportError:  # vLLM before the launchers package (KAITO v0.12 ships 0.25)
        from vllm.entrypoints import launcher  # type: ignore[no-redef]
        from vllm.entrypoints.openai import cli_args  # type: ignore[no-redef]
        from vllm.entrypoints.openai.api_server import (  # type: ignore[no-redef]
            build_app,
            build_async_engine_client,
            init_app_state,
        )
        from vllm.entrypoints.openai.api_server import setup_server as _setup  # noqa: F401
        from vllm.entrypoints.utils import cli_env_setup  # type: ignore[no-redef]
    setup_server = getattr(launcher, "setup_server", None)
    if setup_server is None:
        from vllm.entrypoints.openai.api_server import setup_server
    return SimpleNamespace(
        version=vllm.__version__, AsyncEngineArgs=AsyncEngineArgs, FlexibleArgumentParser=FlexibleArgumentParser,
        make_arg_parser=cli_args.make_arg_parser, validate=cli_args.validate_parsed_serve_args,
        build_async_engine_client=build_async_engine_client, build_app=build_app, init_app_state=init_app_state,
        setup_server=setup_server, serve_http=launcher.serve_http, registry=get_prometheus_registry,
        cli_env_setup=cli_env_setup)


def build_vllm_parser(v: SimpleNamespace):
    """vLLM's own serve parser, whose errors raise instead of exiting the process."""

    class RaisingParser(v.FlexibleArgumentParser):
        def error(self, message: str):  # type: ignore[override]
            raise vllm_args.VllmParseError(message)

    return v.make_arg_parser(RaisingParser(prog="kaito-inference --engine vllm", exit_on_error=False))


def main(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Serve until stopped; the exit code names the kind of failure (`startup_errors`)."""
    env = os.environ if env is None else env
    try:
        launch = vllm_args.plan_launch(argv, env)
        problem = vllm_platform.explain_unavailable(launch.settings.device)
        if problem is not None:
            raise EngineUnavailableError(f"--engine vllm: {problem}")
        return run(launch, env)
    except StartupError as exc:
        return report(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def plan_kv_cache(launch: vllm_args.VllmLaunch, namespace, env: Mapping[str, str]) -> vllm_config.KvCachePlan:
    try:
        import psutil

        memory = psutil.virtual_memory()
        free_gib = (memory.total - memory.used) / 2**30
    except ImportError:
        free_gib = 0.0
    return vllm_config.plan_kv_cache(
        utilization=launch.kv_cache_cpu_memory_utilization, build=vllm_platform.find_vllm_build() or "cuda",
        lmcache_installed=importlib.util.find_spec("lmcache") is not None,
        role=env.get("KAITO_INFERENCE_ROLE", ""), configured=namespace.kv_transfer_config is not None,
        tensor_parallel=int(getattr(namespace, "tensor_parallel_size", 1) or 1), free_memory_gib=free_gib)


def resolve_arguments(launch: vllm_args.VllmLaunch, v: SimpleNamespace, env: Mapping[str, str]):
    """vLLM's namespace for `launch`, KAITO's KV-cache defaults applied, vLLM's own checks passed."""
    parser = build_vllm_parser(v)
    namespace = vllm_args.parse_vllm_args(launch, parser)
    kv = plan_kv_cache(launch, namespace, env)
    log.info("%s", kv.note)
    if kv.kv_transfer_config is not None:
        import json

        namespace = vllm_args.parse_vllm_args(
            launch, parser, extra=[f"--kv-transfer-config={json.dumps(kv.kv_transfer_config)}"])
        os.environ.update(kv.env)
    if launch.rate_limit:  # vLLM's extension point, as KAITO uses it; configured once the engine is up
        from kaito.runtime.inference.vllm_kaito import MIDDLEWARE_PATH

        namespace.middleware = [*(namespace.middleware or []), MIDDLEWARE_PATH]
    try:
        v.validate(namespace)
    except (TypeError, ValueError, KeyError) as exc:
        raise ArgumentsError(f"vLLM refused the arguments: {exc}") from None
    return namespace


def run(launch: vllm_args.VllmLaunch, env: Mapping[str, str]) -> int:
    v = import_vllm()
    v.cli_env_setup()
    namespace = resolve_arguments(launch, v, env)
    if launch.settings.adapter_strengths:
        log.warning("vLLM serves each adapter by its name and cannot mix them by strength; "
                    "--adapter-strength is ignored")
    try:
        import uvloop

        uvloop.run(serve(launch, namespace, v))
    except ImportError:
        asyncio.run(serve(launch, namespace, v))
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt("terminated")


def _classify_engine_failure(exc: BaseException, launch: vllm_args.VllmLaunch, v: SimpleNamespace) -> StartupError:
    """A refused configuration (ValueError/TypeError before the engine runs) or a failed load."""
    if not isinstance(exc, ValueError | TypeError):
        return ModelLoadError(f"the vLLM engine failed to start: {exc}")
    if launch.from_file:  # does the command line alone pass? then the file's values were refused
        try:
            without_file = vllm_args.parse_vllm_args(dataclasses.replace(launch, from_file=()), build_vllm_parser(v))
            v.AsyncEngineArgs.from_cli_args(without_file).create_engine_config()
        except Exception:  # noqa: BLE001 - the command line is at fault too
            pass
        else:
            return RuntimeConfigError(f"vLLM refused the runtime parameters: {exc}", file=launch.config_file)
    return ArgumentsError(f"vLLM refused the engine arguments: {exc}")


async def serve(launch: vllm_args.VllmLaunch, namespace, v: SimpleNamespace) -> None:
    from kaito.runtime.inference.download_progress import DownloadProgress, LoadingServer

    signal.signal(signal.SIGTERM, _interrupt)  # until serve_http installs its own graceful handlers
    registry = v.registry()
    try:
        listen_address, sock = v.setup_server(namespace, reuse_port=False)
    except OSError as exc:
        raise StartupError(f"cannot listen on {namespace.host}:{namespace.port}: {exc.strerror or exc}") from None
    except KeyError as exc:  # vLLM's check of the tool-call and reasoning parser names
        raise ArgumentsError(f"vLLM refused the arguments: {exc.args[0] if exc.args else exc}") from None
    sock.listen(2048)
    loading = LoadingServer(sock, registry)
    loading.start()
    cache = Path(namespace.download_dir) if namespace.download_dir else _hub_cache()
    progress = DownloadProgress(registry, model=namespace.model, cache_dir=cache, token=os.environ.get("HF_TOKEN"))
    progress.start()
    log.info("Loading %s with vLLM %s; %s answers /metrics meanwhile", namespace.model, v.version, listen_address)
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(v.build_async_engine_client(namespace))
            except Exception as exc:
                raise _classify_engine_failure(exc, launch, v) from None
            progress.finish()
            app = await build_app_with_kaito(launch, namespace, v, client, registry)
            loading.stop()
            shutdown = await v.serve_http(
                app, sock=sock, host=namespace.host, port=namespace.port, log_level=namespace.uvicorn_log_level,
                access_log=not namespace.disable_uvicorn_access_log, timeout_keep_alive=5,
                ssl_keyfile=namespace.ssl_keyfile, ssl_certfile=namespace.ssl_certfile)
        await shutdown  # after the engine is shut down, as vLLM's own run_server does
    finally:
        loading.stop()
        progress.finish()
        sock.close()


def _hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


async def build_app_with_kaito(launch: vllm_args.VllmLaunch, namespace, v: SimpleNamespace, client, registry):
    """vLLM's app and state, then KAITO's routes, guard and metrics."""
    from kaito.runtime.inference import vllm_kaito
    from kaito.runtime.inference.admission import Admission
    from kaito.runtime.inference.metrics import ServerMetrics
    from kaito.runtime.inference.service import InferenceService
    from kaito.runtime.inference.vllm_engine import VllmEngine

    supported = await client.get_supported_tasks()
    app = v.build_app(namespace, supported, client.model_config)
    await v.init_app_state(client, app.state, namespace, supported)
    served = launch.settings.model_name
    engine = VllmEngine(client, served_model_name=served, adapters=dict(launch.adapters),
                        stats=vllm_kaito.read_stats(registry))
    await engine.start()
    threshold = int(client.vllm_config.scheduler_config.max_num_seqs)
    # /chat sits behind the same 429 guard as vLLM's routes (below), so its own admission admits all;
    # its timings stay private: vLLM's engine already counts its requests in the `vllm:` metrics.
    admit_all = Admission(max_running=threshold, queue_limit=sys.maxsize)
    service = InferenceService(engine, ServerMetrics(served), (served, launch.settings.model), admit_all)
    app.include_router(vllm_kaito.build_kaito_router(service, pipeline=launch.settings.pipeline,
                                                     api_key=launch.settings.api_key))
    rejected = vllm_kaito.build_rejected_counter(registry)
    if launch.rate_limit:  # the guard itself came in through vLLM's --middleware (resolve_arguments)
        setattr(app.state, vllm_kaito.STATE_KEY, vllm_kaito.RateLimit(
            threshold=threshold, waiting=vllm_kaito.read_waiting(registry), rejected=rejected))
        log.info("Rate limit guard on: 429 above %d waiting requests", threshold)
    return app
