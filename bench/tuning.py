"""Benchmark: our trainer (`python -m kaito.runtime.tuning`) against a plain transformers Trainer + PEFT
loop with the same settings. Prints samples/s and peak RSS of each and the ratios (targets: speed
≥ 1.0×, memory ≤ 1.1×). Not a test: numbers depend on the machine.

    .venv/bin/python bench/tuning.py [--steps 30] [--batch 8] [--repeats 2] [--hidden 256]

Each variant runs in its own process (fresh peak RSS), alternating, best of `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLAIN = r'''
import json, resource, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                          TrainingArguments)
import datasets
model_dir, data, out, steps, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
tok = AutoTokenizer.from_pretrained(model_dir)
rows = [json.loads(line) for line in open(data)]
def render(r):
    user = [{"role": "user", "content": r["prompt"]}]
    full = tok.apply_chat_template(user + [{"role": "assistant", "content": r["completion"]}], tokenize=False)
    head = tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    ids = tok(full, add_special_tokens=False)["input_ids"]
    n = len(tok(head, add_special_tokens=False)["input_ids"])
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * n + ids[n:]}
ds = datasets.Dataset.from_list([render(r) for r in rows]).shuffle(seed=42)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
model.config.use_cache = False
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir=out + "/ck", per_device_train_batch_size=batch, max_steps=steps,
                         learning_rate=5e-5, save_strategy="no", logging_steps=10, seed=42, use_cpu=True,
                         report_to="none", disable_tqdm=True)
result = Trainer(model=model, args=args, train_dataset=ds,
                 data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=-100)).train()
model.save_pretrained(out)
print(json.dumps({"samples_per_second": result.metrics["train_samples_per_second"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

OURS = r'''
import json, resource, sys, io, contextlib
from pathlib import Path
from kaito.runtime.tuning.__main__ import main
model_dir, data, out, steps, batch = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["--model", model_dir, "--data", data, "--output", out, "--max-steps", steps, "--batch-size", batch,
                 "--learning-rate", "5e-5", "--set", "ModelConfig.torch_dtype=float32",
                 "--set", "TrainingArguments.save_strategy=no"])
assert code == 0, code
marker = json.loads((Path(out) / "fine_tuning_completed.txt").read_text())
print(json.dumps({"samples_per_second": marker["train_samples_per_second"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def build_model(root: Path, hidden: int) -> Path:
    """The test suite's tokenizer with a wider Llama, so compute (not overhead) dominates a step."""
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_model import build_tiny_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tiny = build_tiny_model(root / "hub")
    tok = AutoTokenizer.from_pretrained(tiny.path)
    model_dir = root / "model"
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return model_dir


def run(script: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"variant failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kaito-bench-tuning-") as tmp:
        root = Path(tmp)
        model_dir = build_model(root, opts.hidden)
        data = root / "data.jsonl"
        data.write_text("".join(json.dumps({"prompt": f"question number {i} about the lazy dog?",
                                            "completion": "the quick brown fox jumps over it " * 3}) + "\n"
                                for i in range(256)))
        best: dict[str, dict] = {}
        for rep in range(opts.repeats):
            for name, script in (("plain", PLAIN), ("kaito", OURS)):
                out = root / f"{name}-{rep}"
                result = run(script, [str(model_dir), str(data), str(out), str(opts.steps), str(opts.batch)])
                print(f"  {name:5s} run {rep + 1}: {result['samples_per_second']:8.2f} samples/s  "
                      f"peak RSS {result['peak_rss_mib']:7.1f} MiB", flush=True)
                prev = best.get(name)
                best[name] = {
                    "samples_per_second": max(result["samples_per_second"], prev["samples_per_second"] if prev else 0),
                    "peak_rss_mib": min(result["peak_rss_mib"], prev["peak_rss_mib"] if prev else float("inf"))}
    plain, ours = best["plain"], best["kaito"]
    print(f"steps={opts.steps} batch={opts.batch} hidden={opts.hidden} (best of {opts.repeats})")
    print(f"plain Trainer+PEFT : {plain['samples_per_second']:8.2f} samples/s  {plain['peak_rss_mib']:7.1f} MiB")
    print(f"kaito.runtime.tuning: {ours['samples_per_second']:8.2f} samples/s  {ours['peak_rss_mib']:7.1f} MiB")
    speed = ours["samples_per_second"] / plain["samples_per_second"]
    memory = ours["peak_rss_mib"] / plain["peak_rss_mib"]
    print(f"speed ratio  {speed:.2f}x (target >= 1.0)   memory ratio {memory:.2f}x (target <= 1.1)")


if __name__ == "__main__":
    main()
