"""One evaluator per rule kind: each reads the evidence it needs and returns the rule's outcome
(``id``, ``kind``, ``requirement``, ``passed`` and one check per piece of evidence, with its reason).

``EVALUATORS`` maps a policy rule's ``kind`` to its evaluator; the decision is that every rule passed.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable

from harness.errors import HarnessError
from harness.gate.evidence import Evidence
from harness.gate.policy import CompareRule, FeedbackRule

__all__ = ["thin_evidence", "decide_compare", "decide_feedback", "evaluate_compare", "evaluate_feedback", "EVALUATORS"]


def thin_evidence(n: Any, lo: Any, hi: Any, min_n: int, what: str = "paired differences") -> str | None:
    """Why a sample is too small or too uniform to decide on, or None. A CI of no width (one sample, or
    outcomes that are all the same) is not an interval the bootstrap could estimate, so the rule does not
    decide on it (the issue's rule; an exact bound such as Clopper-Pearson would be a finer answer)."""
    if not isinstance(n, int) or n < min_n:
        return f"not enough evidence (n={n}; the rule needs at least {min_n})"
    if lo is not None and hi is not None and lo == hi:
        return (f"not enough evidence (n={n}): the {what} are all the same ({lo:+.4f}), so the confidence "
                "interval has no width")
    return None


def decide_compare(row: dict[str, Any], require: str, by: float, *, min_n: int = 2) -> tuple[bool, str, dict[str, Any]]:
    """One comparison row against one requirement; positive oriented difference = better. Fewer than
    ``min_n`` paired samples, or a CI of no width, fails (see :func:`thin_evidence`)."""
    import math

    diff, lo, hi = row["difference"], row["ci_low"], row["ci_high"]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (diff, lo, hi)):
        return False, "no confidence interval could be computed for this difference", {}
    thin = thin_evidence(row.get("n"), lo, hi, min_n)
    if thin:
        return False, thin, {}
    sign = 1.0 if row.get("higher_is_better", True) else -1.0
    est, o_lo, o_hi = sign * diff, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
    oriented = {"oriented_estimate": est, "oriented_ci": [o_lo, o_hi]}
    if require == "improve":  # strict: a zero-width CI at 0 (nothing changed) is no improvement
        ok = o_lo > by
        why = (f"the CI's lower bound of the gain, {o_lo:+.4f}, {'exceeds' if ok else 'does not exceed'} the required {by:+.4f}")
    elif require == "no_regress":
        ok = o_lo > -by
        why = (f"the CI's worst case, {o_lo:+.4f}, {'stays above' if ok else 'falls below'} the allowed loss {-by:+.4f}")
    else:
        ok = -by <= lo and hi <= by
        why = f"the CI [{lo:+.4f}, {hi:+.4f}] {'lies within' if ok else 'leaves'} ±{by:.4f}"
    return ok, why, oriented


def decide_feedback(stat: dict[str, Any], at_least: float | None, at_most: float | None, *,
                    min_n: int = 2) -> tuple[bool, str]:
    """A review rate against its bound, on the CI; too few reviewed prompts or a CI of no width fails."""
    lo, hi = stat.get("ci_low"), stat.get("ci_high")
    if lo is not None or hi is not None:
        thin = thin_evidence(stat.get("n"), lo, hi, min_n, what="reviewed outcomes")
        if thin:
            return False, thin
    if at_least is not None:
        if lo is None:
            return False, "no confidence interval (no resolved reviews)"
        ok = lo >= at_least
        return ok, f"the CI's lower bound {lo:.3f} {'reaches' if ok else 'is below'} {at_least:.3f}"
    if hi is None:
        return False, "no confidence interval (no reviews)"
    ok = hi <= at_most
    return ok, f"the CI's upper bound {hi:.3f} {'stays under' if ok else 'exceeds'} {at_most:.3f}"


def _requirement(rule: CompareRule) -> str:
    word = {"improve": "at least", "no_regress": "at most"}.get(rule.require, "±")
    return f"{rule.metric} on {', '.join(rule.suites)}: {rule.require.replace('_', ' ')} by {word} {rule.by:g}"


