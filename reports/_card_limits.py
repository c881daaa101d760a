"""The limitations section of the model card (:mod:`reports.card`): what the evidence behind a version
cannot show, derived from its audit report, and the small formatting helpers the card shares with it."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["limitations", "SMALL_N", "WIDE_CI", "LOW_AGREEMENT", "DISTANCE_PREFIX"]

SMALL_N = 100       # fewer items (or reviewed pairs) than this: a limitation of the evidence
WIDE_CI = 0.2       # a 95 % interval wider than this share of the metric's scale (0.2 on 0-1, 20 points on 0-100)
LOW_AGREEMENT = 0.667  # Krippendorff's alpha below this supports no firm conclusion (Krippendorff, 2004)
# Absolute distances from the unbiased value (CrowS-Pairs distance_from_50, WinoBias distance_from_parity):
# their bootstrap CI never reaches below 0, so "the CI excludes the ideal 0" would flag every model. Their
# signed counterparts (pct_stereotype, gap) carry the same evidence and are checked instead.
DISTANCE_PREFIX = "distance_from"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if _finite(x) else "n/a"


def _ci(m: dict[str, Any] | None) -> str:
    if not m or not _finite(m.get("estimate")):
        return "n/a"
    ci = f" (95% CI {_num(m['ci_low'])} to {_num(m['ci_high'])})" if _finite(m.get("ci_low")) else ""
    return f"{_num(m['estimate'])}{ci}" + (f", n={m['n']}" if m.get("n") is not None else "")


def _evaluated(doc: dict[str, Any], role: str) -> dict[str, Any] | None:
    """The evaluation entry of a role; the candidate also by its fingerprint (older reports)."""
    hit = next((m for m in doc["evaluation"] if m["role"] == role), None)
    if hit is None and role == "candidate":
        fp = doc["lineage"]["candidate"]["fingerprint"]
        hit = next((m for m in doc["evaluation"] if m["fingerprint"] == fp), None)
    return hit


def _scale(metric: str, m: dict[str, Any]) -> float | None:
    """The metric's scale: 1 for shares and signed scores within [-1, 1], 100 for points (an ideal above 1,
    a distance in points, or values beyond 1 up to 100); None for another unit (nats), whose width says nothing."""
    values = [abs(m[k]) for k in ("estimate", "ci_low", "ci_high") if _finite(m.get(k))]
    if metric.startswith(DISTANCE_PREFIX) or (_finite(m.get("ideal")) and abs(m["ideal"]) > 1):
        return 100.0 if all(v <= 100 for v in values) else None
    if all(v <= 1 for v in values):
        return 1.0
    return 100.0 if all(v <= 100 for v in values) else None


def _wide(metric: str, m: dict[str, Any]) -> bool:
    if not (_finite(m.get("ci_low")) and _finite(m.get("ci_high"))):
        return False
    scale = _scale(metric, m)
    return scale is not None and m["ci_high"] - m["ci_low"] > WIDE_CI * scale


def _ideal(metric: str, m: dict[str, Any]) -> float | None:
    """The unbiased value a bias metric is judged against; older reports carry no ``ideal``: a metric named
    ``*bias*`` is judged against 0 there."""
    if metric.startswith(DISTANCE_PREFIX):
        return None
    if _finite(m.get("ideal")):
        return float(m["ideal"])
    return 0.0 if "bias" in metric else None


def _status(status: str) -> str | None:
    if status == "promoted, later superseded":
        return ("Status: promoted, later superseded: a later promotion replaced this version as the champion, so it "
                "is no longer served.")
    if status == "promoted, later rolled back":
        return "Status: promoted, later rolled back: a rollback moved the champion away from this version."
    if status != "promoted":
        return f"Status: {status} (this version is not the champion)."
    return None


def limitations(doc: dict[str, Any]) -> list[str]:
    """What the evidence behind this version cannot show, derived from the audit report."""
    out: list[str] = []
    dec, rev = doc["decision"], doc.get("reviewers")
    if dec.get("simulated_reviews") or ((rev or {}).get("summary") or {}).get("simulated"):
        out.append("Reviews were simulated (scripted reviewers, not people): the review figures show the pipeline "
                   "works, not what people think of the model.")
    if rev is None:
        out.append("No review by people: the model was judged on automatic suites only.")
    else:
        wr = (rev.get("summary") or {}).get("win_rate") or {}
        if isinstance(wr.get("n"), int) and wr["n"] < SMALL_N:
            out.append(f"Few reviewed pairs (n={wr['n']}, under {SMALL_N}): the win rate is an imprecise estimate.")
        alpha = (rev.get("agreement") or {}).get("krippendorff_alpha_preference_nominal")
        if not _finite(alpha):
            out.append("Agreement between reviewers was not measured (one reviewer per item, or none recorded).")
        elif alpha < LOW_AGREEMENT:
            out.append(f"Reviewers agreed little (Krippendorff's alpha {alpha:.2f}, under {LOW_AGREEMENT}).")
    rm = doc.get("reward_model") or {}
    quality, check = rm.get("quality") or {}, rm.get("online_check") or {}
    if quality and quality.get("trusted") is False:
        out.append(f"The reward model was not trusted: {quality.get('why')}.")
    if check.get("overridden"):
        out.append("Online RL trained against that untrusted reward model (online.allow_weak_reward_model).")
    cand = _evaluated(doc, "candidate") or {"suites": {}}
    small = sorted(f"{suite} (n={s['n']})" for suite, s in cand["suites"].items()
                   if isinstance(s.get("n"), int) and s["n"] < SMALL_N)
    if small:
        out.append(f"Small evaluation samples (under {SMALL_N} items): " + ", ".join(small) + ".")
    wide = sorted(f"{suite} {metric}" for suite, s in cand["suites"].items() for metric, m in s["metrics"].items()
                  if _wide(metric, m))
    if wide:
        out.append(f"Wide 95% intervals (over {WIDE_CI} of a 0-1 scale, {WIDE_CI * 100:g} points of a 0-100 one): "
                   + ", ".join(wide) + ".")
    bias = {suite: s for suite, s in cand["suites"].items() if suite.startswith("bias/")}
    if not bias:
        out.append("No bias suite was evaluated: bias is unmeasured.")
    for suite, s in sorted(bias.items()):
        for metric, m in sorted(s["metrics"].items()):
            ideal = _ideal(metric, m)
            if ideal is not None and _finite(m.get("ci_low")) and _finite(m.get("ci_high")) \
                    and (m["ci_low"] > ideal or m["ci_high"] < ideal):
                out.append(f"Measured bias: {suite} {metric} {_ci(m)} excludes {ideal:g} (no bias).")
    if not doc.get("data_card"):
        out.append("The run has no data card: the training data is not described here.")
    if not dec.get("approver"):
        out.append("No named person signed off the promotion.")
    if (status := _status(dec["status"])) is not None:
        out.append(status)
    if not (doc.get("ledger") or {}).get("ok", True):
        out.append(f"The ledger failed verification: {doc['ledger'].get('message')}.")
    suites = sorted(cand["suites"])
    out.append("Measured only on " + (", ".join(suites) if suites else "no suite") + "; behaviour elsewhere is unmeasured.")
    return out
