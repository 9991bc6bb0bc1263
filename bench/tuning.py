"""Benchmark: our trainer (`python -m kaito.runtime.tuning`) against a plain transformers Trainer + PEFT
loop with the same settings. Prints samples/s and peak RSS of each, their median and spread, and the
ratios (targets: speed >= 1.0x, memory <= 1.1x). Not a test: numbers depend on the machine.

    .venv/bin/python bench/tuning.py [--steps 30] [--batch 8] [--repeats 3] [--threads N] [--warmup-steps 3]

Made to be fair on a shared, loaded machine:
- the variants run interleaved (plain, ours, plain, ours, ...), each in a fresh process (its own
  peak RSS), so load that comes and goes hits both alike; the median of `--repeats` is reported
  with its spread, and the ratio is also given per interleaved pair (neighbours share the load);
- both pin torch (and OpenMP/MKL) to the same `--threads`;
- throughput is timed by the same callback in both, from the end of optimizer step
  `--warmup-steps` to the end of the last step: imports, model loading, data preparation and the
  first (slow) steps are outside the window;
- both run exactly `--steps` optimizer steps (checked) over the same rows in the same order:
  the same chat-template rendering and prompt masking, shuffled with seed 42, no train/test split
  (ours runs its lora template, whose train_test_split is 1), batch `--batch`, float32, LoRA r=8
  alpha=8 on the default target modules, learning rate 5e-5, logging every 10 steps, no saving.
  Padding: both use DataCollatorForSeq2Seq with dynamic padding to the longest row of each batch
  (no padding to max_length, no packing; ours has pad_to_multiple_of unset), and no row is long
  enough to be truncated. Same rows, seed and model give (near) the same training loss, which
  is printed as a parity check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Shared by both variants: the thread pin and the step clock (the same code times both).
PRELUDE = r'''
import json, os, resource, sys, time
import torch
torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
from transformers import TrainerCallback

class StepClock(TrainerCallback):
    warmup = int(os.environ["BENCH_WARMUP_STEPS"])
    start = end = None
    steps = 0
    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if state.global_step == StepClock.warmup:
            StepClock.start = now
        StepClock.end, StepClock.steps = now, state.global_step

def report(rows, batch, loss):
    timed = StepClock.steps - StepClock.warmup
    print(json.dumps({"samples_per_second": timed * batch / (StepClock.end - StepClock.start),
                      "steps": StepClock.steps, "rows": rows, "train_loss": loss,
                      "threads": torch.get_num_threads(),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

PLAIN = PRELUDE + r'''
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments
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
trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[StepClock()],
                  data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=-100))
result = trainer.train()
model.save_pretrained(out)
report(len(ds), batch, result.training_loss)
'''

OURS = PRELUDE + r'''
import contextlib, io
from pathlib import Path
from kaito.runtime.tuning import callbacks
from kaito.runtime.tuning.__main__ import main

class ClockedProgress(callbacks.ProgressBarCallback):
    """The trainer's own progress callback, also timing the steps (the trainer builds it by name)."""

    def on_step_end(self, args, state, control, **kwargs):
        StepClock.on_step_end(self, args, state, control, **kwargs)
        return super().on_step_end(args, state, control, **kwargs)

callbacks.ProgressBarCallback = ClockedProgress
model_dir, data, out, steps, batch = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
events = io.StringIO()
with contextlib.redirect_stdout(events):
    code = main(["--model", model_dir, "--data", data, "--output", out, "--max-steps", steps, "--batch-size", batch,
                 "--learning-rate", "5e-5", "--logging-steps", "10", "--set", "ModelConfig.torch_dtype=float32",
                 "--set", "TrainingArguments.save_strategy=no"])
assert code == 0, code
start = next(json.loads(line) for line in events.getvalue().splitlines() if '"start"' in line)
marker = json.loads((Path(out) / "fine_tuning_completed.txt").read_text())
report(start["rows"], int(batch), marker["train_loss"])
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