def _compare_check(rule: CompareRule, ev: Evidence, suite: str) -> dict[str, Any]:
    base = {"suite": suite, "metric": rule.metric}
    problem = ev.suite_problem(suite)
    evidence = ev.suite_files(suite)
    if problem:
        return {**base, "passed": False, "reason": f"missing or unusable evidence: {problem}", "evidence": evidence}
    ev.record(*evidence)
    try:
        rows = ev.comparison(suite)
    except HarnessError as exc:  # e.g. the two sides were scored on different data
        return {**base, "passed": False, "reason": f"unusable evidence: {exc.message}", "evidence": evidence}
    row = next((r for r in rows if r["metric"] == rule.metric), None)
    if row is None:
        return {**base, "passed": False, "reason": f"missing evidence: the results hold no {rule.metric}", "evidence": evidence}
    ok, why, oriented = decide_compare(row, rule.require, rule.by, min_n=rule.min_n)
    return {**base, "passed": ok, "reason": why, "n": row.get("n"), "test": row.get("test"),
            "estimate": row.get("difference"), "ci": [row.get("ci_low"), row.get("ci_high")],
            "level": row.get("level", 0.95), "p_value": row.get("p_value"), "incumbent_value": row.get("reference_mean"),
            "candidate_value": row.get("candidate_mean"), "higher_is_better": row.get("higher_is_better"), **oriented,
            "evidence": evidence}


def evaluate_compare(rule: CompareRule, ev: Evidence) -> dict[str, Any]:
    """Paired differences on evaluation suites; a pattern covers every evaluated suite with the metric."""
    def has_metric(suite: str) -> bool:
        return suite not in ev.known or rule.metric in [m.name for m in ev.known[suite].spec.metrics]

    evaluated = ev.evaluated_suites()  # a suite either side has must be compared
    # a pattern covers a variant (domain/handbook_qa+rag: retrieval-augmented) only when it names one ("+")
    suites = sorted({s for pattern in rule.suites
                     for s in ([c for c in evaluated if has_metric(c)] if any(ch in pattern for ch in "*?[") else [pattern])
                     if fnmatch.fnmatch(s, pattern) and ("+" not in s or "+" in pattern)})
    checks = [_compare_check(rule, ev, suite) for suite in suites] or [
        {"suite": ", ".join(rule.suites), "metric": rule.metric, "passed": False,
         "reason": f"missing evidence: no results for {', '.join(rule.suites)}", "evidence": []}]
    return {"id": rule.id, "kind": "compare", "description": rule.description, "requirement": _requirement(rule),
            "passed": all(c["passed"] for c in checks), "checks": checks}


def evaluate_feedback(rule: FeedbackRule, ev: Evidence) -> dict[str, Any]:
    """A rate from the reviewers' summary, decided on its confidence bound."""
    bound = f"at least {rule.at_least:g}" if rule.at_least is not None else f"at most {rule.at_most:g}"
    requirement = f"{rule.metric} {bound} (CI bound)" + (" against the SFT-only candidate, held-out prompts"
                                                          if rule.against == "sft" else "")
    check: dict[str, Any] = {"metric": rule.metric, "against": rule.against,
                             "evidence": [str(p) for p in ev.review_files(rule.against)]}
    if rule.against == "sft" and ev.sft_fp == ev.cand_fp:  # no preference stage ran: nothing to judge
        check.update(passed=True, reason="the candidate is the SFT model itself: no preference stage changed it")
        return {"id": rule.id, "kind": "feedback", "description": rule.description, "requirement": requirement,
                "passed": True, "checks": [check]}
    summary, problem = ev.review(rule.against)
    if problem:
        check.update(passed=False, reason=problem)
    elif summary.get("simulated") and not ev.allow_simulated:
        check.update(passed=False, simulated=True,
                     reason="the reviews were simulated (scripted reviewers), and this policy counts only people's "
                            "reviews (allow_simulated: false)")
        ev.record(*ev.review_files(rule.against))
    else:
        stat = summary[rule.metric]
        ok, why = decide_feedback(stat, rule.at_least, rule.at_most, min_n=rule.min_n)
        check.update(passed=ok, reason=why, n=stat.get("n"), estimate=stat.get("estimate"),
                     ci=[stat.get("ci_low"), stat.get("ci_high")],
                     test="bootstrap CI" if rule.metric == "win_rate" else "Wilson CI", simulated=summary.get("simulated"))
        ev.record(*ev.review_files(rule.against))
    return {"id": rule.id, "kind": "feedback", "description": rule.description,
            "requirement": requirement, "passed": check["passed"], "checks": [check]}


EVALUATORS: dict[str, Callable[[Any, Evidence], dict[str, Any]]] = {
    "compare": evaluate_compare,
    "feedback": evaluate_feedback,
}
