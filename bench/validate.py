"""`kaito validate` on one file of many small Workspaces (not a test).

Writes N small v1alpha1 Workspaces (default 20,000: about 4 MB) into one file and measures, in the
same rounds, each as its own process:
* `kaito validate -q -f FILE` of this checkout;
* the named peer: PyYAML's pure-Python `safe_load_all` of the same file (what reading the YAML alone
  costs a Python tool without libyaml);
* with `--baseline-pythonpath DIR`, `kaito validate` of another checkout's `src` (a before/after).
Each line gives wall seconds, CPU seconds and peak RSS (median of `--rounds`), and the ratio to the
peer's CPU time. Wall time depends on what else the machine runs; CPU time much less.

    .venv/bin/python bench/validate.py
    .venv/bin/python bench/validate.py --n 2000 --baseline-pythonpath /tmp/old/src
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = "import sys, yaml\nfor _ in yaml.load_all(open(sys.argv[1]), Loader=yaml.SafeLoader): pass\n"


def build_file(path: Path, n: int) -> None:
    doc = ("apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata:\n  name: ws-{i}\nresource:\n"
           "  instanceType: Standard_NC12s_v3\n  labelSelector:\n    matchLabels:\n      apps: ws-{i}\n"
           "inference:\n  preset:\n    name: falcon-7b\n")
    path.write_text("---\n".join(doc.format(i=i) for i in range(n)))


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s of the child, its peak RSS in MiB, last line of its output)."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own usage, not all children's
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().strip().splitlines()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, lines[-1] if lines else f"exit {proc.returncode}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-pythonpath", help="a checkout's src dir to measure as 'before'")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    kaito = [sys.executable, "-m", "kaito.cli.main", "validate", "-q", "-f"]
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "many.yaml"
        build_file(file, args.n)
        runs = {"peer: PyYAML safe_load_all (pure Python)": ([sys.executable, "-c", PEER, str(file)], env),
                "kaito validate (this checkout)": ([*kaito, str(file)], env)}
        if args.baseline_pythonpath:
            runs["kaito validate (baseline)"] = ([*kaito, str(file)], {**env, "PYTHONPATH": args.baseline_pythonpath})
        results: dict[str, list[tuple[float, float, float, str]]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (argv, run_env) in runs.items():
                results[name].append(measure(argv, run_env))
        print(f"{args.n} documents, {file.stat().st_size / 2**20:.1f} MiB, {args.rounds} rounds, "
              f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")
        peer_cpu = statistics.median(r[1] for r in results[next(iter(runs))])
        for name, rows in results.items():
            wall, cpu = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
            rss = max(r[2] for r in rows)
            print(f"{name:45s} wall {wall:6.2f}s  cpu {cpu:6.2f}s  peak RSS <= {rss:6.0f} MiB  "
                  f"cpu/peer {cpu / peer_cpu:5.2f}  | {rows[-1][3]}")


if __name__ == "__main__":
    main()
