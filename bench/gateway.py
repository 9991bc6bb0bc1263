"""Local gateway benchmark: what one hop through `kaito.operator.serving.gateway` costs (not a test).

Two fake model servers (`tests.support.fake_replicas`, answering at once) on 127.0.0.1; the same
httpx client sends N small chat requests at concurrency C, first straight to the replicas (round
robin: the named peer), then through the gateway over both. Prints requests per second and the
median and p99 latency of each, and their ratios. Everything shares one event loop and one process,
so the gateway's CPU competes with the client's: the ratio is an upper bound on the overhead.

    .venv/bin/python bench/gateway.py                 # N = 2000, C = 32, 3 rounds
    .venv/bin/python bench/gateway.py --n 500 --c 8
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support when run as a script

import httpx  # noqa: E402
from tests.support.fake_replicas import start_fakes  # noqa: E402

from kaito.operator.serving.gateway import Gateway, GatewaySettings  # noqa: E402
from kaito.operator.serving.replicas import ReplicaPool  # noqa: E402


async def drive(client: httpx.AsyncClient, urls: list[str], n: int, c: int) -> tuple[float, list[float]]:
    turn = itertools.cycle(urls)
    latencies: list[float] = []
    sem = asyncio.Semaphore(c)

    async def one(i: int) -> None:
        async with sem:
            body = {"model": "bench", "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 4}
            began = time.perf_counter()
            reply = await client.post(next(turn) + "/v1/chat/completions", json=body)
            latencies.append(time.perf_counter() - began)
            reply.raise_for_status()

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - began), latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main(n: int, c: int, rounds: int) -> None:
    fakes = await start_fakes(2)
    pool = ReplicaPool(f.replica() for f in fakes)
    gateway = Gateway(GatewaySettings(model_name="bench"), pool)
    await gateway.start()
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    try:
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            await drive(client, [f.url for f in fakes], min(n, 100), c)  # warm up both paths
            await drive(client, [gateway.url], min(n, 100), c)
            runs: dict[str, list[tuple[float, list[float]]]] = {"direct": [], "via": []}
            for _ in range(rounds):  # interleaved, so a neighbour's load hits both paths alike
                runs["direct"].append(await drive(client, [f.url for f in fakes], n, c))
                runs["via"].append(await drive(client, [gateway.url], n, c))
            (direct_rps, direct), (via_rps, via) = (sorted(runs[k], key=lambda r: r[0])[rounds // 2] for k in runs)
    finally:
        await gateway.stop()
        for fake in fakes:
            await fake.stop()
    print(f"requests={n} concurrency={c} replicas=2 (fake, instant answers); median of {rounds} interleaved rounds")
    print(f"direct (round robin, the peer): {direct_rps:8.0f} req/s  p50 {p(direct, 50) * 1e3:6.2f} ms  "
          f"p99 {p(direct, 99) * 1e3:6.2f} ms")
    print(f"through the gateway:            {via_rps:8.0f} req/s  p50 {p(via, 50) * 1e3:6.2f} ms  "
          f"p99 {p(via, 99) * 1e3:6.2f} ms")
    print(f"gateway / direct: throughput x{via_rps / direct_rps:.2f}, p50 latency x{p(via, 50) / p(direct, 50):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--c", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.c, args.rounds))
