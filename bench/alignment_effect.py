"""Did the preference stages help? The alignment win rate over several training seeds, per seed and pooled.

Starts from a finished cycle run (``--run runs/demo``: its SFT adapter, its first review's preference
pairs and its prompt split). For each seed the run is copied to ``<run>-seed<N>`` and the cycle is
run again with ``reward.seed``, ``dpo.seed`` and ``online.seed`` set to N, up to the final review:
only the preference stages, the final evaluation and the final review run again (data, SFT, the first
review and the held-out prompts stay the same, so the seeds differ only in preference training).
The figure is the final candidate's win rate against the SFT-only candidate on the held-out prompts
(ties count half), as the scripted reviewers judge it: per seed with its bootstrap CI, and pooled over
seeds with a CI from a bootstrap over prompts (each prompt carries its judgements from every seed,
so the CI accounts for the same prompts being judged once per seed). Also per seed: the reward
model's held-out accuracy against its baselines, and the per-aspect breakdown of the alignment review.

    .venv/bin/python bench/alignment_effect.py --run runs/demo [--seeds 1 2 3] [--json out.json] [overrides...]

Run it where the base run was made (same working folder and ``HARNESS_HOME``), with the same version
of the harness (a newer one may hash a stage's settings differently, and the script stops when a stage
before the preference stages would run again): the copies reuse its Label Studio and cached answers.
Labels are resolved by majority, the demo's ``feedback.resolution``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RERUN = ("reward", "dpo", "online", "final_eval", "review", "gate", "promote", "report")


def _copy_run(base: Path, seed: int) -> Path:
    dest = base.parent / f"{base.name}-seed{seed}"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest, ignore=shutil.ignore_patterns(*RERUN))
    state_path = dest / "cycle.json"
    state = json.loads(state_path.read_text())
    state["run_id"] = dest.name
    for name in RERUN:
        state["stages"].pop(name, None)
    state_path.write_text(json.dumps(state, indent=2))
    return dest


def _scores(review_dir: Path) -> dict[str, float]:
    """Per held-out prompt: the final candidate's resolved score against the SFT-only one (1, 0.5, 0)."""
    from feedback.agreement import LABEL_SCORE, resolve_labels

    tasks = {t["task_key"]: t for t in map(json.loads, (review_dir / "tasks.jsonl").read_text().splitlines())}
    rows = [r for r in map(json.loads, (review_dir / "annotations.jsonl").read_text().splitlines())
            if r["task_key"] in tasks]
    out = {}
    for key, entry in resolve_labels(rows).items():
        if not entry.get("dropped") and entry["label"] in LABEL_SCORE:
            out[tasks[key]["prompt_id"]] = LABEL_SCORE[entry["label"]]
    return out


def _pooled(per_seed: list[dict[str, float]], seed: int = 0, resamples: int = 2000) -> dict:
    prompts = sorted({p for s in per_seed for p in s})
    table = [[s[p] for s in per_seed if p in s] for p in prompts]
    flat = [x for row in table for x in row]
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(resamples):
        pick = rng.integers(0, len(table), len(table))
        values = [x for i in pick for x in table[i]]
        stats.append(sum(values) / len(values))
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return {"estimate": sum(flat) / len(flat), "ci_low": float(lo), "ci_high": float(hi),
            "judgements": len(flat), "prompts": len(prompts),
            "ties": sum(1 for x in flat if x == 0.5)}


