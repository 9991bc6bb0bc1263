"""`kaito operator` and `kaito webhook`: the in-cluster processes, as the Helm chart runs them.

Thin: flags (each with KAITO's environment variable where KAITO has one) become the settings of
`kaito.operator.process` and `kaito.operator.webhook`, which run them. Nothing heavy is imported
until a command runs; neither command ever imports torch.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import typer

from kaito.manifests import images

SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def release_namespace(explicit: str | None) -> str | None:
    """The namespace the operator runs in: flag, `RELEASE_NAMESPACE`, then the service account's."""
    if explicit:
        return explicit
    if os.environ.get("RELEASE_NAMESPACE"):
        return os.environ["RELEASE_NAMESPACE"]
    try:
        return SA_NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        return None


def _fail(message: str) -> typer.Exit:
    typer.echo(f"kaito: {message}", err=True)
    return typer.Exit(2)


def _cluster(kubeconfig: Path | None, context: str | None):
    from kaito.cluster import errors
    from kaito.cluster.kube import KubeCluster

    try:
        return KubeCluster.from_kubeconfig(kubeconfig, context)
    except errors.ClusterError as exc:
        raise _fail(str(exc)) from None


KNOWN_FEATURE_GATES = frozenset({"Karpenter"})


def parse_feature_gates(text: str) -> dict[str, bool]:
    """`Karpenter=true,Other=false` → dict; unknown gates or bad values raise ValueError naming them.

    The chart passes KAITO's `--feature-gates`; they are checked so a typo fails the rollout, but
    none changes behaviour here (`--provisioner` chooses Karpenter provisioning)."""
    gates: dict[str, bool] = {}
    unknown: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or value.lower() not in ("true", "false"):
            raise ValueError(f"invalid feature gate {part!r}: expected NAME=true|false")
        if name not in KNOWN_FEATURE_GATES:
            unknown.append(name)
        gates[name] = value.lower() == "true"
    if unknown:
        raise ValueError(f"invalid feature gate(s) {', '.join(sorted(unknown))}")
    return gates


def _address(flag: str, value: str):
    from kaito.operator.metrics import parse_bind_address

    try:
        return parse_bind_address(value)
    except ValueError as exc:
        raise _fail(f"{flag}: {exc}") from None


