"""Inference precision: what ``eval.dtype`` / ``feedback.dtype: auto`` buys, and what it changes.

On SmolLM2-135M-Instruct with a LoRA adapter (r 16 on every linear layer, random non-zero weights: a
stand-in candidate), in one process:

* **scoring**: forward passes over a batch as lm-eval's log-likelihood scoring does (16 sequences of
  160 tokens): float32 + adapter unmerged (the harness before), float32 merged, bfloat16 merged.
* **generation**: greedy answers to the first ``--prompts`` demo review prompts, ``--tokens`` new tokens,
  one batch: the same three variants.
* **agreement**: how many greedy answers are word-for-word the same in bfloat16 as in float32, and how
  often the two pick the same answer of a 4-way multiple choice by summed log-likelihood (the handbook
  MCQ suite's first ``--mcq`` questions).

Prints seconds and ratios against float32 unmerged. bfloat16 is only fast where the hardware computes
it (a GPU, or a CPU with AMX / AVX-512 BF16, which ``auto`` checks); elsewhere ``auto`` stays float32.

    .venv/bin/python bench/inference_dtype.py [--prompts 48] [--tokens 48] [--mcq 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--mcq", type=int, default=60)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    from bench.eval_overhead import make_adapter
    from harness.models import load_model, load_tokenizer, native_bf16, resolve

    prompts = [json.loads(line)["prompt"] for line in (REPO / "examples/demo/review_prompts.jsonl").open()][:args.prompts]
    mcq = [json.loads(line) for line in (REPO / "suites/domain/handbook_mcq/data.jsonl").open()][:args.mcq]
    with tempfile.TemporaryDirectory() as tmp:
        base = resolve("builtin:smollm2-135m-instruct")
        spec = resolve(str(make_adapter(Path(base.location), Path(tmp) / "adapter", r=16, alpha=32, b_scale=0.05)))
        tok = load_tokenizer(spec)
        tok.padding_side = "left"
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                 for p in prompts]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        x = torch.randint(0, tok.vocab_size, (16, 160), generator=torch.Generator().manual_seed(0))
        variants = {"float32 unmerged": ("float32", False), "float32 merged": ("float32", True),
                    "bfloat16 merged": ("bfloat16", True)}
        rows, answers, choices = {}, {}, {}
        for name, (dtype, merge) in variants.items():
            model = load_model(spec, dtype=dtype, merge_adapter=merge).eval()
            with torch.no_grad():
                model(x[:2])  # warm-up
                start = time.perf_counter()
                for _ in range(3):
                    model(x).logits.float().log_softmax(-1)
                score_s = (time.perf_counter() - start) / 3
                start = time.perf_counter()
                out = model.generate(**batch, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tok.pad_token_id)
                gen_s = time.perf_counter() - start
                answers[name] = [tok.decode(r, skip_special_tokens=True).strip() for r in out[:, batch["input_ids"].shape[1]:]]
                picks = []
                for q in mcq:
                    ctx = tok(q["question"] + "\nAnswer:", add_special_tokens=False)["input_ids"]
                    lls = []
                    for c in q["choices"]:
                        ids = torch.tensor([ctx + tok(" " + c, add_special_tokens=False)["input_ids"]])
                        logp = model(ids).logits.float().log_softmax(-1)[0, len(ctx) - 1:-1]
                        lls.append(float(logp.gather(-1, ids[0, len(ctx):, None]).sum()))
                    picks.append(max(range(len(lls)), key=lls.__getitem__))
                choices[name] = picks
            rows[name] = {"score_s": score_s, "generate_s": gen_s}
            print(f"{name:>17}: scoring batch {score_s:.2f} s, generating {len(prompts)} answers {gen_s:.1f} s",
                  file=sys.stderr, flush=True)
    base = rows["float32 unmerged"]
    same_answers = sum(a == b for a, b in zip(answers["float32 unmerged"], answers["bfloat16 merged"]))
    same_merged = sum(a == b for a, b in zip(answers["float32 unmerged"], answers["float32 merged"]))
    same_picks = sum(a == b for a, b in zip(choices["float32 unmerged"], choices["bfloat16 merged"]))
    print(f"\ninference precision on {os.cpu_count()} CPU cores (native bfloat16: {native_bf16()}); "
          f"ratios against float32 with the adapter unmerged")
    print(f"{'variant':>17}  {'scoring s':>9}  {'ratio':>6}  {'generation s':>12}  {'ratio':>6}")
    for name, r in rows.items():
        print(f"{name:>17}  {r['score_s']:>9.2f}  {r['score_s'] / base['score_s']:>6.2f}  "
              f"{r['generate_s']:>12.1f}  {r['generate_s'] / base['generate_s']:>6.2f}")
    print(f"greedy answers word-for-word the same: float32 merged {same_merged}/{len(prompts)}, "
          f"bfloat16 merged {same_answers}/{len(prompts)}; multiple-choice picks the same in bfloat16: "
          f"{same_picks}/{len(mcq)}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "same_answers_bf16": same_answers, "same_answers_merged": same_merged,
                                         "same_mcq_picks_bf16": same_picks, "prompts": len(prompts), "mcq": len(mcq),
                                         "native_bf16": native_bf16(), "cpu_count": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
