"""The webhook as `kaito operator`/`kaito webhook` build it: the operator's provisioner reaches admission.

With Karpenter (node auto-provisioning) a v1beta1 Workspace must name an instanceType; with
`--provisioner byo` it must not, and its nodes are looked up by label (KAITO v0.12 §1.7 rule 3).
Before, the webhook always judged as if nodes were auto-provisioned, so a BYO operator refused
every correct BYO Workspace.
"""

from __future__ import annotations

import copy
import json

import pytest

from kaito.cluster.local import LocalCluster
from kaito.operator.webhook import WebhookSettings, build_webhook_server
from kaito.webhook import http, server

BYO = {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": {"name": "w", "namespace": "default"},
       "resource": {"labelSelector": {"matchLabels": {"pool": "gpus"}}},
       "inference": {"preset": {"name": "phi-4-mini-instruct"}}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {
    "pool": "gpus", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.count": "1",
    "nvidia.com/gpu.memory": "81920"}}}


async def verdict(srv: server.WebhookServer, obj: dict) -> dict:
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "u", "operation": "CREATE", "namespace": "default", "object": obj,
                          "kind": {"group": "kaito.sh", "version": "v1beta1", "kind": "Workspace"}}}
    answer = await srv.handle(http.Request("POST", server.VALIDATE_PATH, {}, json.dumps(review).encode()))
    assert answer.status == 200
    return json.loads(answer.body)["response"]


@pytest.mark.parametrize("provisioner", ["karpenter", "byo"])
async def test_the_provisioner_decides_the_instance_type_rule(tmp_path, provisioner) -> None:
    cluster = LocalCluster(tmp_path / "store.db")
    try:
        await cluster.apply(NODE, field_manager="test")
        srv = build_webhook_server(cluster, WebhookSettings(provisioner=provisioner, namespace="kaito-workspace"))
        without = await verdict(srv, copy.deepcopy(BYO))
        with_sku = copy.deepcopy(BYO)
        with_sku["resource"]["instanceType"] = "Standard_NC24ads_A100_v4"
        named = await verdict(srv, with_sku)
    finally:
        await cluster.close()
    if provisioner == "byo":
        assert without["allowed"] is True, without
        assert named["allowed"] is False and "resource.instanceType" in named["status"]["message"]
    else:
        assert without["allowed"] is False and "resource.instanceType" in without["status"]["message"]
        assert named["allowed"] is True, named


def test_an_unknown_provisioner_is_refused_by_the_cli() -> None:
    from typer.testing import CliRunner

    from kaito.cli.main import app

    result = CliRunner().invoke(app, ["webhook", "--provisioner", "nap"])
    assert result.exit_code != 0 and "--provisioner" in result.output
