"""Evaluation overhead: the `lm_eval` CLI vs `harness eval`, and a cached re-evaluation.

Same model (SmolLM2-135M-Instruct, fp32, CPU), the same task with the same prompts and data (the
220-question general-knowledge suite, written out as a plain lm-eval task YAML for the CLI), same
--limit and batch size. Each run is a fresh process, timed from start to exit.

    .venv/bin/python bench/eval_overhead.py [--limit 220] [--batch 16]

Two scenarios: (1) one model; (2) two models, the base and a base + LoRA candidate (the harness's
everyday comparison: one `harness eval` call, two `lm_eval` calls). Prints the wall times,
harness/lm_eval (goal <= 0.7) and cached-harness/first-harness (goal <= 0.05).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=220)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from harness.models import harness_home, prepare_builtin

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
        harness_cmd = [str(bin_dir / "harness"), "eval", "-m", "builtin:smollm2-135m-instruct",
                       *sum((["-s", n] for n in SUITES), []), "--limit", str(args.limit), "--output", str(tmp / "h_out"),
                       f"eval.batch_size={args.batch}", "eval.bootstrap_resamples=1000"]
        adapter = make_adapter(model_dir, tmp / "adapter")
        rows = []
        for label, models in (("1 model", [None]), ("2 models (base + LoRA candidate)", [None, adapter])):
            t_lm = 0.0
            for i, peft in enumerate(models):
                margs = f"pretrained={model_dir},dtype=float32" + (f",peft={peft}" if peft else "")
                cmd = [str(bin_dir / "lm_eval"), "run", "--model", "hf", "--model_args", margs,
                       "--tasks", ",".join(f"bench_{n}" for n in SUITES), "--include_path", str(tasks),
                       "--batch_size", str(args.batch), "--device", "cpu", "--limit", str(args.limit),
                       "--output_path", str(tmp / f"lm_eval_out{i}")]
                print(f"{label}: lm_eval CLI ...", file=sys.stderr, flush=True)
                t_lm += timed(cmd, env)
            harness_cmd = [str(bin_dir / "harness"), "eval", "-m", "builtin:smollm2-135m-instruct",
                           *(["-m", str(adapter)] if len(models) == 2 else []),
                           *sum((["-s", n] for n in SUITES), []), "--limit", str(args.limit),
                           f"eval.batch_size={args.batch}", "eval.bootstrap_resamples=1000"]
            shutil.rmtree(home / "eval-cache", ignore_errors=True)  # the first harness run scores for real
            print(f"{label}: harness eval ...", file=sys.stderr, flush=True)
            t_h = timed(harness_cmd + ["--output", str(tmp / "h_out")], env)
            print(f"{label}: harness eval again (cached) ...", file=sys.stderr, flush=True)
            t_c = timed(harness_cmd + ["--output", str(tmp / "h_out2")], env)
            rows.append({"scenario": label, "lm_eval_s": t_lm, "harness_s": t_h, "cached_s": t_c,
                         "ratio": t_h / t_lm, "cached_ratio": t_c / t_h})
    print(f"\nmodel SmolLM2-135M-Instruct (CPU fp32), task {', '.join(SUITES)}, limit {args.limit}, batch {args.batch}")
    print(f"{'scenario':<36}{'lm_eval s':>10}{'harness s':>10}{'cached s':>10}{'ratio':>8}{'cached':>8}")
    for r in rows:
        print(f"{r['scenario']:<36}{r['lm_eval_s']:>10.1f}{r['harness_s']:>10.1f}{r['cached_s']:>10.1f}"
              f"{r['ratio']:>8.2f}{r['cached_ratio']:>8.3f}")
    print("goals: ratio harness/lm_eval <= 0.7; cached/first harness <= 0.05")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
