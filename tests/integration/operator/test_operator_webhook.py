"""The webhook inside `kaito operator`: self-managed certificate in a Secret, HTTPS admission."""

from __future__ import annotations

import asyncio
import base64
import signal
import ssl

import httpx

from kaito.cluster import errors, protocol
from tests.integration.controller.harness import make_workspace
from tests.integration.operator.conftest import NAMESPACE, free_port


async def test_operator_serves_admission_with_its_own_certificate(env):
    port = free_port()
    op = await env.start_operator("op-hook", "--webhook", "--webhook-port", str(port), "--self-managed-certs",
                                  "--webhook-service", "kaito-webhook", "--no-leader-elect")
    # start_operator passes --no-webhook first; the later --webhook wins (click keeps the last value)
    await env.wait_serving(op)
    secret = None
    for _ in range(100):
        try:
            secret = await env.cluster.get(protocol.SECRET, "workspace-webhook-cert", NAMESPACE)
            break
        except errors.NotFound:
            await asyncio.sleep(0.1)
    assert secret is not None, op.log.read_text()
    ctx = ssl.create_default_context(cadata=base64.b64decode(secret["data"]["ca-cert.pem"]).decode())
    ctx.check_hostname = False  # the certificate names the Service; the chain is still verified

    def review(obj):
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u1", "operation": "CREATE", "namespace": "default", "object": obj,
                            "kind": {"group": "kaito.sh", "version": "v1alpha1", "kind": "Workspace"}}}

    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=ctx) as client:
        for _ in range(50):
            try:
                ok = await client.post("/validate/workspace.kaito.sh", json=review(make_workspace("good")))
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        assert ok.status_code == 200 and ok.json()["response"]["allowed"] is True, ok.text
        bad = make_workspace("bad", inference={"preset": {"name": "no-such-model"}})
        denied = (await client.post("/validate/workspace.kaito.sh", json=review(bad))).json()["response"]
        assert denied["allowed"] is False and "inference.preset.name" in denied["status"]["message"]
        assert (await client.post("/validate/workspace.kaito.sh", content=b"garbage")).status_code == 400
    assert await op.probe("/readyz") == 200
    metrics = await op.metrics()
    assert 'kaito_webhook_admission_total{allowed="false",operation="CREATE"} 1.0' in metrics
    op.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(op.proc.wait(), timeout=10.0) == 0


async def test_standalone_webhook_with_a_mounted_certificate(env, tmp_path):
    import os
    import sys

    from kaito.webhook import certs, tls

    bundle = certs.build_cert_bundle(["localhost"], ip_addresses=["127.0.0.1"])
    tls.write_cert_dir(bundle, tmp_path / "certs")
    port = free_port()
    log = tmp_path / "webhook.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kaito.cli.main", "webhook", "--kubeconfig", str(env.kubeconfig),
            "--host", "127.0.0.1", "--webhook-port", str(port), "--cert-dir", str(tmp_path / "certs"),
            "--namespace", NAMESPACE, stdout=out, stderr=out, env=dict(os.environ))
    try:
        ctx = ssl.create_default_context(cadata=bundle.ca_cert.decode())
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=ctx) as client:
            for _ in range(100):
                try:
                    health = await client.get("/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(log.read_text())
            assert health.status_code == 200
            body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "request": {"uid": "u2", "operation": "CREATE", "namespace": "default",
                                "object": make_workspace("x", resource={"count": 1})}}
            answer = (await client.post("/validate/workspace.kaito.sh", json=body)).json()["response"]
            assert answer["uid"] == "u2" and answer["allowed"] is False
            assert "resource.labelSelector" in answer["status"]["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10.0) == 0, log.read_text()


async def test_standalone_webhook_without_certificate_fails_cleanly(env, tmp_path):
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kaito.cli.main", "webhook", "--kubeconfig", str(env.kubeconfig),
        "--cert-dir", str(tmp_path / "nothing"), "--webhook-port", str(free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert b"tls.crt" in err and b"Traceback" not in err
