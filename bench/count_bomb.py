"""The count bomb against a running local control plane: its RSS before and after (not a test).

Starts `kaito up --detach` in a fresh state directory, waits for it to settle, then tries a Workspace
with `resource.count: N` three ways and samples the plane's RSS (`/proc/PID/status` VmRSS) for
`--window` seconds after each:
1. `kaito apply -f bomb.yaml` (admission at the CLI);
2. a write to the store through `LocalCluster` as every kaito opener makes it (admission in the store);
3. a write past admission (a store opened without it, as a script or an older kaito would): what is
   left is the controller's own re-check and its cap on the nodes it builds.
The bombed Workspace is a template with a foreign image, so that even a build without the bounds
never starts processes for it (only NodeClaims, Nodes and Pods in the store). With
`--baseline-pythonpath DIR` the same runs against another checkout's `src` (use a small `--count`
there: the issue saw 0.4 GB grow to 3.3 GB for a million). The machine is shared: RSS is what counts,
time only bounds the window.

    .venv/bin/python bench/count_bomb.py
    .venv/bin/python bench/count_bomb.py --baseline-pythonpath /tmp/old/src --baseline-count 2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOMB = """apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: bomb
  namespace: default
resource:
  instanceType: Standard_NC6s_v3
  count: {count}
  labelSelector:
    matchLabels:
      apps: bomb
inference:
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""

# Run in a child with the build under test on its path: a store write, with or without admission.
WRITE = """
import asyncio, json, sys, yaml
from kaito.cluster.local import LocalCluster
store, text, guarded = sys.argv[1], sys.argv[2], sys.argv[3] == "guarded"
async def main():
    kwargs = {}
    if guarded:
        from kaito.operator.controlplane import build_local_admission
        kwargs["admission"] = build_local_admission()
    cluster = LocalCluster(store, **kwargs)
    try:
        await cluster.apply(yaml.safe_load(text), field_manager="bench")
        print("stored")
    except Exception as exc:
        print("refused:", type(exc).__name__, str(exc)[:100])
    finally:
        await cluster.close()
asyncio.run(main())
"""

COUNT = """
import asyncio, sys
from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
async def main():
    cluster = LocalCluster(sys.argv[1])
    try:
        print(len((await cluster.list(protocol.NODECLAIM)).items))
    finally:
        await cluster.close()
asyncio.run(main())
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_over(pid: int, seconds: float) -> tuple[float, float]:
    """(peak RSS, RSS at the end) over `seconds`, sampled every 0.5 s."""
    peak = last = rss_mib(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        last = rss_mib(pid)
        peak = max(peak, last)
    return peak, last


def run_build(label: str, env: dict[str, str], count: int, window: float, guarded_write: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**env, "KAITO_HOME": str(home)}
        kaito = [sys.executable, "-m", "kaito.cli.main"]
        subprocess.run([*kaito, "up", "--detach", "--no-dashboard"], env=env, check=True, capture_output=True,
                       timeout=120)
        pid = int((home / "controlplane.pid").read_text())
        try:
            time.sleep(3)
            start = rss_mib(pid)
            print(f"{label}: control plane pid {pid}, RSS at rest {start:.0f} MiB; count {count}")
            text = BOMB.format(count=count)
            bomb = Path(tmp) / "bomb.yaml"
            bomb.write_text(text)
            attempts = [("kaito apply", [*kaito, "apply", "-f", str(bomb)])]
            if guarded_write:
                attempts.append(("store write (admission)",
                                 [sys.executable, "-c", WRITE, str(home / "store.db"), text, "guarded"]))
            attempts.append(("store write past admission",
                             [sys.executable, "-c", WRITE, str(home / "store.db"), text, "unguarded"]))
            for name, argv in attempts:
                done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
                answer = (done.stdout + done.stderr).strip().splitlines()
                peak, end = peak_over(pid, window)
                claims = subprocess.run([sys.executable, "-c", COUNT, str(home / "store.db")], env=env,
                                        capture_output=True, text=True, timeout=120).stdout.strip()
                print(f"  {name:28s} exit {done.returncode}  RSS peak {peak:6.0f} MiB, after {end:6.0f} MiB "
                      f"(x{end / start:.2f} of rest)  NodeClaims {claims}  | {(answer or ['-'])[-1][:90]}")
            subprocess.run([*kaito, "delete", "workspace", "bomb", "--timeout", "120"], env=env, capture_output=True,
                           timeout=180)
            _, end = peak_over(pid, window)
            print(f"  {'after deleting it':28s} RSS {end:6.0f} MiB (x{end / start:.2f} of rest)")
        finally:
            subprocess.run([*kaito, "down"], env=env, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--window", type=float, default=15.0, help="seconds of RSS sampling after each attempt")
    parser.add_argument("--baseline-pythonpath", help="another checkout's src dir, measured the same way")
    parser.add_argument("--baseline-count", type=int, default=2000)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAITO_") and k != "PYTHONPATH"}
    print(json.dumps({"cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1)}))
    run_build("this checkout", env, args.count, args.window, guarded_write=True)
    if args.baseline_pythonpath:
        run_build("baseline", {**env, "PYTHONPATH": args.baseline_pythonpath}, args.baseline_count, args.window,
                  guarded_write=False)


if __name__ == "__main__":
    main()
