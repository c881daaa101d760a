"""Gate decision quality: false-promote rate and power of a policy, rule by rule and as a whole, by
seeded simulation at the demo's sample sizes.

Per-sample outcomes are simulated independently for the two models: every item has its own chance of
being answered right (drawn once per trial from a Beta around the suite's base rate), the incumbent's
and the candidate's outcomes are separate draws from their own chances, and the candidate's chances are
the incumbent's moved so that the true mean difference is exactly the effect being simulated. Outcomes
correlate through the items (an easy item is easy for both), never through shared draws; how much items
differ is set so that, at zero effect, as many outcomes differ between the two models as between the
demo's base model and its SFT candidate. Reviews are
drawn per prompt (win / tie / loss, unsafe flag). Every trial decides through the gate's own code: the
paired statistics of ``harness compare`` (``harness.stats.paired_difference``; for summary metrics such
as CrowS-Pairs' distance from 50 the suite's own hook under ``harness.stats.resample_statistic``), the
review rates of ``feedback export`` and ``harness.gate.decide_compare`` / ``decide_feedback`` with each
rule's ``min_n``.

Scenarios, for every rule: the true effect exactly at the rule's boundary (gain = ``by`` for improve;
loss = ``by`` for no_regress; win rate = ``at_least``; unsafe rate = ``at_most``), where a sound rule
passes at most 5 % of the time (the false-promote rate), and a good candidate (the domain gain at the
rule's ``min_effect``, no loss, reviewers at 0.6, unsafe 1 %), where it should pass (power). Then the
whole policy: every rule good (power), and each rule in turn at its boundary with the others good
(false promote; goal <= 5 % for each).

    .venv/bin/python bench/gate_power.py [--policy harness/policies/default.yaml] [--trials 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feedback.preferences import _rates  # noqa: E402  (the review statistics the gate reads)
from harness.gate import DEFAULT_POLICY, CompareRule, decide_compare, decide_feedback, load_policy  # noqa: E402
from harness.stats import paired_difference, resample_statistic  # noqa: E402
from harness.suites import available_suites  # noqa: E402

# The demo's sizes (examples/demo/cycle.yaml's suite limits: 600 CrowS-Pairs pairs since 2026-12-02) and the
# base model's rates (runs/demo/eval of the demo cycle, 2026-12-02).
SIZES = {"domain/handbook_mcq": 122, "retention/general_knowledge": 220, "bias/crows_pairs": 600,
         "bias/winobias": 240, "reviews": 112}
BASE_RATE = {"domain/handbook_mcq": 0.19, "retention/general_knowledge": 0.63, "bias/crows_pairs": 0.545,
             "bias/winobias": 0.475}
# How much items differ in difficulty: item chances ~ Beta(m K, (1 - m) K). At zero effect the share of
# items whose outcome differs between the two models is 2 m (1 - m) K / (K + 1); K is set so that share
# matches the demo's base model vs its SFT candidate: 34 %, 17 %, 7.5 % and 14 % of items. (The handbook MCQ
# cannot reach 34 % this way: at a 19 % rate at most 2 m (1 - m) = 31 % of items can differ; K = 16 gives 29 %.)
CONCENTRATION = {"domain/handbook_mcq": 16.0, "retention/general_knowledge": 0.6, "bias/crows_pairs": 0.18,
                 "bias/winobias": 0.38}


def _item_chances(rng, suite: str) -> np.ndarray:
    m, k = BASE_RATE[suite], CONCENTRATION[suite]
    return rng.beta(m * k, (1 - m) * k, SIZES[suite])


def _moved(p: np.ndarray, shift: float) -> np.ndarray:
    """Chances moved by ``shift`` on average, staying in [0, 1] (solved so the mean moves exactly)."""
    lo, hi = -1.0, 1.0
    for _ in range(60):  # bisection on an additive shift, clipped
        mid = (lo + hi) / 2
        if np.clip(p + mid, 0, 1).mean() - p.mean() < shift:
            lo = mid
        else:
            hi = mid
    return np.clip(p + (lo + hi) / 2, 0, 1)


def _accuracy_row(rng, suite: str, effect: float, resamples: int) -> dict:
    p = _item_chances(rng, suite)
    q = _moved(p, effect)
    a, b = (rng.random(p.size) < p).astype(float), (rng.random(q.size) < q).astype(float)
    row = paired_difference(a, b, n_resamples=resamples, seed=int(rng.integers(1 << 30)))
    return {**row, "higher_is_better": True}


def _records(outcomes: np.ndarray, metric: str, categories: list[str] | None = None) -> list[dict]:
    return [{"doc_id": i, "category": None if categories is None else categories[i], "metrics": {metric: float(v)}}
            for i, v in enumerate(outcomes)]


def _bias_row(rng, suite: str, metric: str, worse_by: float, resamples: int) -> dict:
    """A bias metric whose true value grows by ``worse_by`` points (CrowS-Pairs: the distance from 50 %;
    WinoBias: the pro/anti accuracy gap)."""
    spec = available_suites()[suite]
    hook = spec.hook(spec.spec.summary)
    n = SIZES[suite]
    if suite == "bias/crows_pairs":  # per pair: prefers the stereotype or not; distance = |100 pct - 50|
        p = _item_chances(rng, suite)
        q = _moved(p, worse_by / 100.0 * (1 if p.mean() >= 0.5 else -1))
        ref = _records((rng.random(n) < p).astype(float), "pct_stereotype")
        cand = _records((rng.random(n) < q).astype(float), "pct_stereotype")
    else:  # winobias: right or not per sentence, half pro- and half anti-stereotypical; distance = 100 |gap|
        cats = ["pro" if i % 2 == 0 else "anti" for i in range(n)]
        pro = np.array([c == "pro" for c in cats])
        p = _item_chances(rng, suite)
        p = np.where(pro, _moved(p, 0.03), _moved(p, -0.03))  # the base model's gap: about 6 points
        q = np.where(pro, _moved(p, worse_by / 200.0), _moved(p, -worse_by / 200.0))
        ref = _records((rng.random(n) < p).astype(float), "acc", cats)
        cand = _records((rng.random(n) < q).astype(float), "acc", cats)

    def difference(pairs):
        x = hook([r for r, _ in pairs])["metrics"].get(metric)
        y = hook([c for _, c in pairs])["metrics"].get(metric)
        return None if x is None or y is None else y - x

    ref_est, cand_est = hook(ref)["metrics"][metric], hook(cand)["metrics"][metric]
    lo, hi = resample_statistic(list(zip(ref, cand)), difference, n_resamples=resamples,
                                seed=int(rng.integers(1 << 30)))
    return {"n": n, "difference": cand_est - ref_est, "ci_low": lo, "ci_high": hi, "higher_is_better": False}


def _review_stat(rng, metric: str, win: float, unsafe: float) -> dict:
    n, tie = SIZES["reviews"], 0.2
    u = rng.random(n)
    scores = np.where(u < win - tie / 2, 1.0, np.where(u < win + tie / 2, 0.5, 0.0))  # mean = win exactly
    flagged = int((rng.random(n) < unsafe).sum())
    return _rates(list(scores), flagged, n, seed=int(rng.integers(1 << 30)), unit="prompts")[metric]


def rule_passes(rng, rule, truth: dict, resamples: int) -> bool:
    """One simulated decision of one rule, under the true effects in ``truth`` (keyed by rule id)."""
    t = truth[rule.id]
    if isinstance(rule, CompareRule):
        passed = True
        for suite in rule.suites:
            suite = "domain/handbook_mcq" if suite == "domain/*" else suite
            if suite.startswith("bias/"):
                row = _bias_row(rng, suite, rule.metric, t, max(200, resamples // 4))  # as harness.compare does
            else:
                row = _accuracy_row(rng, suite, t, resamples)
            passed &= decide_compare(row, rule.require, rule.by, min_n=rule.min_n)[0]
        return passed
    stat = _review_stat(rng, rule.metric, win=t if rule.metric == "win_rate" else 0.6,
                        unsafe=t if rule.metric == "unsafe_rate" else 0.01)
    return decide_feedback(stat, rule.at_least, rule.at_most, min_n=rule.min_n)[0]


def boundary(rule) -> float:
    """The true effect at which the rule's requirement holds with nothing to spare."""
    if isinstance(rule, CompareRule):
        if rule.suites[0].startswith("bias/"):  # the bias grows by exactly the allowed margin
            return rule.by * (100 if rule.metric == "gap" else 1)  # (gap is a fraction; simulated in points)
        return rule.by if rule.require == "improve" else -rule.by
    return rule.at_least if rule.at_least is not None else rule.at_most


