"""Active labeling: which selection strategy gets a reward model to a given accuracy with fewest labels?

Starts from a finished cycle run (``--run runs/demo``: its SFT adapter and its prompt split). The
policy's on-policy pool is built exactly as ``feedback.on_policy`` builds it (``feedback.samples``
sampled answers per training prompt, paired with each other and with the incumbent's answer; cached
in the run). The pool's prompts are split 70/30 (seeded): pairs of the 70 % are what a strategy may
send to reviewers, pairs of the 30 % are the test set. Labels come from the demo's scripted
reviewers, called directly (``feedback.rubric.judge_pair``, the rubric Label Studio's scripted
reviewers apply; sides shuffled): two reviewers with noise 0.05 and 0.2 per sent pair, a label only
when they agree on a winner (the cycle's majority rule with two reviewers); test labels are the
rubric without noise, ties left out.

For every seed and strategy (``random``, ``uncertainty``, ``disagreement``; ``feedback.active``), pairs
are sent in rounds of ``--round`` up to ``--budget``, the first round random; after each round the
selection ensemble (``feedback.active.Ensemble``: Bradley-Terry members on frozen MiniLM embeddings,
the ensemble the cycle uses to choose) is refitted and its pairwise accuracy on the test pairs
recorded. The figure measured is that ensemble's accuracy, not the LoRA reward model the reward
stage trains afterwards. Prints accuracy against labels spent per strategy (mean and range over
seeds), the labels each strategy needs to reach random selection's final accuracy, and writes a plot.

    .venv/bin/python bench/active_labeling.py --run runs/demo [--seeds 1 2 3] [--round 30] [--budget 300]
        [--plot docs/active_labeling.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STRATEGIES = ("random", "uncertainty", "disagreement")
NOISE = (0.05, 0.2)


def _config(run: Path, overrides: list[str]):
    from harness.config import load_config

    state = json.loads((run / "cycle.json").read_text())
    return load_config(Path(state["config_file"]), [*state.get("overrides", []), f"run.id={run.name}",
                                                    f"run.root={run.parent}", "feedback.on_policy=true",
                                                    "feedback.prompt_set=training",
                                                    f"feedback.incumbent={state['incumbent']}",  # the run's, not today's champion
                                                    *overrides])


def _verdict(pair, rng: random.Random, noise: float) -> float | None:
    """1.0 when the pair's first answer wins, 0.0 when the second does, None for a tie or both unacceptable."""
    from feedback.rubric import judge_pair

    p, a, b, _ = pair
    info = {"prompt": p["prompt"], "reference": p.get("reference"), "unsafe_markers": p.get("unsafe_markers")}
    a_left = rng.random() < 0.5
    left, right = (a, b) if a_left else (b, a)
    choice = judge_pair(info, left, right, rng, noise)["choice"]
    if choice not in ("left", "right"):
        return None
    return 1.0 if (choice == "left") == a_left else 0.0