def _webhook_settings(**kwargs):
    from kaito.operator.webhook import WebhookSettings

    try:
        return WebhookSettings(**kwargs)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    @app.command("operator")
    def operator(
        kubeconfig: Path | None = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG",
                                               help="kubeconfig file; default: in-cluster config, then ~/.kube/config"),
        context: str | None = typer.Option(None, "--context", help="kubeconfig context to use"),
        leader_elect: bool = typer.Option(False, "--leader-elect/--no-leader-elect",
                                          help="hold a coordination.k8s.io Lease; only the leader reconciles"),
        lease_name: str = typer.Option("kaito-operator-leader", "--lease-name", help="name of the leader Lease"),
        lease_namespace: str | None = typer.Option(
            None, "--lease-namespace", help="namespace of the Lease and the webhook Secret; default: "
                                            "RELEASE_NAMESPACE, then the pod's namespace"),
        identity: str | None = typer.Option(None, "--identity", envvar="POD_NAME",
                                            help="this replica's name in the Lease; default: host name + random"),
        lease_duration: float = typer.Option(15.0, "--lease-duration", min=1.0,
                                             help="seconds a standby waits after the last renewal"),
        renew_deadline: float = typer.Option(10.0, "--renew-deadline", min=0.5,
                                             help="seconds the leader keeps trying to renew before giving up"),
        retry_period: float = typer.Option(2.0, "--retry-period", min=0.05, help="seconds between Lease attempts"),
        provisioner: str = typer.Option("karpenter", "--provisioner", envvar="KAITO_NODE_PROVISIONER",
                                        help="karpenter: create NodeClaims for missing GPU nodes; byo: labelled nodes only"),
        cloud: str = typer.Option("azure", "--cloud", envvar="CLOUD_PROVIDER", help="SKU table: azure | aws"),
        runtime_image_registry: str = typer.Option(images.DEFAULT_REGISTRY, "--runtime-image-registry",
                                                   envvar="PRESET_REGISTRY_NAME",
                                                   help="registry of the model server and trainer images"),
        runtime_image_tag: str | None = typer.Option(None, "--runtime-image-tag", envvar="KAITO_RUNTIME_IMAGE_TAG",
                                                     help="runtime image tag; default: each preset's own tag"),
        feature_gates: str = typer.Option("", "--feature-gates", envvar="FEATURE_GATES",
                                          help="NAME=true|false,... (known: Karpenter)"),
        workers: int = typer.Option(5, "--workers", min=1, help="concurrent reconciles"),
        metrics_bind_address: str = typer.Option(":8080", "--metrics-bind-address",
                                                 help="HOST:PORT of Prometheus /metrics; 0 disables"),
        health_probe_bind_address: str = typer.Option(":8081", "--health-probe-bind-address",
                                                      help="HOST:PORT of /healthz and /readyz; 0 disables"),
        webhook: bool = typer.Option(True, "--webhook/--no-webhook", help="serve the admission webhook"),
        webhook_port: int = typer.Option(9443, "--webhook-port", envvar="WEBHOOK_PORT", help="HTTPS port of the admission webhook"),
        webhook_service: str | None = typer.Option(None, "--webhook-service", envvar="WEBHOOK_SERVICE",
                                                   help="Service in front of the webhook (certificate name)"),
        webhook_configuration: str = typer.Option("", "--webhook-configuration",
                                                  help="Validating- and MutatingWebhookConfiguration whose caBundles to keep"),
        cert_dir: Path = typer.Option(Path("/tmp/k8s-webhook-server/serving-certs"), "--cert-dir",
                                      help="directory with tls.crt and tls.key"),
        self_managed_certs: bool = typer.Option(
            True, "--self-managed-certs/--no-self-managed-certs",
            help="make a CA and serving certificate in a Secret and patch the caBundle; off: use --cert-dir as mounted"),
        cert_secret: str = typer.Option("workspace-webhook-cert", "--cert-secret",
                                        help="Secret holding self-managed certificates"),
        resync_period: float = typer.Option(600.0, "--resync-period", min=0.0,
                                            help="seconds between full resyncs; 0 disables"),
        log_level: str = typer.Option("info", "--log-level", help="debug | info | warning | error"),
    ) -> None:
        """Run the Workspace operator (controller + admission webhook) against a cluster."""
        from kaito.controller.settings import Settings
        from kaito.operator import logs
        from kaito.operator import process as op
        from kaito.operator.leader_election import LeaseConfig

        if provisioner not in ("karpenter", "byo"):
            raise _fail(f"--provisioner must be karpenter or byo, not {provisioner!r}")
        if cloud not in ("azure", "aws"):
            raise _fail(f"--cloud must be azure or aws, not {cloud!r}")
        if log_level.lower() not in ("debug", "info", "warning", "error"):
            raise _fail(f"--log-level must be debug, info, warning or error, not {log_level!r}")
        if renew_deadline >= lease_duration:
            raise _fail("--renew-deadline must be shorter than --lease-duration")
        try:
            parse_feature_gates(feature_gates)
        except ValueError as exc:
            raise _fail(f"--feature-gates: {exc}") from None
        metrics_addr = _address("--metrics-bind-address", metrics_bind_address)
        probe_addr = _address("--health-probe-bind-address", health_probe_bind_address)
        namespace = release_namespace(lease_namespace)
        if leader_elect and not namespace:
            raise _fail("--leader-elect needs --lease-namespace (or RELEASE_NAMESPACE, or in-cluster)")
        who = identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        hook = _webhook_settings(cloud=cloud, port=webhook_port, cert_dir=cert_dir, self_managed=self_managed_certs,
                                 service=webhook_service, namespace=namespace, secret=cert_secret,
                                 configuration=webhook_configuration, identity=who,
                                 provisioner=provisioner) if webhook else None
        logs.configure_logging(log_level)
        cluster = _cluster(kubeconfig, context)
        settings = Settings(provisioner=provisioner, cloud=cloud, image_registry=runtime_image_registry,  # type: ignore[arg-type]
                            image_tag=runtime_image_tag, workers=workers, release_namespace=namespace)
        cfg = op.OperatorConfig(
            settings=settings, leader_elect=leader_elect,
            lease=LeaseConfig(name=lease_name, namespace=namespace or "", identity=who,
                              lease_duration=lease_duration, renew_deadline=renew_deadline,
                              retry_period=retry_period),
            metrics_address=metrics_addr, probe_address=probe_addr, resync_period=resync_period or None,
            webhook=hook,
        )
        raise typer.Exit(op.run_until_signalled(lambda: op.Operator(cluster, cfg), cluster.close))

    @app.command("webhook")
    def webhook_only(
        kubeconfig: Path | None = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file"),
        context: str | None = typer.Option(None, "--context", help="kubeconfig context to use"),
        cloud: str = typer.Option("azure", "--cloud", envvar="CLOUD_PROVIDER", help="SKU table: azure | aws"),
        provisioner: str = typer.Option("karpenter", "--provisioner", envvar="KAITO_NODE_PROVISIONER",
                                        help="karpenter or byo: how v1beta1 Workspaces are admitted (instanceType)"),
        host: str = typer.Option("0.0.0.0", "--host", help="address to listen on"),
        webhook_port: int = typer.Option(9443, "--webhook-port", envvar="WEBHOOK_PORT", help="HTTPS port of the admission webhook"),
        webhook_service: str | None = typer.Option(None, "--webhook-service", envvar="WEBHOOK_SERVICE",
                                                   help="Service in front of the webhook (certificate name)"),
        webhook_configuration: str = typer.Option("", "--webhook-configuration",
                                                  help="Validating- and MutatingWebhookConfiguration whose caBundles to keep"),
        namespace: str | None = typer.Option(None, "--namespace", help="release namespace (tuning templates, Secret)"),
        cert_dir: Path = typer.Option(Path("/tmp/k8s-webhook-server/serving-certs"), "--cert-dir",
                                      help="directory with tls.crt and tls.key"),
        self_managed_certs: bool = typer.Option(False, "--self-managed-certs/--no-self-managed-certs",
                                                help="make and keep the certificate in a Secret"),
        cert_secret: str = typer.Option("workspace-webhook-cert", "--cert-secret", help="Secret for self-managed certificates"),
        log_level: str = typer.Option("info", "--log-level", help="debug | info | warning | error"),
    ) -> None:
        """Serve only the admission webhook for Workspaces (HTTPS, AdmissionReview v1)."""
        from kaito.operator import logs
        from kaito.operator.webhook import run_webhook_until_signalled

        if cloud not in ("azure", "aws"):
            raise _fail(f"--cloud must be azure or aws, not {cloud!r}")
        if provisioner not in ("karpenter", "byo"):
            raise _fail(f"--provisioner must be karpenter or byo, not {provisioner!r}")
        settings = _webhook_settings(cloud=cloud, host=host, provisioner=provisioner, port=webhook_port, cert_dir=cert_dir,
                                     self_managed=self_managed_certs, service=webhook_service,
                                     namespace=release_namespace(namespace), secret=cert_secret,
                                     configuration=webhook_configuration, identity=uuid.uuid4().hex[:8])
        logs.configure_logging(log_level)
        cluster = _cluster(kubeconfig, context)
        code = run_webhook_until_signalled(cluster, settings, lambda line: typer.echo(f"kaito webhook: {line}", err=True))
        raise typer.Exit(code)
