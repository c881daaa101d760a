"""Evaluation overhead: the `lm_eval` CLI vs `harness eval`, and a cached re-evaluation.

Same model (SmolLM2-135M-Instruct, fp32, CPU), the same task with the same prompts and data (the
220-question general-knowledge suite, written out as a plain lm-eval task YAML for the CLI), same
--limit and batch size. Each run is a fresh process, timed from start to exit.

    .venv/bin/python bench/eval_overhead.py [--limit 220] [--batch 16] [--rounds 4]

Two scenarios: (1) one model; (2) two models, the base and a base + LoRA candidate (the harness's
everyday comparison: one `harness eval` call, two `lm_eval` calls). After one untimed warm-up run of
each, each round times both, the CLI first in odd rounds and the harness first in even ones. Prints the wall times per round,
harness/lm_eval per round and its median (goals <= 0.5 and <= 0.35), and cached-harness/first-harness
(goal <= 0.05); then compares every document of every round with the CLI's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SUITES = {"general_knowledge": "retention/general_knowledge"}


def lm_eval_yaml(suite_dir: Path, name: str) -> str:
    """The same task as our suite, as a plain lm-eval YAML (absolute data path)."""
    import yaml

    spec = yaml.safe_load((suite_dir / "suite.yaml").read_text())
    task = {"task": f"bench_{name}", "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(suite_dir / spec["data"])}}, "test_split": "test",
            **spec["task"], "metric_list": [{"metric": m["name"], "aggregation": "mean", "higher_is_better": True}
                                            for m in spec["metrics"]], "metadata": {"version": 1}}
    return yaml.safe_dump(task, sort_keys=False)


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return elapsed


def make_adapter(model_dir: Path, out: Path, *, r: int = 8, alpha: int = 8, b_scale: float = 1.0) -> Path:
    """A LoRA adapter with non-zero random weights (a stand-in candidate that really differs from the base);
    ``b_scale`` < 1 shrinks its effect, like a short fine-tune's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules="all-linear",
                                            init_lora_weights=False, task_type="CAUSAL_LM"))
    if b_scale != 1.0:
        with torch.no_grad():
            for name, p in peft.named_parameters():
                if "lora_B" in name:
                    p.mul_(b_scale)
    peft.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    (out / "harness_adapter.json").write_text(json.dumps({"base": "builtin:smollm2-135m-instruct"}))
    return out


