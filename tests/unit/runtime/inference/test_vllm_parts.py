"""The parts of the vLLM path that need no vLLM: engine choice, start-up errors, the 429 guard, download gauges."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kaito.runtime.inference import download_progress, multinode, startup_errors, vllm_kaito, vllm_platform


@pytest.mark.parametrize("device, build, cuda, ok", [
    ("auto", "cpu", False, True), ("cpu", "cpu", False, True), ("cuda", "cpu", True, False),
    ("auto", "cuda", True, True), ("auto", "cuda", False, False), ("cpu", "cuda", True, False),
])
def test_vllm_runs_where_its_build_matches_the_device(device, build, cuda, ok) -> None:
    assert (vllm_platform.explain_unavailable(device, build=build, cuda=cuda) is None) is ok


def test_engine_choice_reads_flags_then_env(monkeypatch) -> None:
    monkeypatch.setattr(vllm_platform, "explain_unavailable", lambda device: None if device != "cuda" else "no")
    assert vllm_platform.wants_vllm([], {}) and vllm_platform.wants_vllm(["--engine", "vllm"], {})
    assert not vllm_platform.wants_vllm(["--engine=transformers"], {})
    assert not vllm_platform.wants_vllm([], {"KAITO_ENGINE": "transformers"})
    assert not vllm_platform.wants_vllm(["--device", "cuda"], {})
    assert vllm_platform.wants_vllm(["--engine", "vllm", "--device", "cuda"], {})  # main() then says why not


def test_without_vllm_auto_is_transformers(monkeypatch) -> None:
    monkeypatch.setattr(vllm_platform, "find_vllm_build", lambda: None)
    assert "not installed" in vllm_platform.explain_unavailable("auto")
    assert not vllm_platform.wants_vllm([], {})


def test_startup_error_goes_to_stderr_and_the_termination_log(tmp_path, capsys, monkeypatch) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setenv(startup_errors.TERMINATION_LOG_ENV, str(log))
    error = startup_errors.RuntimeConfigError("vllm.foo: vLLM has no option --foo", field="vllm.foo",
                                              file="/mnt/config/inference_config.yaml")
    assert startup_errors.report(error) == 3
    assert capsys.readouterr().err == ("error: vllm.foo: vLLM has no option --foo "
                                       "(/mnt/config/inference_config.yaml)\n")
    assert json.loads(log.read_text()) == {"reason": "InvalidRuntimeParameters", "field": "vllm.foo",
                                           "message": "vllm.foo: vLLM has no option --foo",
                                           "file": "/mnt/config/inference_config.yaml"}
    # without the variable, the Kubernetes default is written only when the kubelet has made it
    monkeypatch.setattr(startup_errors, "DEFAULT_TERMINATION_LOG", str(tmp_path / "absent"))
    assert startup_errors.write_termination_message(error, env={}) is None
    (tmp_path / "absent").touch()
    assert startup_errors.write_termination_message(error, env={}) == tmp_path / "absent"


class Held:
    """A slow inference route: requests enter and wait for the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = 0

    async def route(self, request):
        self.entered += 1
        await self.gate.wait()
        return PlainTextResponse("done")


def guarded_app(limit: vllm_kaito.RateLimit | None, held: Held) -> Starlette:
    """The guard inside the app, as vLLM's --middleware installs it (the app's state reaches it)."""
    app = Starlette(routes=[Route("/v1/completions", held.route, methods=["POST"]),
                            Route("/health", lambda r: PlainTextResponse("ok"))],
                    middleware=[Middleware(vllm_kaito.RateLimitGuard)])
    if limit is not None:
        setattr(app.state, vllm_kaito.STATE_KEY, limit)
    return app


async def test_guard_answers_429_with_kaitos_body_when_the_queue_is_deep() -> None:
    registry = CollectorRegistry()
    waiting = Gauge("vllm:num_requests_waiting", "w", ["model_name"], registry=registry)
    waiting.labels("m").set(3)
    rejected = vllm_kaito.build_rejected_counter(registry)
    held = Held()
    held.gate.set()
    guard = guarded_app(vllm_kaito.RateLimit(threshold=2, waiting=vllm_kaito.read_waiting(registry),
                                             rejected=rejected), held)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://t") as client:
        answer = await client.post("/v1/completions")
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "rate_limit_exceeded"
        assert answer.json()["error"]["type"] == "requests" and answer.json()["error"]["param"] is None
        assert (await client.get("/health")).status_code == 200  # control paths are never refused
        waiting.labels("m").set(2)
        assert (await client.post("/v1/completions")).status_code == 200
    assert registry.get_sample_value("kaito_ratelimit_rejected_total") == 1


