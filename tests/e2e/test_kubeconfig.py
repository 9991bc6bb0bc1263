"""e2e: the same `kaito apply/get/describe/delete` against a real API server (`--kubeconfig`).

The API server is the test-side Kubernetes emulator over HTTP on 127.0.0.1 (there is no
kube-apiserver on this machine); no controller runs behind it, so the Workspace gets no status.
"""

from __future__ import annotations

import asyncio
import json

import yaml

from tests.e2e.conftest import workspace_yaml
from tests.support.kube_emulator import serve_emulator, server_config


async def test_get_describe_apply_delete_on_a_cluster(kaito, tiny_model):
    async with serve_emulator() as env:
        config = kaito.home.parent / "kubeconfig"
        config.write_text(yaml.safe_dump(server_config(env.url)))
        manifest = kaito.write("ws.yaml", workspace_yaml("remote", "phi-3-mini-4k-instruct"))
        flags = ("--kubeconfig", str(config))

        async def run(*args):
            return await asyncio.to_thread(kaito, *args, *flags, timeout=60)

        applied = await run("apply", "-f", manifest)
        assert applied.returncode == 0, applied.stderr
        assert "workspace.kaito.sh/remote created" in applied.stdout
        assert not (kaito.home / "store.db").exists()  # nothing went to the local cluster

        listed = json.loads((await run("get", "workspaces", "-o", "json")).stdout)
        assert [w["metadata"]["name"] for w in listed["items"]] == ["remote"]
        table = (await run("get", "workspaces")).stdout
        assert "remote" in table and "Standard_NC6s_v3" in table
        described = await run("describe", "workspace", "remote")
        assert described.returncode == 0 and "phi-3-mini-4k-instruct" in described.stdout
        assert "svc.cluster.local" in described.stdout

        deleted = await run("delete", "workspace", "remote")
        assert deleted.returncode == 0, deleted.stderr
        missing = await run("get", "workspace", "remote")
        assert missing.returncode == 1 and "not found" in missing.stderr
