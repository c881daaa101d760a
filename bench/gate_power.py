"""Gate decision quality: false-promote rate and power of a policy, by seeded simulation.

Per-sample results are simulated for the incumbent (each item right with the base rate), and the
candidate's results are the incumbent's with known changes injected: items flip from wrong to right
or right to wrong so that the true paired difference is exactly the injected effect, with a given
share of items changing at all ("churn"). Reviews are simulated per task (win / tie / loss, unsafe
flag). Every trial goes through the gate's own code: ``harness.stats.paired_difference`` (the
evidence ``harness compare`` produces) and ``harness.gate.decide_compare`` / ``decide_feedback``.

Scenarios: candidates the policy must reject (no real gain; a retention regression; unsafe answers)
give the false-promote rate (goal <= 5 %); a good candidate whose domain gain is exactly the policy's
``min_effect`` gives the power (goal >= 90 %).

    .venv/bin/python bench/gate_power.py [--policy harness/policies/default.yaml] [--trials 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback.preferences import _rates  # noqa: E402  (the gate's feedback statistics)
from harness.gate import DEFAULT_POLICY, CompareRule, decide_compare, decide_feedback, load_policy  # noqa: E402
from harness.stats import paired_difference  # noqa: E402


def inject(rng: np.random.Generator, base: np.ndarray, effect: float, churn: float) -> np.ndarray:
    """Candidate results: the incumbent's, with a share ``churn`` of items changed so that the mean
    moves by ``effect`` (up-flips minus down-flips)."""
    up, down = (churn + effect) / 2, (churn - effect) / 2
    wrong, right = base == 0, base == 1
    p_up = min(1.0, up / max(wrong.mean(), 1e-9))
    p_down = min(1.0, max(0.0, down) / max(right.mean(), 1e-9))
    out = base.copy()
    out[wrong & (rng.random(base.size) < p_up)] = 1
    out[right & (rng.random(base.size) < p_down)] = 0
    return out


def trial(rng, policy, scenario: dict, sizes: dict, resamples: int) -> bool:
    """One simulated gate run; True when every rule passes (the candidate would be promoted)."""
    for rule in policy.rules:
        if isinstance(rule, CompareRule):
            group = rule.suites[0].split("/")[0]
            n, base_rate = sizes[group]
            base = (rng.random(n) < base_rate).astype(float)
            cand = inject(rng, base, scenario[f"{group}_effect"], scenario["churn"][group])
            row = paired_difference(base, cand, n_resamples=resamples, seed=int(rng.integers(1 << 30)))
            row["higher_is_better"] = True
            ok, _, _ = decide_compare(row, rule.require, rule.by)
        else:
            n = sizes["feedback"]
            u = rng.random(n)
            scores = np.where(u < scenario["win"], 1.0, np.where(u < scenario["win"] + scenario["tie"], 0.5, 0.0))
            flagged = int((rng.random(n) < scenario["unsafe"]).sum())
            stats = _rates(list(scores), flagged, n, seed=int(rng.integers(1 << 30)), unit="tasks")
            ok, _ = decide_feedback(stats[rule.metric], rule.at_least, rule.at_most)
        if not ok:
            return False
    return True


def wilson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(method="wilson")
    return ci.low, ci.high


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-domain", type=int, default=122, help="domain items (the demo's handbook MCQ has 122)")
    ap.add_argument("--n-retention", type=int, default=220, help="retention items (general knowledge has 220)")
    ap.add_argument("--n-reviews", type=int, default=65, help="reviewed tasks (the demo has 65)")
    ap.add_argument("--churn", type=float, default=0.34, help="share of domain items whose result changes (demo: 42/122)")
    ap.add_argument("--retention-churn", type=float, default=0.1, help="share of retention items whose result changes")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per CI")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    policy = load_policy(args.policy)
    domain_rules = [r for r in policy.rules if isinstance(r, CompareRule) and r.require == "improve"]
    min_effect = max((r.min_effect or r.by for r in domain_rules), default=0.0)
    sizes = {"domain": (args.n_domain, 0.3), "retention": (args.n_retention, 0.65), "bias": (args.n_domain, 0.5),
             "feedback": args.n_reviews}
    good_reviews = {"win": 0.55, "tie": 0.15, "unsafe": 0.01}
    scenarios = {
        "no real gain (domain +0)": {"domain_effect": 0.0, "retention_effect": 0.0, **good_reviews, "harmful": True},
        "nothing changed (identical results)": {"domain_effect": 0.0, "retention_effect": 0.0, **good_reviews,
                                                "harmful": True, "domain_churn": 0.0},
        "forgets (retention -0.10)": {"domain_effect": min_effect, "retention_effect": -0.10, **good_reviews, "harmful": True},
        "unsafe answers (30 % flagged)": {"domain_effect": min_effect, "retention_effect": 0.0, **{**good_reviews, "unsafe": 0.3},
                                          "harmful": True},
        f"good: domain +{min_effect:g}, no forgetting": {"domain_effect": min_effect, "retention_effect": 0.0, **good_reviews,
                                                         "harmful": False},
    }
    rng = np.random.default_rng(args.seed)
    results = {}
    for name, scenario in scenarios.items():
        domain_churn = scenario.get("domain_churn", args.churn)
        scenario = {**scenario, "churn": {"domain": domain_churn, "retention": args.retention_churn, "bias": args.churn}}
        promoted = sum(trial(rng, policy, scenario, sizes, args.resamples) for _ in range(args.trials))
        lo, hi = wilson(promoted, args.trials)
        results[name] = {"promoted": promoted, "trials": args.trials, "rate": promoted / args.trials, "ci": [lo, hi],
                         "harmful": scenario["harmful"]}
        print(f"{name:<45} promoted {promoted:>4}/{args.trials}  ({promoted / args.trials:.3f}, 95 % CI {lo:.3f}-{hi:.3f})",
              flush=True)
    false_promote = max(r["rate"] for r in results.values() if r["harmful"])
    power = next(r["rate"] for r in results.values() if not r["harmful"])
    print(f"\npolicy {policy.name} v{policy.version}; domain n={args.n_domain}, retention n={args.n_retention}, "
          f"reviews n={args.n_reviews}, churn {args.churn} (domain) / {args.retention_churn} (retention)")
    print(f"false-promote rate (worst harmful scenario): {false_promote:.3f}  (goal <= 0.05)")
    print(f"power at the minimum effect +{min_effect:g}:          {power:.3f}  (goal >= 0.90)")
    if args.json:
        args.json.write_text(json.dumps({"policy": str(args.policy), "scenarios": results, "false_promote_rate": false_promote,
                                         "power": power, "min_effect": min_effect, "args": {k: str(v) for k, v in vars(args).items()}},
                                        indent=2))


if __name__ == "__main__":
    main()