async def test_guard_counts_requests_in_flight_ahead_of_the_gauge() -> None:
    held = Held()
    guard = guarded_app(vllm_kaito.RateLimit(threshold=1, waiting=lambda: 0.0), held)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://t") as client:
        requests = [asyncio.create_task(client.post("/v1/completions")) for _ in range(2)]
        while held.entered < 2:
            await asyncio.sleep(0.01)
        # in flight 2, threshold 1: 2 - 1 = 1 is not above 1, so one more is admitted ...
        requests.append(asyncio.create_task(client.post("/v1/completions")))
        while held.entered < 3:
            await asyncio.sleep(0.01)
        # ... and the next one (3 - 1 = 2 > 1) is refused
        assert (await client.post("/v1/completions")).status_code == 429
        held.gate.set()
        assert [r.status_code for r in await asyncio.gather(*requests)] == [200, 200, 200]
        assert (await client.post("/v1/completions")).status_code == 200  # the count went back down


async def test_guard_without_settings_lets_everything_through() -> None:
    held = Held()
    held.gate.set()
    guard = guarded_app(None, held)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://t") as client:
        assert (await client.post("/v1/completions")).status_code == 200


def test_download_gauges_for_local_cached_and_partial_models(tmp_path) -> None:
    local = download_progress.DownloadProgress(CollectorRegistry(), model=str(tmp_path), cache_dir=tmp_path)
    local.start()
    assert local.remaining._value.get() == 0 and local.speed._value.get() == 0
    repo = download_progress.repo_cache_dir(tmp_path, "org/m")
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc.incomplete").write_bytes(b"x" * 10)
    (repo / "snapshots").mkdir()
    (repo / "snapshots" / "w").symlink_to(repo / "blobs" / "abc.incomplete")
    assert download_progress.bytes_on_disk(repo) == 10  # the snapshot link is not counted twice
    assert download_progress.download_unfinished(repo)
    registry = CollectorRegistry()
    partial = download_progress.DownloadProgress(registry, model="org/m", cache_dir=tmp_path, interval=0.01)
    partial.start()
    assert registry.get_sample_value("kaito_model_download_remaining_seconds") == -1  # size unknown offline
    partial.finish()
    assert registry.get_sample_value("kaito_model_download_remaining_seconds") == 0


def test_loading_server_answers_metrics_and_503_on_the_bound_port() -> None:
    registry = CollectorRegistry()
    Counter("kaito_probe", "a metric to find", registry=registry).inc()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    server = download_progress.LoadingServer(sock, registry)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert b"kaito_probe_total 1.0" in answer.read()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        assert caught.value.code == 503 and json.loads(caught.value.read()) == {"detail": "the model is loading"}
    finally:
        server.stop()
    assert sock.fileno() != -1  # the server's own socket stays open for the real app
    sock.close()


@pytest.mark.parametrize("mode, pod, server, cluster, code", [
    ("readiness", 0, True, False, 0), ("readiness", 0, False, True, 1), ("liveness", 0, False, True, 1),
    ("readiness", 1, False, False, 0),  # workers serve no HTTP: ready once running
    ("liveness", 1, False, False, 1), ("liveness", 2, False, True, 0),
])
def test_multinode_probes(mode, pod, server, cluster, code) -> None:
    assert multinode.probe(mode, pod, server_ok=lambda: server, cluster_ok=lambda: cluster) == code


def test_multinode_leader_waits_for_every_node_with_progress(caplog) -> None:
    counts = iter([1, 1, 2, 3])
    now = iter(range(0, 100, 5))
    caplog.set_level("INFO")
    multinode.wait_for_nodes(3, lambda: next(counts), sleep=lambda s: None, clock=lambda: next(now))
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "waiting for the Ray cluster: 1 of 3 nodes" and said[-1] == "Ray cluster complete: 3 nodes"
    assert multinode.build_server_command(["--", "--engine=vllm"])[1:] == ["-m", "kaito.runtime.inference",
                                                                          "--engine=vllm"]
    assert multinode.build_worker_command("lead", 6379) == ["ray", "start", "--address=lead:6379", "--block"]


def test_vllm_sampling_and_finish_mapping() -> None:
    from kaito.runtime.inference import engine as api
    from kaito.runtime.inference.vllm_engine import build_sampling_kwargs, compute_finish_reason

    sampling = build_sampling_kwargs(api.SamplingParams(max_tokens=5, temperature=0.0, top_k=0, stop=("x",),
                                                        ignore_eos=True, logit_bias=((3, 1.5),)))
    assert sampling["top_k"] == -1 and sampling["stop"] == ["x"] and sampling["ignore_eos"] is True
    assert sampling["temperature"] == 0.0 and sampling["logit_bias"] == {3: 1.5} and sampling["n"] == 1
    assert build_sampling_kwargs(api.SamplingParams())["logit_bias"] is None
    assert [compute_finish_reason(r) for r in (None, "stop", "length", "abort", "error")] == [
        None, "stop", "length", "abort", "abort"]
