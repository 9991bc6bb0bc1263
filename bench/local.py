"""Bench (not a test): time from `kaito apply` to Ready on the local cluster, against loading the same
tiny model in a bare Python process, as a ratio (target ≤ 1.5).

Both sides start a fresh interpreter and import torch + transformers; the local cluster adds the
controller (NodeClaim → Node → Deployment), the runner (pod process, readiness probe) and the model
server's own start-up. Run: `.venv/bin/python bench/local.py [--runs N]`.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE = """
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained({repo!r})
model = AutoModelForCausalLM.from_pretrained({repo!r})
ids = tok("hello", return_tensors="pt").input_ids
model.generate(ids, max_new_tokens=1, do_sample=False)
"""

WORKSPACE = """apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: bench{n}
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: bench{n}
inference:
  preset:
    name: {repo}
"""


def kaito(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kaito.cli.main", *args], env=env, capture_output=True,
                          text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    from tests.support.tiny_model import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="kaito-bench-local-"))
    model = build_tiny_model(work / "hf")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAITO_")}
    env.update(model.env())
    env["KAITO_HOME"] = str(work / "home")

    bare = []
    for _ in range(opts.runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", BARE.format(repo=model.repo_id)], env=env, check=True,
                       capture_output=True)
        bare.append(time.perf_counter() - started)

    local = []
    kaito(env, "up", "--detach")
    try:
        for n in range(opts.runs):
            path = work / f"bench{n}.yaml"
            path.write_text(WORKSPACE.format(n=n, repo=model.repo_id))
            started = time.perf_counter()
            kaito(env, "apply", "-f", str(path), "--wait", "--timeout", "300")
            local.append(time.perf_counter() - started)
            kaito(env, "delete", "workspace", f"bench{n}")
    finally:
        kaito(env, "down")
    b, loc = statistics.median(bare), statistics.median(local)
    print(f"bare python load of {model.repo_id}: median {b:.2f}s  ({', '.join(f'{x:.2f}' for x in bare)})")
    print(f"kaito apply → Ready (local cluster): median {loc:.2f}s  ({', '.join(f'{x:.2f}' for x in local)})")
    print(f"ratio apply→ready / bare load: {loc / b:.2f}  (target ≤ 1.5)")


if __name__ == "__main__":
    main()
