"""Can this reward model be trusted? Its held-out pairwise accuracy next to two baselines that know
nothing of the reviewers' taste, how well its Bradley-Terry probabilities are calibrated, and how much
of its score is just response length.

* **accuracy**: share of held-out pairs scored chosen > rejected, with a bootstrap 95 % CI.
* **length-only baseline**: "the longer response wins" (ties count half).
* **lexical baseline**: "the response sharing more words with the prompt wins" (ties count half).
* **calibration**: the Bradley-Terry probability that the chosen side wins, sigmoid(margin): expected
  calibration error (10 equal-width confidence bins) and Brier score, beside the ECE a perfectly
  calibrated model with the same confidences would show on as many pairs (``if_calibrated``: binned ECE
  on a few dozen pairs is biased upward, so the raw figure alone overstates miscalibration). A reward model trained on a few
  hundred pairs is overconfident, so the same figures are also given after **temperature scaling**
  (sigmoid(margin / T), T fitted by maximum likelihood), cross-fitted so that no pair is scored with a
  temperature fitted on itself: the held-out pairs are cut into 5 seeded folds, each fold's
  probabilities use T fitted on the other four. ``temperature`` (fitted on all held-out pairs) is what
  a user applies to turn this model's margins into probabilities.
* **length correlation**: Spearman correlation of the reward with the response's length in words,
  over every held-out response.

``trusted`` holds when the reward model beats both baselines on the same held-out pairs: the paired
difference in per-pair correctness (reward model minus baseline; a baseline's tie counts half) has a
bootstrap 95 % CI whose lower bound lies above 0 (``vs_baselines``). Paired, because both are scored on
the same pairs: a split that happens to favour "longer wins" favours a length-minded reward model too,
which comparing one CI with the other's point estimate ignores. Online RL refuses a reward model that
is not trusted (``online.allow_weak_reward_model`` overrides it, and is recorded).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from harness.stats import bootstrap_ci, paired_difference

__all__ = ["quality_report", "verdict"]

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return " ".join(str(m.get("content") or "") for m in prompt if m.get("role") != "assistant")


def _overlap(prompt: str, response: str) -> float:
    p, r = set(_words(prompt)), set(_words(response))
    return len(p & r) / len(p | r) if p | r else 0.0


def _pick(a: float, b: float) -> float:
    """1 when the chosen side's feature is larger, 0.5 on a tie, 0 otherwise."""
    return 1.0 if a > b else 0.5 if a == b else 0.0


def _rate(values: list[float], seed: int, n_resamples: int) -> dict[str, Any]:
    lo, hi = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return {"accuracy": float(np.mean(values)) if values else None, "ci_low": lo, "ci_high": hi, "n": len(values)}


def _ahead(baseline: list[float], model: list[float], seed: int, n_resamples: int) -> dict[str, Any]:
    """The reward model's accuracy minus a baseline's, paired over the same pairs, with a bootstrap CI."""
    d = paired_difference(baseline, model, seed=seed, n_resamples=n_resamples)
    return {k: d.get(k) for k in ("difference", "ci_low", "ci_high", "n", "test", "p_value")}


def _ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """Expected calibration error over ``bins`` equal-width confidence bins on [0.5, 1]."""
    which = np.minimum(((confidence - 0.5) / 0.5 * bins).astype(int), bins - 1)
    ece = 0.0
    for i in np.unique(which):
        inside = which == i
        ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def _calibration(margins: np.ndarray, bins: int = 10, seed: int = 0, n_resamples: int = 2000) -> dict[str, Any]:
    """ECE and Brier of the Bradley-Terry probability, and what ECE a perfectly calibrated model with the same
    confidences would show on this many pairs (``if_calibrated``: outcomes drawn with the stated
    probabilities, as in consistency resampling; Broecker and Smith 2007). On a few dozen pairs binned ECE is
    biased upward; ``p_value`` is the share of calibrated draws with an ECE at least the observed one, so a
    small p says the model is miscalibrated, a large one that the figure is within chance."""
    p_chosen = 1.0 / (1.0 + np.exp(-margins))
    confidence = np.maximum(p_chosen, 1.0 - p_chosen)
    correct = (p_chosen > 0.5).astype(float)
    ece = _ece(confidence, correct, bins)
    out: dict[str, Any] = {"ece": ece, "brier": float(np.mean((1.0 - p_chosen) ** 2)), "bins": bins,
                           "mean_confidence": float(confidence.mean())}
    if len(margins):
        rng = np.random.default_rng(seed)
        draws = np.array([_ece(confidence, (rng.random(len(confidence)) < confidence).astype(float), bins)
                          for _ in range(n_resamples)])
        out["if_calibrated"] = {"ece_mean": float(draws.mean()), "ece_p95": float(np.quantile(draws, 0.95)),
                                "p_value": float((np.sum(draws >= ece) + 1) / (n_resamples + 1)), "draws": n_resamples}
    return out