def _reviewed(pair, seed: int, key: int) -> float | None:
    votes = [_verdict(pair, random.Random(f"{seed}:{key}:{i}"), noise) for i, noise in enumerate(NOISE)]
    return votes[0] if votes[0] is not None and votes[0] == votes[1] else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished cycle run (its SFT adapter is the policy)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--round", type=int, default=30, help="pairs sent per labeling round")
    ap.add_argument("--budget", type=int, default=300, help="pairs sent in all")
    ap.add_argument("--members", type=int, default=5, help="ensemble members")
    ap.add_argument("--plot", type=Path, help="write the accuracy-vs-labels plot here (PNG)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. feedback.samples=4")
    args = ap.parse_args()
    if len(args.seeds) < 3:
        ap.error("use at least 3 seeds")
    from feedback import active
    from feedback.push import candidate_pool
    from feedback.rounds import pool_features

    cfg = _config(args.run.resolve(), args.overrides)
    started = time.perf_counter()
    print(f"building the on-policy pool ({cfg.feedback.samples} samples per training prompt, cached in the run) ...",
          file=sys.stderr, flush=True)
    pool = candidate_pool(cfg)
    pool_s = time.perf_counter() - started
    prompts = sorted({p[0]["prompt"] for p in pool.pairs})
    random.Random("active-bench-split").shuffle(prompts)
    test_prompts = set(prompts[: round(0.3 * len(prompts))])
    train_idx = [i for i, p in enumerate(pool.pairs) if p[0]["prompt"] not in test_prompts]
    test_idx = [i for i, p in enumerate(pool.pairs) if p[0]["prompt"] in test_prompts]
    test_y = {i: _verdict(pool.pairs[i], random.Random(f"test:{i}"), 0.0) for i in test_idx}
    test_idx = [i for i in test_idx if test_y[i] is not None]
    print(f"embedding {len(pool.pairs)} pairs ...", file=sys.stderr, flush=True)
    feats = pool_features(pool, str(cfg.feedback.encoder))  # as the cycle's rounds do
    x_test, y_test = feats[test_idx], np.asarray([test_y[i] for i in test_idx])
    length_acc = float(np.mean([(len(pool.pairs[i][1].split()) > len(pool.pairs[i][2].split())) == (test_y[i] == 1.0)
                                for i in test_idx]))
    prompt_of = [p[0]["prompt"] for p in pool.pairs]
    budget = min(args.budget, len(train_idx))
    steps = list(range(args.round, budget + 1, args.round))
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    for seed in args.seeds:
        for strategy in STRATEGIES:
            rng = random.Random(f"active:{seed}")
            sent: list[int] = []
            labels: dict[int, float] = {}
            curve = []
            for r, _ in enumerate(steps, 1):
                taken = set(sent)
                remaining = [i for i in train_idx if i not in taken]
                probs = None
                if r > 1 and strategy != "random":
                    x, y = active.labeled_xy(labels, feats)
                    probs = active.Ensemble(args.members, seed=seed + r).fit(x, y).probabilities(feats)
                picked = active.choose("random" if r == 1 else strategy, remaining, args.round, prompt_of=prompt_of,
                                       rng=rng, probabilities=probs)
                sent += picked
                for i in picked:
                    v = _reviewed(pool.pairs[i], seed, i)
                    if v is not None:
                        labels[i] = v
                x, y = active.labeled_xy(labels, feats)
                curve.append(active.Ensemble(args.members, seed=seed).fit(x, y).accuracy(x_test, y_test))
            curves[strategy].append(curve)
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    mean = {s: np.mean(curves[s], axis=0) for s in STRATEGIES}
    target = float(mean["random"][-1])

    def needed(strategy: str) -> int | None:
        hit = [b for b, a in zip(steps, mean[strategy]) if a >= target]
        return hit[0] if hit else None

    print(f"\nactive labeling on {os.cpu_count()} CPU cores: pool {len(pool.pairs)} pairs from {len(prompts)} prompts "
          f"({len(train_idx)} selectable, {len(test_idx)} test pairs with a clear winner); seeds {args.seeds}; "
          f"length-only baseline on the test pairs {length_acc:.3f}; pool built in {pool_s:.0f} s")
    print(f"{'labels sent':>11}  " + "  ".join(f"{s:>24}" for s in STRATEGIES))
    for j, b in enumerate(steps):
        cells = []
        for s in STRATEGIES:
            vals = [c[j] for c in curves[s]]
            cells.append(f"{np.mean(vals):.3f} [{min(vals):.3f}, {max(vals):.3f}]")
        print(f"{b:>11}  " + "  ".join(f"{c:>24}" for c in cells))
    results = {}
    for s in STRATEGIES:
        n = needed(s)
        results[s] = {"labels_to_reach_random_final": n, "share_of_random_labels": (n / steps[-1]) if n else None,
                      "final_mean_accuracy": float(mean[s][-1])}
        print(f"{s:<13} reaches random's final accuracy {target:.3f} with "
              + (f"{n} labels ({n / steps[-1]:.0%} of random's {steps[-1]})" if n else "no budget tried"))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        for s in STRATEGIES:
            arr = np.asarray(curves[s])
            ax.plot(steps, arr.mean(0), marker="o", ms=3, label=s)
            ax.fill_between(steps, arr.min(0), arr.max(0), alpha=0.15)
        ax.axhline(length_acc, color="grey", ls=":", label="length-only baseline")
        ax.set_xlabel("review pairs sent (labels spent)")
        ax.set_ylabel("held-out pairwise accuracy")
        ax.set_title(f"Selection ensemble accuracy, {len(args.seeds)} seeds (band: min-max)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    if args.json:
        args.json.write_text(json.dumps({"steps": steps, "curves": curves, "summary": results, "pool_pairs": len(pool.pairs),
                                         "test_pairs": len(test_idx), "length_baseline": length_acc, "seeds": args.seeds,
                                         "cpu_count": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
