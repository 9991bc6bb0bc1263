"""One Workspace, one verdict: the same table through all five admission callers.

Issue 10's acceptance: `kaito validate`, `kaito render`, `kaito apply` to the local cluster, the
admission webhook over HTTPS and the controller's conditions give the same verdict — the same
errors, word for word — for every case of `one_verdict_cases.CASES` (v1alpha1 and v1beta1
Workspaces on the real catalog, including a local model too big for its SKU, the case two
commands once answered differently). Every caller runs whole, in this process, on every case:

* validate: `run_validate` on the case's file (its ConfigMaps in the same file);
* render: `run_render` on that file (objects printed only when admitted);
* apply: `run_apply` to a local cluster whose control plane holds its lock;
* webhook: the operator's HTTPS server (`build_webhook_server`), an AdmissionReview per case, with
  the ConfigMaps and KAITO's tuning templates in the cluster it reads;
* controller: the Workspace written without admission (a kubectl user whose webhook was down),
  reconciled once by the local control plane's settings; its condition holds the errors.

Each answer is also compared with `kaito.api.admission.admit` and with the table's expectation.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import ssl
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml

from kaito.api.admission import AdmissionOptions, ClusterReads, admit
from kaito.api.conditions import ConditionReason
from kaito.api.validation import UrlPolicy
from kaito.catalog.facts import build_catalog_facts
from kaito.cli.render import run_render
from kaito.cli.validate import run_validate
from kaito.cli.workspace_apply import run_apply
from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
from kaito.controller.observe import WorkspaceKey
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from kaito.manifests import tuning_config
from kaito.operator import controlplane
from kaito.operator.webhook import WebhookSettings, build_webhook_server
from kaito.webhook import certs, server, tls
from tests.integration.one_verdict_cases import BIG_MODEL, CASES, RELEASE_NS, Case

pytestmark = pytest.mark.asyncio(loop_scope="module")
GIB = 1024**3


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    """A local model directory whose weights take 40 GiB (a sparse file: no disk is used)."""
    root = tmp_path_factory.mktemp("models") / "big-model"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"],
                                                  "max_position_embeddings": 4096}))
    with open(root / "model.safetensors", "wb") as f:
        f.truncate(40 * GIB)
    return root


class World:
    """The cluster-side callers (webhook, controller) on one local cluster, and a local home to apply to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cluster = LocalCluster(root / "cluster.db", poll_interval=0.02)
        self.paths = controlplane.resolve_paths(root / "home")

    async def start(self) -> None:
        for method in ("lora", "qlora"):  # KAITO's templates, where the chart puts them
            await self.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": f"{method}-params-template", "namespace": RELEASE_NS}, "data": {
                tuning_config.CONFIG_KEY: tuning_config.build_default_training_config(method)}}, field_manager="helm")
        bundle = certs.build_cert_bundle(["localhost"], ip_addresses=["127.0.0.1"])
        tls.write_cert_dir(bundle, self.root / "certs")
        self.webhook = build_webhook_server(self.cluster, WebhookSettings(
            host="127.0.0.1", port=0, cert_dir=self.root / "certs", namespace=RELEASE_NS))
        await self.webhook.start()
        self.client = httpx.AsyncClient(base_url=f"https://127.0.0.1:{self.webhook.port}",
                                        verify=ssl.create_default_context(cadata=bundle.ca_cert.decode()))
        # The local control plane's controller settings (`kaito up`).
        self.reconciler = Reconciler(self.cluster, Settings(url_policy=UrlPolicy.ALLOW_LOCAL,
                                                            release_namespace=RELEASE_NS, pending_requeue_s=0.05))
        # `kaito apply` writes only while a control plane holds the home's lock: hold it here.
        self.paths.home.mkdir(parents=True)
        await LocalCluster(self.paths.store).close()
        self.lock = open(self.paths.lockfile, "a+")  # noqa: SIM115 - held for the module
        fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.paths.pidfile.write_text(f"{os.getpid()}\n")

    async def stop(self) -> None:
        await self.client.aclose()
        await self.webhook.stop()
        await self.cluster.close()
        self.lock.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("world"))
    await w.start()
    yield w
    await w.stop()


def materialize(case: Case, big_model: Path) -> tuple[dict, list[dict], str]:
    """(Workspace, ConfigMaps, namespace): the case in its own namespace, with the big model's path."""
    namespace = case.id[:63].rstrip("-")
    text = json.dumps(case.workspace).replace(BIG_MODEL, str(big_model))
    ws = json.loads(text)
    ws["metadata"]["namespace"] = namespace
    configmaps = copy.deepcopy(case.configmaps)
    for cm in configmaps:
        cm["metadata"]["namespace"] = namespace
    return ws, configmaps, namespace


