"""`kaito get/describe/delete inferencesets`, `kaito scale`, `kaito endpoint` for a set, and `kaito apply`'s
words on a bad InferenceSet — against a local store the test fills (no control plane runs)."""

from __future__ import annotations

import asyncio
import json

import yaml
from typer.testing import CliRunner

from kaito.api import autoscaling
from kaito.cli.main import app
from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
from kaito.operator import controlplane

SET = {"apiVersion": "kaito.sh/v1beta1", "kind": "InferenceSet",
       "metadata": {"name": "chat", "namespace": "default", "annotations": {
           autoscaling.AUTO_PROVISION: "true", autoscaling.MIN_REPLICAS: "0", autoscaling.MAX_REPLICAS: "4",
           autoscaling.METRICS: "[{name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 5, downthreshold: 1}]"}},
       "spec": {"replicas": 2, "labelSelector": {"matchLabels": {"apps": "chat"}},
                "template": {"resource": {"instanceType": "Standard_NC24ads_A100_v4"},
                             "inference": {"preset": {"name": "phi-4-mini-instruct"}}}}}


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _seed(home) -> None:
    async def seed():
        cluster = LocalCluster(home / "store.db")
        try:
            await cluster.apply(SET, field_manager="kaito-cli")
            await cluster.apply_status({**SET, "status": {"replicas": 2, "readyReplicas": 1, "conditions": [
                {"type": "InferenceSetReady", "status": "False", "reason": "inferencesetNotReady",
                 "message": "inferenceset is not ready, 1/2 replicas are ready",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}, field_manager="kaito")
            await cluster.apply({"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
                                 "metadata": {"name": "chat-bcdfg", "namespace": "default",
                                              "labels": {"inferenceset.kaito.sh/created-by": "chat"}},
                                 "resource": {"labelSelector": {"matchLabels": {"apps": "chat"}}}})
        finally:
            await cluster.close()

    asyncio.run(seed())


def test_get_lists_sets_with_kaitos_columns_in_every_output(tmp_path):
    home = tmp_path / "home"
    _seed(home)
    table = _invoke("get", "inferencesets", "--home", str(home))
    assert table.exit_code == 0, table.output
    header, row = [line.split() for line in table.stdout.strip().splitlines()]
    assert header == ["NAME", "REPLICAS", "READYREPLICAS", "AGE"] and row[:3] == ["chat", "2", "1"]
    wide = _invoke("get", "is", "-o", "wide", "--home", str(home))
    assert wide.stdout.split("\n")[0].split()[-3:] == ["READY", "PRESET", "ENDPOINT"]
    assert "phi-4-mini-instruct" in wide.stdout and "is not running" in wide.output  # no dead gateway URL
    assert _invoke("get", "inferencesets", "-o", "name", "--home", str(home)).stdout == "inferenceset.kaito.sh/chat\n"
    one = yaml.safe_load(_invoke("get", "inferenceset", "chat", "-o", "yaml", "--home", str(home)).stdout)
    assert one["apiVersion"] == "kaito.sh/v1beta1" and one["spec"]["replicas"] == 2
    alpha = json.loads(_invoke("get", "inferenceset", "chat", "-o", "json", "--api-version", "v1alpha1",
                               "--home", str(home)).stdout)
    assert alpha["apiVersion"] == "kaito.sh/v1alpha1" and alpha["status"]["readyReplicas"] == 1
    missing = _invoke("get", "inferenceset", "nope", "--home", str(home))
    assert missing.exit_code == 1 and 'inferenceset "nope" not found in namespace default' in missing.output
    unknown = _invoke("get", "gadgets", "--home", str(home))
    assert unknown.exit_code == 2 and "inferencesets" in unknown.output


def test_describe_shows_replicas_autoscaling_and_conditions(tmp_path):
    home = tmp_path / "home"
    _seed(home)
    out = _invoke("describe", "inferenceset", "chat", "--home", str(home))
    assert out.exit_code == 0, out.output
    assert "Replicas:     2 desired, 1 ready" in out.stdout
    assert "chat-bcdfg" in out.stdout and "InferenceSetReady" in out.stdout
    assert "0..4 replicas on vllm:num_requests_waiting 1..5" in out.stdout and "the local autoscaler" in out.stdout
    assert "is not running" in out.stdout  # no gateway URL while no control plane runs


def test_scale_writes_replicas_through_the_scale_subresource(tmp_path):
    home = tmp_path / "home"
    _seed(home)
    for args in (("inferenceset", "chat"), ("inferenceset/chat",)):
        result = _invoke("scale", *args, "--replicas", "3", "--home", str(home))
        assert result.exit_code == 0 and result.stdout == "inferenceset.kaito.sh/chat scaled\n", result.output

    async def read():
        cluster = LocalCluster(home / "store.db")
        try:
            return await cluster.get(protocol.INFERENCESET, "chat")
        finally:
            await cluster.close()

    stored = asyncio.run(read())
    assert stored["spec"]["replicas"] == 3 and stored["spec"]["template"] == SET["spec"]["template"]
    for bad in (("deployment", "x", "--replicas", "1"), ("inferenceset", "--replicas", "1"),
                ("inferenceset", "chat", "--replicas", "-1")):
        result = _invoke("scale", *bad, "--home", str(home))
        assert result.exit_code == 2 and "Traceback" not in result.output, (bad, result.output)
    missing = _invoke("scale", "inferenceset", "nope", "--replicas", "1", "--home", str(home))
    assert missing.exit_code == 1 and 'inferenceset "nope" not found' in missing.output


def test_endpoint_of_a_set_is_its_gateway_while_the_control_plane_serves_it(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _seed(home)
    down = _invoke("endpoint", "chat", "--home", str(home))
    assert down.exit_code == 1 and "is not running" in down.output
    monkeypatch.setattr(controlplane, "running_pid", lambda paths: 4242)  # as if `kaito up` ran
    waiting = _invoke("endpoint", "chat", "--home", str(home))
    assert waiting.exit_code == 1 and "inferenceset chat has no local gateway yet" in waiting.output
    (home / "endpoints.json").write_text(json.dumps({"default/chat": "http://127.0.0.1:40123"}))
    assert _invoke("endpoint", "chat", "--home", str(home)).stdout == "http://127.0.0.1:40123\n"
    nothing = _invoke("endpoint", "nothing", "--home", str(home))
    assert nothing.exit_code == 1 and 'named "nothing" in namespace default' in nothing.output


def test_apply_names_the_field_of_a_bad_inferenceset(tmp_path):
    bad = tmp_path / "bad.yaml"
    doc = json.loads(json.dumps(SET))
    doc["metadata"]["annotations"][autoscaling.METRICS] = (
        "[{name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 1, downthreshold: 5}]")
    doc["metadata"]["annotations"][autoscaling.MIN_REPLICAS] = "3"
    doc["metadata"]["annotations"][autoscaling.MAX_REPLICAS] = "2"
    doc["spec"]["template"]["inference"]["preset"]["name"] = "no-such-model-anywhere"
    bad.write_text(yaml.safe_dump(doc))
    result = _invoke("apply", "-f", str(bad), "--home", str(tmp_path / "home"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    for field in ("metadata.annotations[scaledobject.kaito.sh/metrics][0].downthreshold",
                  "metadata.annotations[scaledobject.kaito.sh/max-replicas]",
                  "spec.template.inference.preset.name"):
        assert field in result.output, (field, result.output)
    assert not (tmp_path / "home" / "store.db").exists()  # nothing written
