"""DPO memory: LoRA with the implicit reference (the harness way) vs. an explicit reference-model copy.

Both variants train the same LoRA adapter with TRL's DPOTrainer on the same preference pairs, for the
same number of steps, from the same model. ``implicit``: no ``ref_model``; the reference log-probs
come from the same weights with the adapter switched off (what ``harness dpo`` does; when it continues
an SFT adapter, TRL keeps a frozen copy of that adapter, a few MB). ``explicit``: a second full copy
of the model is loaded as ``ref_model``. Each variant runs in its own process so peak memory is clean.
Prints peak memory (process RSS, and CUDA allocations on a GPU), the memory added by training on top
of the loaded process, mean step time (first step excluded), and the ratios implicit/explicit.

    .venv/bin/python bench/dpo_memory.py [--model builtin:smollm2-135m-instruct] [--pairs 32] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._child import emit, run_child  # noqa: E402


def demo_pairs(n: int) -> list[dict]:
    """Preference pairs from the demo handbook chats: the real answer beats another question's answer."""
    chats = [json.loads(line)["messages"] for line in (REPO / "examples/demo/sft.jsonl").read_text().splitlines()]
    rows = []
    for i in range(n):
        msgs, other = chats[i % len(chats)], chats[(i + 7) % len(chats)]
        rows.append({"prompt": [m for m in msgs if m["role"] != "assistant"][-1:],
                     "chosen": [msgs[-1]], "rejected": [other[-1]]})
    return rows


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from harness.models import load_model, load_tokenizer, resolve
    from rlhf.sft import resolve_precision

    spec = resolve(args.model)
    tokenizer = load_tokenizer(spec)
    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines()]
    cuda = torch.cuda.is_available()
    device_map = "cuda" if cuda else None
    model = load_model(spec, device_map=device_map)
    ref = load_model(spec, device_map=device_map).eval() if args.variant == "explicit" else None
    loaded_mb = _rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    precision = resolve_precision("auto")
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as out:
        cfg = DPOConfig(output_dir=out, per_device_train_batch_size=args.batch, max_steps=args.steps, learning_rate=1e-4,
                        beta=0.1, max_length=args.max_length, bf16=precision == "bf16", fp16=precision == "fp16",
                        use_cpu=not cuda, report_to=[], save_strategy="no", logging_steps=1000,
                        gradient_checkpointing=False, seed=0)
        trainer = DPOTrainer(model=model, ref_model=ref, args=cfg, processing_class=tokenizer,
                             train_dataset=Dataset.from_list(rows), callbacks=[StepTimer()],
                             peft_config=LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
        trainer.train()
    steady = times[1:] or times
    result = {"variant": args.variant, "steps": len(times), "step_seconds": sum(steady) / len(steady),
              "peak_rss_mb": _rss_mb(), "loaded_rss_mb": loaded_mb, "precision": precision}
    result["training_rss_mb"] = result["peak_rss_mb"] - loaded_mb
    if cuda:
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["device"] = torch.cuda.get_device_name()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--variant", choices=["implicit", "explicit"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.variant:  # child process
        emit(run_variant(args))
        return

    from harness.models import resolve

    resolve(args.model)  # build a built-in model once, outside the measured children
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in demo_pairs(args.pairs)))
        for variant in ("explicit", "implicit"):
            print(f"running {variant} reference ...", file=sys.stderr, flush=True)
            results.append(run_child(__file__, variant, ["--data", str(data), "--model", args.model, "--batch", str(args.batch),
                                                         "--steps", str(args.steps), "--max-length", str(args.max_length)]))
    explicit, implicit = results
    print(f"\nDPO + LoRA on {args.model}: {args.steps} steps, batch {args.batch}, {args.pairs} pairs, "
          f"precision {implicit['precision']}")
    gpu = "peak_gpu_mb" in implicit
    head = f"{'reference':<12}{'step s':>9}{'peak RSS MB':>13}{'training RSS MB':>17}" + (f"{'peak GPU MB':>13}" if gpu else "")
    print(head)
    for r in results:
        print(f"{r['variant']:<12}{r['step_seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}{r['training_rss_mb']:>17.0f}"
              + (f"{r['peak_gpu_mb']:>13.0f}" if gpu else ""))
    ratios = {"peak_rss": implicit["peak_rss_mb"] / explicit["peak_rss_mb"],
              "step_time": implicit["step_seconds"] / explicit["step_seconds"]}
    if gpu:
        ratios["peak_gpu"] = implicit["peak_gpu_mb"] / explicit["peak_gpu_mb"]
    print("ratios implicit/explicit: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios, "model": args.model,
                                         "pairs": args.pairs, "batch": args.batch, "steps": args.steps}, indent=2))


if __name__ == "__main__":
    main()
