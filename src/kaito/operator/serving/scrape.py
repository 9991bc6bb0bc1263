"""Reads the policy's metrics from each replica's `/metrics` (Prometheus text), as keda-kaito-scaler's
model-pod source does: every series of a metric summed into one number per replica (a server that
serves a model and its adapters exports one series each), a histogram as its `_sum` and `_count`.

Parsing is prometheus_client's own parser. A replica that cannot be scraped (refused, timeout,
non-200, unparsable) is left out of the observation — it is not counted as 0 — while a replica that
answers without the metric counts as 0 (`decide`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kaito.operator.serving.decide import ReplicaSample
from kaito.operator.serving.policy import MetricRule
from kaito.operator.serving.replicas import Replica

log = logging.getLogger("kaito.autoscaler")


def parse_sample(text: str, rules: Iterable[MetricRule]) -> ReplicaSample:
    """The rules' metrics in one exposition text (ValueError when it is not Prometheus text)."""
    rules = list(rules)
    gauges = {r.name for r in rules if r.kind == "gauge"}
    histograms = {r.name for r in rules if r.kind == "histogram"}
    wanted = gauges | {f"{n}_sum" for n in histograms} | {f"{n}_count" for n in histograms}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return ReplicaSample(
        gauges={n: totals[n] for n in gauges if n in totals},
        histograms={n: (totals.get(f"{n}_sum", 0.0), totals[f"{n}_count"])
                    for n in histograms if f"{n}_count" in totals})


async def scrape_replicas(client: httpx.AsyncClient, replicas: Sequence[Replica], rules: Sequence[MetricRule],
                          timeout_s: float) -> dict[str, ReplicaSample]:
    """Scrape `replicas` in parallel; the ones that answered, by name."""
    async def one(replica: Replica) -> tuple[str, ReplicaSample | None]:
        try:
            response = await client.get(replica.metrics_url, timeout=timeout_s)
            if response.status_code != 200:
                log.debug("scrape of %s: HTTP %d", replica.name, response.status_code)
                return replica.name, None
            return replica.name, parse_sample(response.text, rules)
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("scrape of %s failed: %s", replica.name, exc)
            return replica.name, None

    results = await asyncio.gather(*(one(r) for r in replicas))
    return {name: sample for name, sample in results if sample is not None}
