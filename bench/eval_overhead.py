"""Evaluation overhead: the `lm_eval` CLI vs `harness eval`, and a cached re-evaluation.

Same model (SmolLM2-135M-Instruct, fp32, CPU), same two tasks with the same prompts and data (the
general-knowledge and handbook multiple-choice suites, written out as plain lm-eval task YAML for
the CLI), same --limit and batch size. Each run is a fresh process, timed from start to exit.

    .venv/bin/python bench/eval_overhead.py [--limit 100] [--batch 16]

Prints the wall times, harness/lm_eval (goal <= 0.7) and cached-harness/first-harness (goal <= 0.05).
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

SUITES = {"general_knowledge": "retention/general_knowledge", "handbook_mcq": "domain/handbook_mcq"}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100)
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
        chat = ["--apply_chat_template"]  # handbook_mcq is a chat suite; the CLI applies it to both tasks
        lm_eval_cmd = [str(bin_dir / "lm_eval"), "run", "--model", "hf", "--model_args",
                       f"pretrained={model_dir},dtype=float32", "--tasks", ",".join(f"bench_{n}" for n in SUITES),
                       "--include_path", str(tasks), "--batch_size", str(args.batch), "--device", "cpu",
                       "--limit", str(args.limit), *chat, "--output_path", str(tmp / "lm_eval_out")]
        harness_cmd = [str(bin_dir / "harness"), "eval", "-m", "builtin:smollm2-135m-instruct",
                       *sum((["-s", n] for n in SUITES), []), "--limit", str(args.limit), "--output", str(tmp / "h_out"),
                       f"eval.batch_size={args.batch}", "eval.bootstrap_resamples=1000"]
        print("running lm_eval CLI ...", file=sys.stderr, flush=True)
        t_lm = timed(lm_eval_cmd, env)
        print("running harness eval ...", file=sys.stderr, flush=True)
        t_h = timed(harness_cmd, env)
        print("running harness eval again (cached) ...", file=sys.stderr, flush=True)
        t_c = timed(harness_cmd[:-2] + ["--output", str(tmp / "h_out2")] + harness_cmd[-2:], env)
        shutil.rmtree(tmp / "lm_eval_out", ignore_errors=True)
    print(f"\nmodel SmolLM2-135M-Instruct (CPU fp32), tasks {', '.join(SUITES)}, limit {args.limit}, batch {args.batch}")
    print(f"{'run':<28}{'wall s':>10}")
    for label, t in (("lm_eval CLI", t_lm), ("harness eval", t_h), ("harness eval (cached)", t_c)):
        print(f"{label:<28}{t:>10.1f}")
    print(f"ratio harness/lm_eval: {t_h / t_lm:.2f}  (goal <= 0.7)")
    print(f"ratio cached/first harness: {t_c / t_h:.3f}  (goal <= 0.05)")
    if args.json:
        args.json.write_text(json.dumps({"lm_eval_s": t_lm, "harness_s": t_h, "cached_s": t_c,
                                         "ratio": t_h / t_lm, "cached_ratio": t_c / t_h}, indent=2))


if __name__ == "__main__":
    main()
