"""e2e: up, apply an inference Workspace, see it ready, chat through the OpenAI client and `kaito chat`,
delete it (Workspace, Node, process, port all gone), and `kaito down` leaves nothing behind."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import wait_for, workspace_yaml


def _local_nodes(kaito) -> list[str]:
    from kaito.cluster import protocol
    from kaito.cluster.local import LocalCluster

    async def names() -> list[str]:
        cluster = LocalCluster(kaito.home / "store.db")
        try:
            return [n["metadata"]["name"] for n in (await cluster.list(protocol.NODE)).items]
        finally:
            await cluster.close()

    return asyncio.run(names())


def test_inference_workspace_from_apply_to_delete(local_cluster, tiny_model):
    kaito = local_cluster
    manifest = kaito.write("tiny.yaml", workspace_yaml("tiny", tiny_model.repo_id))
    applied = kaito("apply", "-f", manifest, "--wait", "--timeout", "180", timeout=200)
    assert applied.returncode == 0, applied.stderr
    assert "workspace.kaito.sh/tiny created" in applied.stdout

    table = kaito("get", "workspaces", check=True).stdout
    header, row = [line.split() for line in table.strip().splitlines() if line.strip() and "─" not in line][:2]
    assert header[:6] == ["NAME", "INSTANCE", "RESOURCEREADY", "INFERENCEREADY", "JOBSTARTED", "WORKSPACESUCCEEDED"]
    assert row[:5] == ["tiny", "Standard_NC6s_v3", "True", "True", "True"]  # JOBSTARTED is empty for inference
    conditions = {c["type"]: c for c in kaito.workspace("tiny")["status"]["conditions"]}
    for kind in ("ResourceReady", "InferenceReady", "WorkspaceSucceeded"):
        assert conditions[kind]["status"] == "True", conditions[kind]
    nodes = _local_nodes(kaito)
    assert len(nodes) == 1 and nodes[0] in kaito.workspace("tiny")["status"]["workerNodes"]

    endpoint = kaito("endpoint", "tiny", check=True).stdout.strip()
    assert endpoint.startswith("http://127.0.0.1:")
    port = int(endpoint.rsplit(":", 1)[1])
    from openai import OpenAI

    client = OpenAI(base_url=endpoint + "/v1", api_key="unused")
    answer = client.chat.completions.create(model=tiny_model.repo_id, max_tokens=8, temperature=0,
                                            messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content
    assert answer.usage.completion_tokens > 0
    chat = kaito("chat", "tiny", "hello", "--max-tokens", "8", check=True)
    assert chat.stdout.strip()
    assert len(set(kaito.pod_processes().values())) == 1  # one pod: its model server and engine process
    described = kaito("describe", "workspace", "tiny", check=True).stdout
    assert endpoint in described and "WorkloadApplied" in described
    assert "cannot be honoured by the local cluster" in described  # the LocalNode event

    deleted = kaito("delete", "workspace", "tiny", timeout=150)
    assert deleted.returncode == 0, deleted.stderr
    assert kaito("get", "workspace", "tiny").returncode == 1
    wait_for("the node to go", lambda: _local_nodes(kaito) == [], timeout=30)
    assert kaito.pod_processes() == {}
    from kaito.cluster.local.processes import is_port_open

    assert not is_port_open(port)
    # `kaito down` and its checks run in the fixture's teardown.
