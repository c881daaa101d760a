"""The report's evaluation, read by people: models named by their role, the candidate beside the incumbent
with the paired change and its CI for every suite and metric, and bias categories in one table with the
models side by side (each with a CI) and the categories too small to read flagged.

Roles: ``base`` (the base model), ``incumbent`` (the model in production the gate compared against),
``sft_candidate`` (the model the SFT stage produced, when the preference stages trained on from it) and
``candidate`` (the final candidate the gate decided on). A model the run evaluated under no role is
``other``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.compare import compare_suite, model_suite_dirs as _model_suites
from harness.errors import HarnessError
from harness.evaluate import load_samples
from harness.stats import bootstrap_ci, interior_ideal, paired_difference, resample_statistic
from harness.suites import available_suites

__all__ = ["ROLE_LABELS", "ROLE_ORDER", "MIN_CATEGORY_N", "fingerprint_or_none", "roles", "label", "comparison", "categories"]

ROLE_LABELS = {"base": "base model", "incumbent": "incumbent", "sft_candidate": "SFT candidate",
               "candidate": "final candidate", "other": "other model"}
ROLE_ORDER = ("base", "incumbent", "sft_candidate", "candidate", "other")
#: Fewer items than this in a bias category: its figures are shown but flagged as too few to read.
MIN_CATEGORY_N = 30


def label(role: str, fingerprint: str = "") -> str:
    return ROLE_LABELS.get(role, role) + (f" {fingerprint[:8]}" if role == "other" and fingerprint else "")


def fingerprint_or_none(ref: str | None) -> str | None:
    """The fingerprint of a model reference, or None when it cannot be read (a model no longer where the run
    left it is then named by the fingerprint its results recorded)."""
    from harness.models import fingerprint, resolve

    if not ref:
        return None
    try:
        return fingerprint(resolve(ref))
    except (HarnessError, OSError, ValueError):
        return None


def roles(decision: dict[str, Any], base_fp: str | None, sft_fp: str | None) -> dict[str, str]:
    """Fingerprint -> role. The gate's candidate and incumbent win over base and SFT (an SFT-only cycle's
    candidate is the SFT model: it is the candidate)."""
    out: dict[str, str] = {}
    for fp, role in ((base_fp, "base"), (sft_fp, "sft_candidate"), (decision["incumbent"]["fingerprint"], "incumbent"),
                     (decision["candidate"]["fingerprint"], "candidate")):
        if fp:
            out[fp] = role
    return out


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def comparison(eval_dir: Path, incumbent_fp: str, candidate_fp: str, *, suite_dirs: tuple[Path, ...] = (),
               n_resamples: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """The final candidate beside the incumbent, per suite and metric: both estimates and the paired change
    (candidate minus incumbent, same documents) with its 95 % CI; a suite only one of them has is listed
    with the reason it has no change."""
    inc, cand = _model_suites(eval_dir / incumbent_fp), _model_suites(eval_dir / candidate_fp)
    rows: list[dict[str, Any]] = []
    for suite in sorted(set(inc) | set(cand)):
        if suite not in inc or suite not in cand:
            rows.append({"suite": suite, "metric": None, "note": "evaluated for the "
                         + ("incumbent" if suite in inc else "candidate") + " only: no paired change"})
            continue
        try:
            found = compare_suite(inc[suite], cand[suite], seed=seed, n_resamples=n_resamples, suite_dirs=suite_dirs)
        except HarnessError as exc:  # e.g. different suite versions or data: shown, not hidden
            rows.append({"suite": suite, "metric": None, "note": exc.message})
            continue
        for r in found:
            better, ideal = r.get("higher_is_better"), r.get("ideal")
            change, lo, hi = _finite(r.get("difference")), _finite(r.get("ci_low")), _finite(r.get("ci_high"))
            inc_v, cand_v = _finite(r.get("reference_mean")), _finite(r.get("candidate_mean"))
            row = {"suite": suite, "metric": r["metric"], "n": r.get("n"), "incumbent": inc_v, "candidate": cand_v,
                   "change": change, "ci_low": lo, "ci_high": hi, "test": r.get("test"),
                   "p_value": _finite(r.get("p_value")), "higher_is_better": better, "ideal": ideal}
            if interior_ideal(ideal, better):
                # best in the middle (e.g. 50 % stereotyped): neither direction is better, so no verdict here;
                # the distances say which is closer, and the suite's distance metric judges it with a CI
                row["verdict"] = None
                if inc_v is not None and cand_v is not None:
                    row["distance"] = {"incumbent": abs(inc_v - ideal), "candidate": abs(cand_v - ideal)}
            elif change is None or lo is None or hi is None or (lo <= 0 <= hi):
                row["verdict"] = "no clear change"
            else:
                row["verdict"] = "better" if (lo > 0) == bool(better) else "worse"
            rows.append(row)
    return rows


class _NoHook(Exception):
    """A summary-level metric whose suite hook is not available here: it cannot be recomputed per category."""


def _category_values(records: list[dict[str, Any]], cat: str, name: str, hook: Any) -> tuple[list[dict], Any]:
    rows = [r for r in records if str(r.get("category")) == cat]
    if rows and all(r["metrics"].get(name) is not None for r in rows):
        return rows, None  # a per-sample metric: the mean of the rows
    if hook is None:
        raise _NoHook(name)
    return rows, hook


def _estimate(rows: list[dict[str, Any]], cat: str, name: str, hook: Any) -> float | None:
    if hook is None:
        vals = [r["metrics"][name] for r in rows]
        return sum(vals) / len(vals) if vals else None
    if not rows:
        return None
    value = (hook(rows).get("by_category") or {}).get(cat, {}).get(name)
    return _finite(value.get("estimate") if isinstance(value, dict) else value)


def categories(eval_dir: Path, models: dict[str, str], *, suite_dirs: tuple[Path, ...] = (), n_resamples: int = 400,
               seed: int = 0, min_n: int = MIN_CATEGORY_N) -> dict[str, list[dict[str, Any]]]:
    """Per bias suite: one row per (category, metric) with every model's estimate and 95 % CI side by side
    (``models``: fingerprint -> role; keyed by the model's label, so two unnamed models stay apart), the
    candidate's paired change against the incumbent with its CI, and ``too_few`` when the category has
    fewer than ``min_n`` items."""
    suites = available_suites(tuple(suite_dirs))
    dirs = {fp: _model_suites(eval_dir / fp) for fp in models}
    role_fp = {role: fp for fp, role in models.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    names = sorted({s for d in dirs.values() for s in d if s.startswith("bias/")})
    for suite in names:
        from harness.evaluate import load_summary

        hook = suites[suite].hook(suites[suite].spec.summary) if suite in suites and suites[suite].spec.summary else None
        records = {fp: load_samples(d[suite]) for fp, d in dirs.items() if suite in d}
        cats: dict[tuple[str, str], None] = {}
        for fp, d in dirs.items():
            if suite in d:
                for cat, metrics in (load_summary(d[suite]).get("by_category") or {}).items():
                    for name in metrics:
                        cats[(cat, name)] = None
        rows = []
        for cat, name in sorted(cats):
            row: dict[str, Any] = {"category": cat, "metric": name, "models": {}}
            per_fp = {}
            for fp, recs in records.items():
                try:
                    cat_rows, h = _category_values(recs, cat, name, hook)
                except _NoHook:
                    row["note"] = ("a summary metric of the suite, whose hook is not available here (name its folder "
                                   "in eval.suite_dirs): not recomputed per category")
                    continue
                if h is None and not cat_rows:
                    continue
                per_fp[fp] = (cat_rows, h)
                est = _estimate(cat_rows, cat, name, h)
                if h is None:
                    lo, hi = bootstrap_ci([r["metrics"][name] for r in cat_rows], n_resamples=n_resamples, seed=seed)
                else:
                    lo, hi = resample_statistic(cat_rows, lambda rs, h=h: _estimate(rs, cat, name, h),
                                                n_resamples=n_resamples, seed=seed)
                row["models"][label(models[fp], fp)] = {"estimate": est, "ci_low": _finite(lo), "ci_high": _finite(hi),
                                             "n": len(cat_rows)}
            row["n"] = min((m["n"] for m in row["models"].values()), default=0)
            row["too_few"] = row["n"] < min_n
            inc, cand = role_fp.get("incumbent"), role_fp.get("candidate")
            if inc in per_fp and cand in per_fp:
                row["change"] = _paired_change(per_fp[inc], per_fp[cand], cat, name, n_resamples, seed)
            rows.append(row)
        out[suite] = rows
    return out


def _paired_change(inc: tuple[list[dict], Any], cand: tuple[list[dict], Any], cat: str, name: str,
                   n_resamples: int, seed: int) -> dict[str, Any] | None:
    (a_rows, hook), (b_rows, _) = inc, cand
    by_id = {(r.get("task"), r["doc_id"]): r for r in b_rows}
    pairs = [(r, by_id[(r.get("task"), r["doc_id"])]) for r in a_rows if (r.get("task"), r["doc_id"]) in by_id]
    if not pairs:
        return None
    if hook is None:
        d = paired_difference([p[0]["metrics"][name] for p in pairs], [p[1]["metrics"][name] for p in pairs],
                              n_resamples=n_resamples, seed=seed)
        return {"change": d["difference"], "ci_low": _finite(d["ci_low"]), "ci_high": _finite(d["ci_high"]), "n": d["n"]}

    def diff(ps: list[tuple[dict, dict]]) -> float | None:
        x, y = _estimate([p[0] for p in ps], cat, name, hook), _estimate([p[1] for p in ps], cat, name, hook)
        return None if x is None or y is None else y - x

    lo, hi = resample_statistic(pairs, diff, n_resamples=n_resamples, seed=seed)
    return {"change": diff(pairs), "ci_low": _finite(lo), "ci_high": _finite(hi), "n": len(pairs)}
