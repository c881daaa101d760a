"""SFT throughput: plain TRL SFTTrainer defaults vs. `harness sft` defaults.

Same model, same LoRA adapter config, same batch size, and exactly one epoch over the same
mixed-length chats, so both variants train on the same real tokens (checked). Each variant runs in its own process (clean peak-memory figures). Prints
trained tokens/s (real tokens, padding excluded) for each, the ratio harness/TRL, and peak memory.

    .venv/bin/python bench/sft_throughput.py [--model builtin:smollm2-135m-instruct] [--examples 32] [--batch 8]

What differs is only what each tool does by default: TRL pads every batch to its longest example
and turns on gradient checkpointing; the harness concatenates batches without padding
(padding-free), skips checkpointing for small models, and masks loss to assistant turns.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._child import emit, run_child  # noqa: E402


def mixed_length_chats(n: int, seed: int = 0) -> list[dict]:
    """A long-tailed length mix like real SFT corpora: 60 % short demo chats, 25 % medium answers
    (2-4 handbook facts), 15 % long answers (a whole handbook chapter, up to the length limit)."""
    rng = random.Random(seed)
    chats = [json.loads(line)["messages"] for line in (REPO / "examples/demo/sft.jsonl").read_text().splitlines()]
    text = (REPO / "examples/demo/handbook.md").read_text()
    chapters = [c.strip() for c in text.split("\n## ")[1:]]
    facts = [f.strip() for c in chapters for f in c.split("\n### ")[1:]]
    rows = []
    for i in range(n):
        messages = [dict(m) for m in chats[(i * 7) % len(chats)]]
        kind = i % 20
        if kind in (1, 5, 9, 13, 17):  # medium
            messages[-1]["content"] += "\n\nRelated policies:\n" + "\n\n".join(rng.sample(facts, k=rng.randint(2, 4)))
        elif kind in (3, 11, 19):  # long
            messages[-1]["content"] += "\n\nThe full chapter:\n" + rng.choice(chapters)
        rows.append({"messages": messages})
    return rows


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_trl(args, data_dir: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from harness.models import load_model, load_tokenizer, resolve

    spec = resolve(args.model)
    model, tok = load_model(spec, dtype=torch.float32), load_tokenizer(spec)
    rows = [{"messages": json.loads(line)["messages"]} for line in (data_dir / "train.jsonl").read_text().splitlines()]
    trl_args = SFTConfig(output_dir=str(data_dir / "trl_out"), num_train_epochs=1, per_device_train_batch_size=args.batch,
                         use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no", logging_steps=1,
                         seed=42, data_seed=42, max_length=args.max_length)
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=trl_args, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=peft)
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
    tokens = max(r.get("num_tokens", 0) for r in trainer.state.log_history)
    return {"variant": "trl_defaults", "tokens": tokens, "seconds": elapsed, "tokens_per_second": tokens / elapsed,
            "peak_rss_mb": _peak_mb(), "bf16": trl_args.bf16, "gradient_checkpointing": trl_args.gradient_checkpointing}


def run_harness(args, data_dir: Path) -> dict:
    from harness.config import load_config
    from rlhf import sft

    cfg = load_config(None, [f"model.base={args.model}", f"run.root={data_dir / 'runs'}", "run.id=bench",
                             f"sft.data_dir={data_dir}", "sft.epochs=1", f"sft.batch_size={args.batch}",
                             f"sft.max_length={args.max_length}", "sft.eval_every=100000", "sft.save_total_limit=1"])
    m = sft.run(cfg).metrics
    return {"variant": "harness_defaults", "tokens": m["tokens_seen"], "seconds": m["train_seconds"],
            "tokens_per_second": m["tokens_seen"] / m["train_seconds"], "peak_rss_mb": _peak_mb(),
            "packing": cfg.sft.packing, "gradient_checkpointing": cfg.sft.gradient_checkpointing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--examples", type=int, default=32, help="training examples (one epoch)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--variant", choices=["trl", "harness"], help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.variant:  # child process
        emit((run_trl if args.variant == "trl" else run_harness)(args, args.data_dir))
        return

    from harness import data
    from harness.config import load_config
    from harness.models import resolve

    resolve(args.model)  # build a built-in model once, outside the timed children
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "chats.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in mixed_length_chats(args.examples + 4)))
        cfg = load_config(None, [f"data.sources=[{{path: {src}, domain: bench}}]", f"data.output_dir={tmp / 'data'}",
                                 "data.dedupe.exact=false", "data.dedupe.near=false", "data.min_validation=4",
                                 "data.validation_fraction=0.01"])
        data.run(cfg)
        results = []
        for variant in ("trl", "harness"):
            print(f"running {variant} ...", file=sys.stderr, flush=True)
            results.append(run_child(__file__, variant, ["--data-dir", str(tmp / "data"), "--model", args.model,
                                                         "--examples", str(args.examples), "--batch", str(args.batch),
                                                         "--max-length", str(args.max_length)]))
    a, b = results
    if abs(a["tokens"] - b["tokens"]) > 0.01 * a["tokens"]:
        print(f"warning: the variants trained on different token counts ({a['tokens']} vs {b['tokens']})")
    ratio = b["tokens_per_second"] / a["tokens_per_second"]
    print(f"\nmodel {args.model}, one epoch of {args.examples} mixed-length chats, batch {args.batch}")
    print(f"{'variant':<20}{'tokens':>10}{'seconds':>10}{'tokens/s':>11}{'peak RSS MB':>14}")
    for r in results:
        print(f"{r['variant']:<20}{r['tokens']:>10.0f}{r['seconds']:>10.1f}{r['tokens_per_second']:>11.1f}{r['peak_rss_mb']:>14.0f}")
    print(f"throughput ratio harness/TRL: {ratio:.2f}  (goal >= 1.5)")
    print(f"peak memory ratio harness/TRL: {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratio": ratio, "model": args.model,
                                         "examples": args.examples, "batch": args.batch}, indent=2))


if __name__ == "__main__":
    main()
