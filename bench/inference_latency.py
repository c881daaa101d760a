"""Inference cost of each tuning method: time to first token and tokens/s, unmerged vs merged, against the base.

For each method (lora, dora, ia3, prefix; reft too where ``harness.reft`` exists) an adapter on
``--model`` is timed as base + adapter ("unmerged") and, where PEFT can merge it, folded into the base
weights ("merged"), with :func:`harness.latency.measure_generation`: batched greedy generation of the
same demo review prompts, exactly ``--tokens`` new tokens each, KV cache on, float32, all models in
this one process. The measurements are interleaved (every round times every variant once, in a rotated
order) so machine noise hits all alike; the table shows medians over the rounds and ratios to the base.

By default the adapters are built untrained with PEFT from the harness's own method settings
(``rlhf.methods.plan``): latency does not depend on training, but LoRA/DoRA's B and IA3's vectors are
initialized non-identity (``init_lora_weights=False``) so a merge really changes the weights.
``--adapter NAME=DIR`` times trained adapters instead. Expected: merged LoRA within 5 % of the base.

    .venv/bin/python bench/inference_latency.py [--model REF] [--adapter lora=runs/x/sft/adapter ...]
        [--prompts 16] [--tokens 32] [--batch 8] [--rounds 5] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

METHODS = ("lora", "dora", "ia3", "prefix")
UNTRAINED_NOTE = ("adapters built untrained with PEFT (LoRA/DoRA B and IA3 vectors initialized non-identity, so "
                  "merging changes the weights): latency does not depend on training")


def _build_adapter(model_ref: str, method: str, out: Path) -> Path:
    """An untrained adapter of ``method`` on ``model_ref`` with the harness's default method settings."""
    import torch
    from peft import get_peft_model

    from harness.models import load_model, load_tokenizer, resolve
    from rlhf.config import SFTConfig
    from rlhf.methods import plan

    peft_config = plan(method, SFTConfig(method=method)).peft_config
    if method in ("lora", "dora"):
        peft_config.init_lora_weights = False  # B random, not zero: the merge changes the weights
    elif method == "ia3":
        peft_config.init_ia3_weights = False
    torch.manual_seed(0)
    spec = resolve(model_ref)
    model = get_peft_model(load_model(spec), peft_config)
    model.save_pretrained(out)
    load_tokenizer(spec).save_pretrained(out)
    (out / "harness_adapter.json").write_text(json.dumps({"base": model_ref, "method": method}))
    return out


def _variants(model_ref: str, adapters: dict[str, Path], notes: list[str]) -> dict[str, tuple[Any, Any]]:
    """name -> (model, tokenizer): the base, then each adapter unmerged and (where it can be) merged."""
    import torch

    from harness.errors import HarnessError
    from harness.latency import load_ref

    loaded: dict[str, tuple[Any, Any]] = {}
    model, tok, _ = load_ref(model_ref, merge=False)
    loaded["base"] = (model, tok)
    base_weights = model.state_dict()
    for name, folder in adapters.items():
        model, tok, _ = load_ref(str(folder), merge=False)
        loaded[f"{name} unmerged"] = (model, tok)
        try:
            model, tok, merged = load_ref(str(folder), merge=True)
        except HarnessError as exc:
            notes.append(f"{name}: timed unmerged only, PEFT cannot merge it ({exc.message.split(': ', 1)[-1]})")
            continue
        if merged:
            loaded[f"{name} merged"] = (model, tok)
            if all(torch.equal(w, base_weights[k]) for k, w in model.state_dict().items() if k in base_weights):
                notes.append(f"{name}: merging left every base weight as it was (an identity adapter)")
    return loaded


def _reft_variants(model_ref: str, tmp: Path, notes: list[str]) -> dict[str, tuple[Any, Any]]:
    """ReFT (``harness.reft``): a fresh LoReFT intervention saved and loaded back frozen (as a trained one is
    served), timed unmerged."""
    from harness import reft
    from harness.models import load_model, load_tokenizer, resolve

    spec = resolve(model_ref)
    fresh = load_model(spec)
    reft.attach(fresh)
    folder = reft.save(fresh, tmp / "reft")
    model = load_model(spec).eval()
    reft.load(model, folder)
    notes.append("reft: unmerged only (an edit of hidden states at run time has no weights to merge into)")
    return {"reft unmerged": (model, load_tokenizer(spec))}