def parity(lm_eval_dir: Path, harness_dir: Path, suite: str, name: str) -> dict:
    """Per-document comparison of the CLI's logged samples with the harness's: the same choice scores (within
    1e-4 in float32) and the same per-sample metrics."""
    [cli_file] = lm_eval_dir.rglob(f"samples_bench_{name}_*.jsonl")
    cli = {row["doc_id"]: row for row in map(json.loads, cli_file.read_text().splitlines())}
    ours = {row["doc_id"]: row for row in map(json.loads, (harness_dir / suite / "samples.jsonl").read_text().splitlines())}
    assert cli.keys() == ours.keys(), "the CLI and the harness scored different documents"
    worst, same_metrics, same_choice = 0.0, 0, 0
    for doc_id, row in cli.items():
        theirs = [float(r[0]) for r in row["filtered_resps"]]
        mine = [float(r[0]) for r in ours[doc_id]["outputs"]]
        worst = max(worst, max(abs(a - b) for a, b in zip(theirs, mine, strict=True)))
        same_choice += max(range(len(mine)), key=mine.__getitem__) == max(range(len(theirs)), key=theirs.__getitem__)
        same_metrics += all(ours[doc_id]["metrics"][m] == row[m] for m in ours[doc_id]["metrics"])
    return {"documents": len(cli), "same_top_choice": same_choice, "same_metrics": same_metrics, "max_abs_loglik_diff": worst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=220)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4,
                    help="each round times both scenarios; the order alternates (an even number balances it)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    from harness.models import fingerprint, harness_home, prepare_builtin, resolve

    model_dir = prepare_builtin("smollm2-135m-instruct")
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tasks = tmp / "tasks"
        tasks.mkdir()
        for name, sid in SUITES.items():
            (tasks / f"{name}.yaml").write_text(lm_eval_yaml(REPO / "suites" / sid, name))
        # A private harness home (models linked, empty result cache), so the first harness run scores for real.
        home = tmp / "home"
        (home / "models").mkdir(parents=True)
        for p in (harness_home() / "models").iterdir():
            if p.is_dir():
                os.symlink(p, home / "models" / p.name)
        env = {**os.environ, "HARNESS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        # Untimed warm-up, one run of each: the first run of either side builds the dataset's Arrow cache and
        # fills the OS page cache, which would favour whichever side runs second in the first round.
        print("warm-up (untimed): lm_eval CLI and harness eval ...", file=sys.stderr, flush=True)
        timed([str(bin_dir / "lm_eval"), "run", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
               "--tasks", ",".join(f"bench_{n}" for n in SUITES), "--include_path", str(tasks), "--batch_size",
               str(args.batch), "--device", "cpu", "--limit", str(args.limit), "--output_path", str(tmp / "warm_lm")], env)
        timed([str(bin_dir / "harness"), "eval", "-m", "builtin:smollm2-135m-instruct",
               *sum((["-s", n] for n in SUITES), []), "--limit", str(args.limit), "--output", str(tmp / "warm_h"),
               f"eval.batch_size={args.batch}", "eval.bootstrap_resamples=1000", "eval.dtype=float32"], env)
        adapter = make_adapter(model_dir, tmp / "adapter")
        scenarios = (("1 model", [None]), ("2 models (base + LoRA candidate)", [None, adapter]))
        rows, checks = [], []
        for rnd in range(args.rounds):
            for k, (label, models) in enumerate(scenarios):
                harness_cmd = [str(bin_dir / "harness"), "eval", "-m", "builtin:smollm2-135m-instruct",
                               *(["-m", str(adapter)] if len(models) == 2 else []),
                               *sum((["-s", n] for n in SUITES), []), "--limit", str(args.limit),
                               f"eval.batch_size={args.batch}", "eval.bootstrap_resamples=1000", "eval.dtype=float32"]
                out_lm = [tmp / f"lm_eval_out{rnd}_{k}_{i}" for i in range(len(models))]
                out_h = tmp / f"h_out{rnd}_{k}"

                def run_cli(models=models, out_lm=out_lm, label=label) -> float:
                    total = 0.0
                    for i, peft in enumerate(models):
                        margs = f"pretrained={model_dir},dtype=float32" + (f",peft={peft}" if peft else "")
                        cmd = [str(bin_dir / "lm_eval"), "run", "--model", "hf", "--model_args", margs,
                               "--tasks", ",".join(f"bench_{n}" for n in SUITES), "--include_path", str(tasks),
                               "--batch_size", str(args.batch), "--device", "cpu", "--limit", str(args.limit),
                               "--output_path", str(out_lm[i]), "--log_samples"]
                        print(f"round {rnd + 1}, {label}: lm_eval CLI ...", file=sys.stderr, flush=True)
                        total += timed(cmd, env)
                    return total

                def run_harness(harness_cmd=harness_cmd, out_h=out_h, label=label) -> float:
                    shutil.rmtree(home / "eval-cache", ignore_errors=True)  # the first harness run scores for real
                    print(f"round {rnd + 1}, {label}: harness eval ...", file=sys.stderr, flush=True)
                    return timed(harness_cmd + ["--output", str(out_h)], env)

                # the order alternates between rounds: a machine that speeds up or slows down during a round
                # favours each side once
                if rnd % 2 == 0:
                    t_lm, t_h = run_cli(), run_harness()
                else:
                    t_h, t_lm = run_harness(), run_cli()
                print(f"round {rnd + 1}, {label}: harness eval again (cached) ...", file=sys.stderr, flush=True)
                t_c = timed(harness_cmd + ["--output", str(tmp / f"h_out2_{rnd}_{k}")], env)
                rows.append({"round": rnd + 1, "scenario": label, "lm_eval_s": t_lm, "harness_s": t_h, "cached_s": t_c,
                             "ratio": t_h / t_lm, "cached_ratio": t_c / t_h})
                for i, peft in enumerate(models):
                    fp = fingerprint(resolve(str(peft) if peft else "builtin:smollm2-135m-instruct"))
                    for name, sid in SUITES.items():
                        checks.append({"round": rnd + 1, "scenario": label, "model": "candidate" if peft else "base",
                                       "suite": sid, **parity(out_lm[i], out_h / fp, sid, name)})
    print(f"\nmodel SmolLM2-135M-Instruct (CPU fp32), task {', '.join(SUITES)}, limit {args.limit}, batch {args.batch}, "
          f"{args.rounds} round(s), order alternated")
    print(f"{'round':<7}{'scenario':<36}{'lm_eval s':>10}{'harness s':>10}{'cached s':>10}{'ratio':>8}{'cached':>8}")
    for r in rows:
        print(f"{r['round']:<7}{r['scenario']:<36}{r['lm_eval_s']:>10.1f}{r['harness_s']:>10.1f}{r['cached_s']:>10.1f}"
              f"{r['ratio']:>8.2f}{r['cached_ratio']:>8.3f}")
    summary = []
    for label, _ in scenarios:
        ratios = [r["ratio"] for r in rows if r["scenario"] == label]
        summary.append({"scenario": label, "median_ratio": statistics.median(ratios), "min": min(ratios), "max": max(ratios)})
        print(f"{'median':<7}{label:<36}{'':>30}{summary[-1]['median_ratio']:>8.2f}   (rounds: {min(ratios):.2f}-{max(ratios):.2f})")
    print("goals: ratio harness/lm_eval <= 0.5 (1 model), <= 0.35 (2 models); cached/first harness <= 0.05")
    print("\nper-sample parity, harness vs lm_eval CLI (float32), every round:")
    print(f"{'round':<7}{'scenario':<36}{'model':<11}{'documents':>10}{'same choice':>13}{'same metrics':>14}{'max |d loglik|':>16}")
    for c in checks:
        print(f"{c['round']:<7}{c['scenario']:<36}{c['model']:<11}{c['documents']:>10}{c['same_top_choice']:>13}"
              f"{c['same_metrics']:>14}{c['max_abs_loglik_diff']:>16.2e}")
    if args.json:
        args.json.write_text(json.dumps({"timings": rows, "summary": summary, "parity": checks}, indent=2))
    if any(c["same_metrics"] != c["documents"] or c["max_abs_loglik_diff"] > 1e-4 for c in checks):
        sys.exit("the harness's per-sample results differ from lm_eval's beyond the 1e-4 tolerance")


if __name__ == "__main__":
    main()