def cli_errors(lines: str) -> list[str]:
    """`field: message` of each error line the CLI printed (`file:line: error: field: message`)."""
    return [line.split(": error: ", 1)[1] for line in lines.splitlines() if ": error: " in line]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_every_caller_gives_the_same_verdict(case: Case, world: World, big_model: Path, tmp_path, capsys) -> None:
    ws, configmaps, namespace = materialize(case, big_model)
    path = tmp_path / f"{case.id}.yaml"
    path.write_text(yaml.safe_dump_all([*configmaps, ws], sort_keys=False))
    found = {(namespace, cm["metadata"]["name"]): cm["data"] for cm in configmaps}
    for method in ("lora", "qlora"):
        found[(RELEASE_NS, f"{method}-params-template")] = {
            tuning_config.CONFIG_KEY: tuning_config.build_default_training_config(method)}
    reads = ClusterReads(configmaps=found, complete=True)
    verdict = admit(ws, facts=build_catalog_facts(), options=AdmissionOptions(release_namespace=RELEASE_NS),
                    reads=reads)
    expected = [str(e) for e in verdict.errors]
    # The table's answer: admitted, or refused naming each field expected.
    if not case.expect:
        assert expected == [], expected
    for field_path, phrase in case.expect:
        assert any(e.path == field_path and phrase.lower() in e.message.lower() for e in verdict.errors), expected

    # 1. kaito validate
    capsys.readouterr()
    code = run_validate([str(path)], quiet=True)
    assert cli_errors(capsys.readouterr().out) == expected and code == (1 if expected else 0)

    # 2. kaito render
    code, text, messages = run_render([str(path)], registry=None, tag=None, cloud="azure", byo=False)
    assert cli_errors("\n".join(messages)) == expected
    assert all(m.startswith(f"{path}:") for m in messages), messages
    assert code == (1 if expected else 0) and bool(text) is not bool(expected), messages

    # 3. kaito apply, to the local cluster
    capsys.readouterr()
    code = await run_apply([str(path)], None, None, world.paths.home, False, 0)
    out = capsys.readouterr()
    assert cli_errors(out.out) == expected, out
    assert code == (1 if expected else 0), out

    # 4. the admission webhook, over HTTPS (the ConfigMaps it reads are in its cluster)
    for cm in configmaps:
        await world.cluster.apply(cm, field_manager="kubectl")
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "operation": "CREATE", "namespace": namespace, "object": ws,
        "kind": {"group": "kaito.sh", "version": ws["apiVersion"].split("/")[1], "kind": "Workspace"}}}
    answer = (await world.client.post(server.VALIDATE_PATH, json=review)).json()["response"]
    assert answer["allowed"] is not bool(expected)
    assert answer.get("status", {}).get("message", "") == "; ".join(expected)

    # 5. the controller: written without admission, re-checked by the reconcile
    await world.cluster.apply(copy.deepcopy(ws), field_manager="kubectl")
    await world.reconciler.reconcile(WorkspaceKey(namespace, ws["metadata"]["name"]))
    stored = await world.cluster.get(protocol.WORKSPACE, ws["metadata"]["name"], namespace)
    (done,) = [c for c in stored["status"]["conditions"] if c["type"] == "WorkspaceSucceeded"]
    if expected:  # the failed condition carries the errors (under its section's condition too, but metadata has none)
        assert (done["status"], done["reason"], done["message"]) == ("False", "workspaceFailed", "; ".join(expected))
    else:
        assert done["reason"] != "workspaceFailed", done
        assert not [c for c in stored["status"]["conditions"] if c["reason"] == ConditionReason.VALIDATION_FAILED]
    assert stored["status"]["state"] == ("Failed" if expected else "Pending")


async def test_the_table_holds_both_versions_and_both_answers() -> None:
    versions = {c.workspace["apiVersion"] for c in CASES}
    assert versions == {"kaito.sh/v1alpha1", "kaito.sh/v1beta1"}
    assert sum(not c.expect for c in CASES) >= 8 and sum(bool(c.expect) for c in CASES) >= 15
    too_big = [c for c in CASES if "local-model-too-big" in c.id]
    assert len(too_big) == 2 and all(c.expect for c in too_big)