def _measure(loaded: dict[str, tuple[Any, Any]], prompts: list[str], args: argparse.Namespace) -> dict[str, dict]:
    from harness.latency import measure_generation

    kw = {"max_new_tokens": args.tokens, "batch_size": args.batch, "repeats": 1}
    names = list(loaded)
    for name in names:  # untimed warm-up of every variant first
        model, tok = loaded[name]
        measure_generation(model, tok, prompts[:args.batch], warmup=1, **{**kw, "max_new_tokens": 2})
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:  # rotated: no variant always runs first or last
            model, tok = loaded[name]
            runs[name].append(measure_generation(model, tok, prompts, warmup=0, **kw))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    rows = {}
    for name, results in runs.items():
        seconds = statistics.median(x["seconds"] for x in results)
        rows[name] = {"ttft_s": statistics.median(t for x in results for t in x["ttft_runs_s"]),
                      "tokens_per_s": results[0]["new_tokens"] / seconds, "seconds": seconds,
                      "new_tokens": results[0]["new_tokens"], "seconds_runs": [x["seconds"] for x in results]}
    base = rows["base"]
    for row in rows.values():
        row["ttft_ratio"] = row["ttft_s"] / base["ttft_s"]
        row["tokens_per_s_ratio"] = row["tokens_per_s"] / base["tokens_per_s"]
    return rows


def _parse_adapters(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not Path(folder).is_dir():
            sys.exit(f"--adapter {item!r}: expected NAME=DIR with an existing adapter folder")
        out[name] = Path(folder)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct", help="base model reference")
    ap.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                    help="time this trained adapter (repeatable) instead of untrained ones of every method")
    ap.add_argument("--prompts", type=int, default=16, help="demo review prompts to generate for")
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per prompt")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (medians over them)")
    ap.add_argument("--quick", action="store_true", help="builtin:tiny-random, 4 prompts, 4 tokens, 2 rounds (tests)")
    ap.add_argument("--json", type=Path, default=REPO / "runs" / "bench" / "inference_latency.json",
                    help="where the result JSON goes")
    args = ap.parse_args()
    if args.quick:
        args.model, args.prompts, args.tokens, args.batch, args.rounds = "builtin:tiny-random", 4, 4, 2, 2
    import torch

    from harness.artifacts import atomic_write_json, environment_info

    prompts = [json.loads(line)["prompt"] for line in (REPO / "examples/demo/review_prompts.jsonl").open()][:args.prompts]
    notes: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        if args.adapter:
            adapters = _parse_adapters(args.adapter)
            notes.append("trained adapters: " + ", ".join(f"{k}={v}" for k, v in adapters.items()))
        else:
            adapters = {m: _build_adapter(args.model, m, Path(tmp) / m) for m in METHODS}
            notes.append(UNTRAINED_NOTE)
        loaded = _variants(args.model, adapters, notes)
        if not args.adapter:
            loaded.update(_reft_variants(args.model, Path(tmp), notes))
        rows = _measure(loaded, prompts, args)
    env = environment_info()
    hw = env["hardware"]
    print(f"\ninference cost on {args.model}: {len(prompts)} prompts, {args.tokens} new tokens each, batches of "
          f"{args.batch}, float32, {torch.get_num_threads()} threads on {hw.get('cpu')} ({os.cpu_count()} cores); "
          f"medians of {args.rounds} interleaved rounds; ratios to the base")
    print(f"{'variant':<16}{'TTFT ms':>9}{'ratio':>7}{'tokens/s':>10}{'ratio':>7}")
    for name, r in rows.items():
        print(f"{name:<16}{r['ttft_s'] * 1000:>9.1f}{r['ttft_ratio']:>7.2f}{r['tokens_per_s']:>10.1f}"
              f"{r['tokens_per_s_ratio']:>7.2f}")
    for note in notes:
        print(f"note: {note}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.json, {
        "model": args.model, "prompts": len(prompts), "max_new_tokens": args.tokens, "batch_size": args.batch,
        "rounds": args.rounds, "dtype": "float32", "threads": torch.get_num_threads(), "rows": rows, "notes": notes,
        "machine": hw, "git_sha": env.get("git_sha"), "seconds": round(time.perf_counter() - started, 1),
    })
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