def _fit_temperature(margins: np.ndarray) -> float:
    """The T that maximizes the likelihood of "chosen wins" under sigmoid(margin / T)."""
    from scipy.optimize import minimize_scalar

    if not np.any(margins):
        return 1.0
    nll = lambda log_t: float(np.mean(np.logaddexp(0.0, -margins / math.exp(log_t))))  # noqa: E731
    return float(math.exp(minimize_scalar(nll, bounds=(-4.0, 6.0), method="bounded").x))


def _scaled_calibration(margins: np.ndarray, seed: int, folds: int = 5, n_resamples: int = 2000) -> dict[str, Any]:
    """Calibration after temperature scaling, cross-fitted over ``folds`` folds of the pairs."""
    n = len(margins)
    k = max(2, min(folds, n))
    order = np.random.default_rng(seed).permutation(n)
    scaled = np.empty(n)
    for f in range(k):
        test = order[f::k]
        train = np.setdiff1d(order, test)
        t = _fit_temperature(margins[train]) if len(train) else 1.0
        scaled[test] = margins[test] / t
    return {**_calibration(scaled, seed=seed, n_resamples=n_resamples), "temperature": _fit_temperature(margins), "folds": k,
            "method": f"temperature scaling, cross-fitted over {k} folds of the held-out pairs"}


def quality_report(pairs: list[dict[str, Any]], chosen: list[float], rejected: list[float], *, seed: int = 0,
                   n_resamples: int = 2000, folds: int = 0) -> dict[str, Any]:
    """The reward model's trust report on held-out ``pairs`` scored ``chosen`` / ``rejected``; ``folds``
    K >= 2 when each pair was scored by the one of K cross-fitted models that did not train on its prompt."""
    from scipy.stats import spearmanr

    n = len(pairs)
    if n == 0:
        return {"n": 0, "trusted": False, "why": "no held-out pairs: nothing measured"}
    margins = np.asarray(chosen, dtype=float) - np.asarray(rejected, dtype=float)
    texts = [(_prompt_text(p["prompt"]), p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs]
    model = [1.0 if m > 0 else 0.0 for m in margins]  # a tie is an error, as in training's accuracy
    length = [_pick(len(_words(c)), len(_words(r))) for _, c, r in texts]
    lexical = [_pick(_overlap(q, c), _overlap(q, r)) for q, c, r in texts]
    report: dict[str, Any] = {
        "n": n,
        "estimate": ({"kind": "cross_fit", "folds": folds,
                      "description": f"cross-fitted over {folds} folds of the prompts: each pair scored by a model that did "
                                     "not train on its prompt"} if folds >= 2 else
                     {"kind": "heldout", "folds": 0, "description": "one held-out share of the prompts"}),
        "reward_model": _rate(model, seed, n_resamples),
        "baselines": {"length_only": _rate(length, seed, n_resamples), "lexical_overlap": _rate(lexical, seed, n_resamples)},
        "vs_baselines": {name: _ahead(values, model, seed, n_resamples)
                         for name, values in (("length_only", length), ("lexical_overlap", lexical))},
        "calibration": _calibration(margins, seed=seed, n_resamples=n_resamples),
    }
    if n >= 2:
        report["calibration_scaled"] = _scaled_calibration(margins, seed, n_resamples=n_resamples)
    lengths = [len(_words(c)) for _, c, _ in texts] + [len(_words(r)) for _, _, r in texts]
    rewards = list(map(float, chosen)) + list(map(float, rejected))
    rho = spearmanr(lengths, rewards).statistic if len(set(lengths)) > 1 and len(set(rewards)) > 1 else math.nan
    report["length_correlation"] = {"spearman": None if math.isnan(rho) else float(rho), "n": len(lengths)}
    report["trusted"], report["why"] = verdict(report)
    return report


def verdict(report: dict[str, Any]) -> tuple[bool, str]:
    """(trusted, the figures in words): the reward model must beat both baselines on the same pairs
    (paired difference, CI lower bound above 0)."""
    if not report.get("n"):
        return False, "no held-out pairs: the reward model's accuracy is not measured"
    rm = report["reward_model"]
    base = report["baselines"]
    ahead = report.get("vs_baselines") or {}
    parts, beaten = [], []
    for key, name in (("length_only", "length-only"), ("lexical_overlap", "lexical")):
        d = ahead.get(key) or {}
        parts.append(f"{name} baseline {base[key]['accuracy']:.2f} (reward model ahead by {d.get('difference', math.nan):+.2f} "
                     f"[{d.get('ci_low', math.nan):+.2f}, {d.get('ci_high', math.nan):+.2f}])")
        lo = d.get("ci_low")
        if lo is None or math.isnan(lo) or lo <= 0:
            beaten.append(name)
    folds = (report.get("estimate") or {}).get("folds") or 0
    shown = (f"{f'cross-fitted ({folds} folds)' if folds >= 2 else 'held-out'} accuracy {rm['accuracy']:.2f} [{rm['ci_low']:.2f}, {rm['ci_high']:.2f}] on {report['n']} pairs; "
             + "; ".join(parts))
    if beaten:
        return False, f"{shown}: not ahead of the {' and '.join(beaten)} baseline on the same pairs (the CI reaches 0)"
    return True, f"{shown}: ahead of both baselines on the same pairs (CI above 0)"
