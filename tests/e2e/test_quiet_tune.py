"""`kaito tune` on plain LoRA prints nothing from libraries the run does not use.

peft imports bitsandbytes whenever it is installed, and bitsandbytes prints a kernel warning on a
machine without CUDA; a plain LoRA run keeps it out (`kaito.runtime.libraries`). This runs the real
command on the tiny model and reads everything it wrote to stderr.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

NOISE = re.compile(r"bitsandbytes|kernels|gemm_4bit|warn|deprecat", re.IGNORECASE)


def test_plain_lora_run_has_no_foreign_warnings(tmp_path, tiny_model):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"hi {i}"},
                                                     {"role": "assistant", "content": "hello there"}]}) + "\n"
                            for i in range(8)))
    out = tmp_path / "adapter"
    env = {**tiny_model.env(), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-m", "kaito.cli.main", "tune", "--model", tiny_model.repo_id,
                           "--data", str(data), "--output", str(out), "--max-steps", "2",
                           "--set", "ModelConfig.torch_dtype=float32"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "adapter_config.json").exists()
    noisy = [line for line in proc.stderr.splitlines() if NOISE.search(line)]
    assert noisy == [], "\n".join(noisy)
    assert "adapter written to" in proc.stderr
