"""What only the lightkube backend does: the wire format, retries, watch reconnection, kubeconfig."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from kaito.cluster import errors
from kaito.cluster.kube import KubeCluster
from kaito.cluster.protocol import DEPLOYMENT, JOB, POD
from tests.integration.cluster.builders import make_deployment
from tests.support.kube_emulator import server_config


async def test_apply_is_server_side_apply_with_the_kaito_field_manager(kube_env) -> None:
    await kube_env.cluster.apply(make_deployment("a"))
    stored = kube_env.emulator.get_object(DEPLOYMENT, "a", "default")
    assert stored is not None and stored["spec"]["replicas"] == 1
    patches = [r for r in kube_env.emulator.requests if r.method.value == "PATCH"]
    assert len(patches) == 1
    assert patches[0].headers["Content-Type"] == "application/apply-patch+yaml"
    assert patches[0].params["fieldManager"] == "kaito"
    assert patches[0].params["force"] == "true"
    assert patches[0].url.path == "/apis/apps/v1/namespaces/default/deployments/a"


async def test_status_goes_to_the_status_subresource(kube_env) -> None:
    await kube_env.cluster.apply(make_deployment("a"))
    status = make_deployment("a")
    status["status"] = {"readyReplicas": 1}
    await kube_env.cluster.apply_status(status)
    last = kube_env.emulator.requests[-1]
    assert last.url.path.endswith("/deployments/a/status")
    assert "spec" not in last.data


@pytest.mark.parametrize("code", [429, 500, 503])
async def test_unavailable_is_retried_then_succeeds(kube_env, code) -> None:
    await kube_env.cluster.apply(make_deployment("a"))
    kube_env.emulator.fail_next(code)
    fetched = await kube_env.cluster.get(DEPLOYMENT, "a")
    assert fetched["metadata"]["name"] == "a"
    assert kube_env.cluster.retries == 1


async def test_retry_after_is_honoured_and_writes_are_retried(kube_env) -> None:
    kube_env.emulator.fail_next(429, times=2, retry_after=0.01)
    created = await kube_env.cluster.apply(make_deployment("a"))
    assert created["metadata"]["generation"] == 1
    assert kube_env.cluster.retries == 2
    assert kube_env.emulator.writes == 1  # the failed attempts changed nothing


async def test_persistent_unavailability_surfaces_as_unavailable(kube_env) -> None:
    kube_env.emulator.fail_next(503, times=10)
    with pytest.raises(errors.Unavailable) as caught:
        await kube_env.cluster.get(DEPLOYMENT, "a")
    assert errors.is_retryable(caught.value)
    assert kube_env.cluster.retries == kube_env.cluster.max_attempts - 1


async def test_conflicts_and_not_found_are_not_retried(kube_env) -> None:
    first = await kube_env.cluster.apply(make_deployment("a"))
    await kube_env.cluster.apply(make_deployment("a", replicas=2))
    stale = make_deployment("a")
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    stale["status"] = {"readyReplicas": 1}
    with pytest.raises(errors.Conflict):
        await kube_env.cluster.apply_status(stale)
    with pytest.raises(errors.NotFound):
        await kube_env.cluster.get(DEPLOYMENT, "missing")
    assert kube_env.cluster.retries == 0


async def test_watch_reconnects_after_the_server_ends_streams_without_losing_events(kube_env) -> None:
    c, emulator = kube_env.cluster, kube_env.emulator
    start = (await c.list(DEPLOYMENT)).resource_version
    seen: list[tuple[str, int]] = []

    async def follow() -> None:
        async for event in c.watch(DEPLOYMENT, resource_version=start):
            seen.append((event.type, event.object["spec"]["replicas"]))
            if len(seen) == 4:
                return

    task = asyncio.create_task(follow())
    await c.apply(make_deployment("a", replicas=1))
    await asyncio.sleep(0.1)
    emulator.drop_watches()  # clean end of stream, as at the server's timeout
    await c.apply(make_deployment("a", replicas=2))
    await asyncio.sleep(0.1)
    emulator.fail_next(503)  # the reconnection itself fails once
    emulator.drop_watches()
    await c.apply(make_deployment("a", replicas=3))
    await c.delete(DEPLOYMENT, "a")
    await asyncio.wait_for(task, 5)
    assert seen == [("ADDED", 1), ("MODIFIED", 2), ("MODIFIED", 3), ("DELETED", 3)]
    watches = [r for r in emulator.requests if r.params.get("watch") == "true"]
    assert len(watches) >= 3


async def test_from_kubeconfig_file_and_context(kube_env, tmp_path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(server_config(kube_env.url)))
    cluster = KubeCluster.from_kubeconfig(path, context="emulator")
    try:
        await cluster.apply(make_deployment("a"))
        assert (await kube_env.cluster.get(DEPLOYMENT, "a"))["metadata"]["name"] == "a"
    finally:
        await cluster.close()


def test_bad_kubeconfig_is_invalid_not_a_traceback(tmp_path) -> None:
    with pytest.raises(errors.Invalid, match="kubeconfig"):
        KubeCluster.from_kubeconfig(tmp_path / "absent")
    config = server_config("http://127.0.0.1:1")
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(errors.Invalid, match="nowhere"):
        KubeCluster.from_kubeconfig(path, context="nowhere")
    del config["contexts"][0]["context"]["user"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(errors.Invalid, match="user"):
        KubeCluster.from_kubeconfig(path)


@pytest.mark.parametrize(("text", "problem"), [
    ("foo: bar\n", "no 'clusters' list"),
    ("- a\n", "the file holds list, not a mapping"),
    ("", "the file holds nothing"),
    ("clusters: [{name: x}]\ncontexts: []\nusers: []\n", r"clusters\[0\] \(x\) has no 'cluster' mapping"),
    ("clusters: []\ncontexts: [{name: c}]\nusers: []\n", r"contexts\[0\] \(c\) has no 'context' mapping"),
    ("{{{", r"not valid YAML: expected the node content.* \(line 1, column 4\)$"),
])
def test_garbage_kubeconfig_says_what_is_missing_naming_the_file(tmp_path, text, problem) -> None:
    path = tmp_path / "kc2"
    path.write_text(text)
    with pytest.raises(errors.Invalid, match=f"^kubeconfig {path}: .*{problem}") as caught:
        KubeCluster.from_kubeconfig(path)
    assert "KeyError" not in str(caught.value)


async def test_deleting_a_job_sends_a_propagation_policy_so_its_pod_goes_too(kube_env) -> None:
    cluster = kube_env.cluster
    job = await cluster.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "tune", "namespace": "default"},
                               "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}],
                                                              "restartPolicy": "Never"}}}})
    for name in ("tune-a", "tune-b"):
        await cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": name, "namespace": "default", "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": "tune", "uid": job["metadata"]["uid"],
                "controller": True}]}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    await cluster.delete(JOB, "tune", "default")
    assert [(d.kind, d.name, d.propagation) for d in kube_env.emulator.deletes] == [("Job", "tune", "Background")]
    assert kube_env.emulator.get_object(POD, "tune-a", "default") is None  # not orphaned
    assert kube_env.emulator.get_object(POD, "tune-b", "default") is None
    await cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lone", "namespace": "default"},
                         "spec": {"containers": [{"name": "c", "image": "i"}]}})
    await cluster.delete(POD, "lone", "default", propagation="Foreground")
    assert kube_env.emulator.deletes[-1].propagation == "Foreground"


async def test_unreachable_server_is_unavailable(tmp_path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(server_config("http://127.0.0.1:9")))
    cluster = KubeCluster.from_kubeconfig(path, max_attempts=2, retry_base_s=0.01)
    try:
        with pytest.raises(errors.Unavailable):
            await cluster.get(DEPLOYMENT, "a")
        assert cluster.retries == 1
    finally:
        await cluster.close()
