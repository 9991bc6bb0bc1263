"""How a container's probe becomes what the local runner runs: Kubernetes' defaults, ports mapped."""

from __future__ import annotations

import pytest

from kaito.cluster.local import pods, probes

CONTAINERS = [{"name": "srv", "ports": [{"name": "http", "containerPort": 5000}]}]
PORTS = {5000: 41000}


def test_defaults_are_kubernetes_defaults():
    spec = probes.build_probe("liveness", {"httpGet": {"path": "/health", "port": 5000}}, CONTAINERS, PORTS)
    assert spec.url == "http://127.0.0.1:41000/health"
    assert (spec.initial_delay_s, spec.period_s, spec.timeout_s) == (0.0, 10.0, 1.0)
    assert (spec.success_threshold, spec.failure_threshold, spec.grace_s) == (1, 3, None)


def test_fields_named_ports_and_probe_grace():
    spec = probes.build_probe("readiness", {"httpGet": {"path": "ready", "port": "http", "scheme": "HTTPS",
                                                        "httpHeaders": [{"name": "X-A", "value": "1"}]},
                                            "initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
                                            "successThreshold": 2, "failureThreshold": 4,
                                            "terminationGracePeriodSeconds": 7}, CONTAINERS, PORTS)
    assert spec.url == "https://127.0.0.1:41000/ready" and spec.headers == (("X-A", "1"),)
    assert (spec.initial_delay_s, spec.period_s, spec.timeout_s) == (5.0, 2.0, 3.0)
    assert (spec.success_threshold, spec.failure_threshold, spec.grace_s) == (2, 4, 7.0)
    liveness = probes.build_probe("liveness", {"tcpSocket": {"port": "http"}, "successThreshold": 5}, CONTAINERS, PORTS)
    assert liveness.port == 41000 and liveness.success_threshold == 1  # must be 1 for liveness, as in Kubernetes


@pytest.mark.parametrize("probe,words", [
    ({"httpGet": {"port": "htp"}}, "'htp' is not a named container port"),
    ({"tcpSocket": {"port": 6000}}, "6000 is not a container port"),
    ({"grpc": {"port": 5000}}, "only httpGet, tcpSocket and exec"),
    ({"exec": {"command": []}}, "exec probe without a command"),
])
def test_probes_that_cannot_run_here_say_why(probe, words):
    with pytest.raises(pods.PodConfigError, match=words):
        probes.build_probe("readiness", probe, CONTAINERS, PORTS)