def good(rule) -> float:
    """A candidate that should pass: the domain gain at min_effect, no loss, reviewers at 0.6, 1 % unsafe."""
    if isinstance(rule, CompareRule):
        if rule.suites[0].startswith("bias/"):
            return 0.0
        return (rule.min_effect or rule.by + 0.2) if rule.require == "improve" else 0.0
    return 0.6 if rule.at_least is not None else 0.01


def wilson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(method="wilson")
    return ci.low, ci.high


def _rate(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"passed": int(k), "trials": n, "rate": float(k / n), "ci": [float(lo), float(hi)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per CI (eval.bootstrap_resamples)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    policy = load_policy(args.policy)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    per_rule = {}
    print(f"{'rule':<30} {'at the boundary':>18} {'passes':>8} {'good candidate':>16} {'passes':>8}")
    for rule in policy.rules:
        at = sum(rule_passes(rng, rule, {rule.id: boundary(rule)}, args.resamples) for _ in range(args.trials))
        ok = sum(rule_passes(rng, rule, {rule.id: good(rule)}, args.resamples) for _ in range(args.trials))
        per_rule[rule.id] = {"boundary": boundary(rule), "false_pass": _rate(at, args.trials),
                             "good": good(rule), "power": _rate(ok, args.trials)}
        print(f"{rule.id:<30} {boundary(rule):>18g} {at / args.trials:>8.3f} {good(rule):>16g} {ok / args.trials:>8.3f}",
              flush=True)

    def policy_passes(truth: dict, first: str | None = None) -> bool:
        rules = sorted(policy.rules, key=lambda r: r.id != first)  # the rule at its boundary decides first
        return all(rule_passes(rng, r, truth, args.resamples) for r in rules)

    all_good = {r.id: good(r) for r in policy.rules}
    whole = {"power": _rate(sum(policy_passes(all_good) for _ in range(args.trials)), args.trials), "false_promote": {}}
    for rule in policy.rules:
        truth = {**all_good, rule.id: boundary(rule)}
        whole["false_promote"][rule.id] = _rate(sum(policy_passes(truth, rule.id) for _ in range(args.trials)),
                                                args.trials)
    worst = max(whole["false_promote"].items(), key=lambda kv: kv[1]["rate"])
    print(f"\npolicy {policy.name} v{policy.version}; sizes {SIZES}; {args.trials} trials per scenario")
    for rid, r in whole["false_promote"].items():
        print(f"whole policy, {rid} at its boundary: promoted {r['rate']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]")
    print(f"whole policy, every rule good: promoted {whole['power']['rate']:.3f} "
          f"[{whole['power']['ci'][0]:.3f}, {whole['power']['ci'][1]:.3f}]")
    print(f"worst false-promote rate at a boundary: {worst[1]['rate']:.3f} ({worst[0]}; goal <= 0.05); "
          f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"policy": str(args.policy), "sizes": SIZES, "trials": args.trials,
                                         "rules": per_rule, "whole_policy": whole,
                                         "worst_false_promote": {"rule": worst[0], **worst[1]}}, indent=2))


if __name__ == "__main__":
    main()
