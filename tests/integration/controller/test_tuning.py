"""Tuning Workspaces: Job lifecycle, each input and output kind, and a new Job per revision."""

from __future__ import annotations

import pytest

from kaito.api import labels
from kaito.api.validation import UrlPolicy
from kaito.cluster import protocol
from kaito.controller.observe import WorkspaceKey
from tests.integration.controller.harness import conditions, converge, make_workspace

KEY = WorkspaceKey("default", "tune")

INPUTS = {
    "urls": {"urls": ["https://example.com/data/train.parquet"]},
    "image": {"image": "registry.example.com/datasets/dolly:1"},
    "volume": {"volumeSource": {"persistentVolumeClaim": {"claimName": "data"}}},
}
OUTPUTS = {
    "image": {"image": "registry.example.com/adapters/phi-3:1", "imagePushSecret": "push"},
    "volume": {"volumeSource": {"persistentVolumeClaim": {"claimName": "results"}}},
}


def tuning_ws(input_kind="urls", output_kind="image", **extra):
    return make_workspace(
        "tune",
        inference=None,
        tuning={
            "preset": {"name": "phi-3-mini-128k-instruct"},
            "method": "qlora",
            "input": INPUTS[input_kind],
            "output": OUTPUTS[output_kind],
            **extra,
        },
    )


async def test_job_started_then_succeeded(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(tuning_ws(), field_manager="kubectl")
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY])
    job = await cluster.get(protocol.JOB, "tune", "default")
    assert job["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "1"
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["ResourceReady"][0] == "True"
    assert c["JobStarted"] == ("False", "WorkspaceTuningJobStatusPending")

    await kubelet.start_jobs()
    await rec.reconcile(KEY)
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["JobStarted"] == ("True", "WorkspaceTuningJobStatusStarted")
    assert c["WorkspaceSucceeded"] == ("False", "workspacePending")

    await kubelet.finish_jobs(succeed=True)
    await rec.reconcile(KEY)
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["WorkspaceSucceeded"] == ("True", "workspaceSucceeded")
    assert "InferenceReady" not in c
    cluster.reset()
    await rec.reconcile(KEY)
    assert cluster.total == 0


async def test_failed_job_is_recorded(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(tuning_ws(), field_manager="kubectl")
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY], jobs="fail")
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["JobStarted"] == ("False", "WorkspaceTuningJobStatusFailed")
    assert c["WorkspaceSucceeded"] == ("False", "workspaceFailed")
    assert len((await cluster.list(protocol.JOB, "default")).items) == 1  # no retry loop of Jobs


@pytest.mark.parametrize("input_kind", ["urls", "image"])
async def test_each_input_kind_runs(cluster, kubelet, make_reconciler, input_kind):
    await cluster.inner.apply(tuning_ws(input_kind, "image"), field_manager="kubectl")
    await converge(make_reconciler(), kubelet, [KEY], jobs="succeed")
    text = str(await cluster.get(protocol.JOB, "tune", "default"))
    expected = (
        "https://example.com/data/train.parquet"
        if input_kind == "urls"
        else "registry.example.com/datasets/dolly:1"
    )
    assert expected in text
    assert "registry.example.com/adapters/phi-3:1" in text  # the pusher's destination
    assert (
        conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))["WorkspaceSucceeded"][0]
        == "True"
    )


@pytest.mark.parametrize(
    ("input_kind", "output_kind"), [("volume", "volume"), ("volume", "image"), ("urls", "volume")]
)
async def test_volume_sources_run_as_in_kaito_v012(cluster, kubelet, make_reconciler, input_kind, output_kind):
    """KAITO v0.3.2 refused volumes ("not implemented yet"); v0.12 mounts them, and so do we."""
    await cluster.inner.apply(tuning_ws(input_kind, output_kind), field_manager="kubectl")
    await converge(make_reconciler(), kubelet, [KEY], jobs="succeed")
    job = await cluster.get(protocol.JOB, "tune", "default")
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    trainer = next(c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "tune")
    mounts = {m["name"]: m for m in trainer["volumeMounts"]}
    if input_kind == "volume":
        assert volumes["data-volume"]["persistentVolumeClaim"] == {"claimName": "data"}
        assert mounts["data-volume"] == {"name": "data-volume", "mountPath": "/mnt/data", "readOnly": True}
        assert "--data=/mnt/data" in trainer["args"]
    if output_kind == "volume":
        assert volumes["results-volume"]["persistentVolumeClaim"] == {"claimName": "results"}
        assert [c["name"] for c in pod["containers"]] == ["tune"]  # nothing to push
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["JobStarted"] == ("True", "WorkspaceTuningJobStatusStarted")
    assert c["WorkspaceSucceeded"] == ("True", "workspaceSucceeded")


async def test_loopback_url_is_a_condition_unless_the_cluster_is_local(cluster, kubelet, make_reconciler):
    """The SSRF guard holds on a cluster; the local control plane's settings admit this machine."""
    local_input = {"urls": ["http://127.0.0.1:8000/train.jsonl"]}
    await cluster.inner.apply(tuning_ws(input=local_input), field_manager="kubectl")
    assert await make_reconciler().reconcile(KEY) is None
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["JobStarted"] == ("False", "workspaceValidationFailed")
    assert (await cluster.list(protocol.JOB, "default")).items == []
    assert (await cluster.list(protocol.NODECLAIM)).items == []

    await converge(make_reconciler(url_policy=UrlPolicy.ALLOW_LOCAL), kubelet, [KEY], jobs="succeed")
    job = await cluster.get(protocol.JOB, "tune", "default")
    assert "--data=http://127.0.0.1:8000/train.jsonl" in str(job)
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["WorkspaceSucceeded"] == ("True", "workspaceSucceeded")


async def test_spec_change_replaces_the_job(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(tuning_ws(), field_manager="kubectl")
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY], jobs="succeed")
    first_uid = (await cluster.get(protocol.JOB, "tune", "default"))["metadata"]["uid"]
    await cluster.inner.apply(tuning_ws("image", "image"), field_manager="kubectl")
    await converge(rec, kubelet, [KEY], jobs="start")
    job = await cluster.get(protocol.JOB, "tune", "default")
    assert job["metadata"]["uid"] != first_uid
    assert job["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "2"
    # As KAITO: the old Job goes in the foreground, so its trainer pod frees the GPU first.
    assert ("Job", "tune", "Foreground") in cluster.deletes
    c = conditions(await cluster.get(protocol.WORKSPACE, "tune", "default"))
    assert c["JobStarted"] == ("True", "WorkspaceTuningJobStatusStarted")
    assert c["WorkspaceSucceeded"] == ("False", "workspacePending")  # the new Job has not finished
