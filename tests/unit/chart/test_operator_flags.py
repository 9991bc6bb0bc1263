"""`kaito operator` documents every flag, accepts every argument the chart passes, imports no torch."""

from __future__ import annotations

import subprocess
import sys

import click
import typer.main

from kaito.cli.main import app
from tests.unit.chart.render import one, render
from tests.unit.chart.test_chart import MINIMAL, NON_DEFAULT


def command(name: str) -> click.Command:
    group = typer.main.get_command(app)
    return group.commands[name]


def test_every_flag_is_documented_in_help():
    for name in ("operator", "webhook"):
        proc = subprocess.run([sys.executable, "-m", "kaito.cli.main", name, "--help"], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "400", "TERM": "dumb"})
        assert proc.returncode == 0, proc.stderr
        for param in command(name).params:
            assert param.help and len(param.help) > 10, f"{name} {param.opts}: no help text"
            for opt in param.opts + param.secondary_opts:
                assert opt in proc.stdout, f"kaito {name} --help does not show {opt}"
            assert param.help.split(";")[0][:30] in proc.stdout
    names = {o for p in command("operator").params for o in p.opts + p.secondary_opts}
    for flag in ("--kubeconfig", "--context", "--leader-elect", "--lease-name", "--lease-namespace", "--provisioner",
                 "--cloud", "--runtime-image-registry", "--runtime-image-tag", "--feature-gates",
                 "--metrics-bind-address", "--health-probe-bind-address", "--webhook", "--no-webhook",
                 "--webhook-port", "--cert-dir"):
        assert flag in names, flag


def test_the_chart_passes_only_flags_the_operator_accepts():
    cmd = command("operator")
    gateway = {"featureGates": {"gatewayAPIInferenceExtension": True}}
    for values in ({}, NON_DEFAULT, MINIMAL, gateway):
        container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][0] == "operator"
        ctx = cmd.make_context("operator", list(container["args"][1:]), resilient_parsing=False)
        assert ctx.params["lease_namespace"] == "kaito-system" or not ctx.params["leader_elect"]
        assert ctx.params["inferenceset_gateway"] == (values is gateway)


def test_bad_flags_fail_cleanly_without_traceback():
    for args in (["--provisioner", "gke"], ["--cloud", "gcp"], ["--feature-gates", "Nope=true"],
                 ["--metrics-bind-address", "nonsense"], ["--leader-elect"]):
        proc = subprocess.run([sys.executable, "-m", "kaito.cli.main", "operator", "--no-webhook", *args],
                              capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "kaito:" in proc.stderr, proc.stderr


def test_operator_side_never_imports_torch():
    code = ("import sys, kaito.cli.main, kaito.cli.operator, kaito.operator.process, "
            "kaito.webhook.server, kaito.catalog.facts; "
            "bad = {'torch', 'transformers', 'peft'} & set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