def run(script: str, args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"variant failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compute_summary(values: list[float]) -> str:
    """Median and spread (min-max, and max/min - 1 as a percentage)."""
    low, high = min(values), max(values)
    return f"median {statistics.median(values):8.2f}  range {low:.2f}-{high:.2f} (spread {100 * (high / low - 1):.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (warm-up included)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="torch threads in both variants (default: half the cores)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="first steps left out of the timing")
    opts = parser.parse_args()
    if opts.steps <= opts.warmup_steps:
        parser.error("--steps must be larger than --warmup-steps")
    threads = str(opts.threads)
    env = {**os.environ, "BENCH_THREADS": threads, "BENCH_WARMUP_STEPS": str(opts.warmup_steps),
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("DEFAULT_TARGET_MODULES", None)  # would change our LoRA targets only
    results: dict[str, list[dict]] = {"plain": [], "kaito": []}
    with tempfile.TemporaryDirectory(prefix="kaito-bench-tuning-") as tmp:
        root = Path(tmp)
        model_dir = build_model(root, opts.hidden)
        data = root / "data.jsonl"
        data.write_text("".join(json.dumps({"prompt": f"question number {i} about the lazy dog?",
                                            "completion": "the quick brown fox jumps over it " * 3}) + "\n"
                                for i in range(256)))
        for rep in range(opts.repeats):
            for name, script in (("plain", PLAIN), ("kaito", OURS)):
                out = root / f"{name}-{rep}"
                result = run(script, [str(model_dir), str(data), str(out), str(opts.steps), str(opts.batch)], env)
                if result["steps"] != opts.steps or result["threads"] != opts.threads:
                    raise SystemExit(f"{name} ran {result['steps']} steps on {result['threads']} threads, "
                                     f"not {opts.steps} on {opts.threads}")
                results[name].append(result)
                print(f"  {name:5s} run {rep + 1}: {result['samples_per_second']:8.2f} samples/s  "
                      f"peak RSS {result['peak_rss_mib']:7.1f} MiB  rows {result['rows']}  "
                      f"train loss {result['train_loss']:.4f}", flush=True)
    plain, ours = results["plain"], results["kaito"]
    if {r["rows"] for r in plain} != {r["rows"] for r in ours}:
        raise SystemExit("the variants trained on different numbers of rows")
    speed = {name: [r["samples_per_second"] for r in runs] for name, runs in results.items()}
    rss = {name: [r["peak_rss_mib"] for r in runs] for name, runs in results.items()}
    print(f"steps={opts.steps} (timed after {opts.warmup_steps}) batch={opts.batch} hidden={opts.hidden} "
          f"threads={opts.threads} repeats={opts.repeats}, interleaved")
    print(f"plain Trainer+PEFT  samples/s: {compute_summary(speed['plain'])}   "
          f"peak RSS median {statistics.median(rss['plain']):7.1f} MiB")
    print(f"kaito.runtime.tuning samples/s: {compute_summary(speed['kaito'])}   "
          f"peak RSS median {statistics.median(rss['kaito']):7.1f} MiB")
    pairs = [k / p for k, p in zip(speed["kaito"], speed["plain"], strict=True)]
    print(f"train loss: plain {statistics.median(r['train_loss'] for r in plain):.4f}  "
          f"kaito {statistics.median(r['train_loss'] for r in ours):.4f}  (same data, seed and model)")
    print(f"speed ratio  {statistics.median(speed['kaito']) / statistics.median(speed['plain']):.2f}x of medians, "
          f"per pair {', '.join(f'{r:.2f}' for r in pairs)} (median {statistics.median(pairs):.2f}x; target >= 1.0)")
    print(f"memory ratio {statistics.median(rss['kaito']) / statistics.median(rss['plain']):.2f}x (target <= 1.1)")


if __name__ == "__main__":
    main()
