"""How much reviewers agree, and one label per task.

Krippendorff's alpha (``krippendorff`` package): nominal for the preference, ordinal for the 1-5
rating. Cohen's kappa (mean over reviewer pairs) and Fleiss' kappa (``statsmodels``) for the
preference. Per reviewer: annotations and disagreement rate with the other reviewers' majority.
Resolution policy: ``majority`` (most votes; a tie at the top leaves the task unresolved), ``drop_ties`` (also drop
ties and "both unacceptable"), ``drop_low_agreement`` (also drop tasks whose majority share is below
``min_agreement``).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np

__all__ = ["CHOICES", "agreement", "resolve_labels", "LABEL_SCORE"]

CHOICES = ("candidate", "incumbent", "tie", "both_unacceptable")


def _by_task(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """task_key -> annotator -> latest annotation (a reviewer who answered twice counts once)."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in sorted(rows, key=lambda r: (r.get("updated_at") or "", r["annotation_id"])):
        out[row["task_key"]][row["annotator"]] = row
    return out


def _alpha(matrix: np.ndarray, level: str) -> float | None:
    import krippendorff

    usable = matrix[:, np.sum(~np.isnan(matrix), axis=0) >= 2]  # units with at least two ratings
    if usable.shape[1] == 0 or len(np.unique(usable[~np.isnan(usable)])) < 2:
        return None  # undefined: no pairable units, or a single value everywhere
    return float(krippendorff.alpha(reliability_data=usable, level_of_measurement=level))


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

    tasks = _by_task(rows)
    annotators = sorted({a for per in tasks.values() for a in per})
    keys = sorted(tasks)
    code = {c: i for i, c in enumerate(CHOICES)}
    pref = np.full((len(annotators), len(keys)), np.nan)
    rating = np.full((len(annotators), len(keys)), np.nan)
    for j, key in enumerate(keys):
        for i, a in enumerate(annotators):
            row = tasks[key].get(a)
            if row is not None:
                if row.get("choice") in code:
                    pref[i, j] = code[row["choice"]]
                if row.get("rating") is not None:
                    rating[i, j] = row["rating"]

    kappas = []
    for i, k in itertools.combinations(range(len(annotators)), 2):
        both = ~np.isnan(pref[i]) & ~np.isnan(pref[k])
        if both.sum() >= 2:
            table = np.zeros((len(CHOICES), len(CHOICES)))
            for x, y in zip(pref[i, both].astype(int), pref[k, both].astype(int)):
                table[x, y] += 1
            with np.errstate(invalid="ignore", divide="ignore"):
                value = float(cohens_kappa(table, return_results=False))
            if math.isfinite(value):
                kappas.append({"a": annotators[i], "b": annotators[k], "kappa": value, "n": int(both.sum())})
    # Fleiss needs the same number of raters per unit: use the units with the most common count.
    counts = np.sum(~np.isnan(pref), axis=0)
    fleiss = None
    if counts.size and counts.max() >= 2:
        m = Counter(c for c in counts.tolist() if c >= 2).most_common(1)[0][0]
        units = [[int(v) for v in pref[:, j] if not np.isnan(v)] for j in range(len(keys)) if counts[j] == m]
        if len(units) >= 2:
            table, _ = aggregate_raters(np.array(units), n_cat=len(CHOICES))
            with np.errstate(invalid="ignore", divide="ignore"):
                value = float(fleiss_kappa(table, method="fleiss"))
            fleiss = value if math.isfinite(value) else None

    per_reviewer = {}
    for i, a in enumerate(annotators):
        n = disagree = 0
        for j, key in enumerate(keys):
            if np.isnan(pref[i, j]):
                continue
            n += 1
            others = [int(pref[k, j]) for k in range(len(annotators)) if k != i and not np.isnan(pref[k, j])]
            if others:
                majority, _ = Counter(others).most_common(1)[0]
                disagree += int(pref[i, j]) != majority
        compared = sum(1 for j in range(len(keys)) if not np.isnan(pref[i, j])
                       and any(not np.isnan(pref[k, j]) for k in range(len(annotators)) if k != i))
        per_reviewer[a] = {"annotations": n, "compared": compared,
                           "disagreement_rate": disagree / compared if compared else None}
    return {
        "annotators": annotators, "tasks": len(keys), "annotations": int(np.sum(~np.isnan(pref))),
        "krippendorff_alpha_preference_nominal": _alpha(pref, "nominal"),
        "krippendorff_alpha_rating_ordinal": _alpha(rating, "ordinal"),
        "cohens_kappa_pairs": kappas,
        "cohens_kappa_mean": float(np.mean([k["kappa"] for k in kappas])) if kappas else None,
        "fleiss_kappa": fleiss, "per_reviewer": per_reviewer,
    }


# What a resolved label counts for the candidate: a win 1, a tie half, a loss 0.
LABEL_SCORE = {"candidate": 1.0, "incumbent": 0.0, "tie": 0.5}


def resolve_labels(rows: list[dict[str, Any]], policy: str = "majority", min_agreement: float = 0.5) -> dict[str, Any]:
    """One label per task: ``{task_key: {label, share, reviewers, dropped?}}`` under ``policy``."""
    resolved: dict[str, Any] = {}
    for key, per in _by_task(rows).items():
        votes = Counter(r["choice"] for r in per.values())
        (label, top), *rest = votes.most_common() + [(None, 0)]
        share = top / sum(votes.values())
        tied = rest and rest[0][1] == top
        entry = {"label": None if tied else label, "share": share, "reviewers": sorted(per), "votes": dict(votes)}
        if tied:
            entry["dropped"] = "no_majority"
        elif policy in ("drop_ties", "drop_low_agreement") and label in ("tie", "both_unacceptable"):
            entry["dropped"] = label
        elif policy == "drop_low_agreement" and share < min_agreement:
            entry["dropped"] = "low_agreement"
        resolved[key] = entry
    return resolved