def _one_seed(base: Path, seed: int, config_file: str, overrides: list[str]) -> dict:
    dest = _copy_run(base, seed)
    cmd = [sys.executable, "-m", "harness.cli", "cycle", "--config", config_file, *overrides,
           f"run.id={dest.name}", f"run.root={dest.parent}", f"reward.seed={seed}", f"dpo.seed={seed}",
           f"online.seed={seed}", "--until", "review"]
    started = time.perf_counter()
    log = dest.parent / f"{dest.name}.log"
    with open(log, "w") as fh:
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})
    seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"seed {seed}: the cycle failed (exit code {code}); see {log}")
    state = json.loads((dest / "cycle.json").read_text())
    again = sorted(k for k, v in state["stages"].items() if v.get("this_run") not in (None, "skipped"))
    if {"data", "sft", "eval", "feedback"} & set(again):
        sys.exit(f"seed {seed}: stages before the preference stages ran again ({again}); the seeds would differ in more "
                 "than preference training")
    summary = json.loads((dest / "review" / "alignment" / "summary.json").read_text())
    reward = json.loads((dest / "reward" / "result.json").read_text()) if (dest / "reward" / "result.json").is_file() else {}
    quality = (reward.get("metrics") or {}).get("quality") or {}
    return {"seed": seed, "run": str(dest), "seconds": seconds, "stages_run": again,
            "alignment": summary["win_rate"], "length_controlled": summary.get("length_controlled_win_rate"),
            "aspects": summary.get("aspects", {}), "resolved": summary["resolved"],
            "reward_model": {k: quality.get(k) for k in ("reward_model", "baselines", "calibration", "trusted", "n")},
            "scores": _scores(dest / "review" / "alignment"),
            "stage_summaries": {k: state["stages"][k].get("summary") for k in RERUN if k in state["stages"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished cycle run, e.g. runs/demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every seed")
    args = ap.parse_args()
    if len(args.seeds) < 3:
        ap.error("use at least 3 seeds: one or two say nothing about seed-to-seed spread")
    base = args.run.resolve()
    state = json.loads((base / "cycle.json").read_text())
    missing = [s for s in ("sft", "feedback") if state["stages"].get(s, {}).get("status") != "done"]
    if missing:
        sys.exit(f"{base} has not finished {', '.join(missing)}: run the cycle first")
    results = []
    for seed in args.seeds:
        print(f"seed {seed}: preference stages, final evaluation and final review ...", file=sys.stderr, flush=True)
        results.append(_one_seed(base, seed, state["config_file"], [*state.get("overrides", []), *args.overrides]))
    pooled = _pooled([r["scores"] for r in results])
    print(f"\nalignment effect (final candidate vs SFT-only, held-out prompts, scripted reviewers) on {os.cpu_count()} CPU cores")
    print(f"{'seed':>4}  {'win rate [95 % CI]':<24}{'n':>4}{'ties':>6}  {'RM accuracy [CI] (length / lexical)':<36}{'minutes':>8}")
    for r in results:
        w, rm = r["alignment"], r["reward_model"]
        ties = r["resolved"].get("tie", 0)
        acc, base_acc = rm.get("reward_model") or {}, rm.get("baselines") or {}
        rm_text = (f"{acc['accuracy']:.2f} [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}] "
                   f"({base_acc['length_only']['accuracy']:.2f} / {base_acc['lexical_overlap']['accuracy']:.2f})"
                   if acc.get("accuracy") is not None else "n/a")
        print(f"{r['seed']:>4}  {w['estimate']:.2f} [{w['ci_low']:.2f}, {w['ci_high']:.2f}]{'':<8}{w['n']:>4}{ties:>6}  "
              f"{rm_text:<36}{r['seconds'] / 60:>8.1f}")
    print(f"pooled: {pooled['estimate']:.3f} [{pooled['ci_low']:.3f}, {pooled['ci_high']:.3f}] over {pooled['judgements']} "
          f"judgements on {pooled['prompts']} held-out prompts ({pooled['ties']} ties); "
          f"lower bound {'above' if pooled['ci_low'] > 0.5 else 'not above'} 0.5")
    for aspect in sorted({a for r in results for a in r["aspects"]}):
        rates = [r["aspects"][aspect]["win_rate"]["estimate"] for r in results if aspect in r["aspects"]]
        print(f"  aspect {aspect:<20} per-seed win rate {', '.join(f'{x:.2f}' for x in rates)}")
    if args.json:
        args.json.write_text(json.dumps({"seeds": results, "pooled": pooled, "cpu_count": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
