"""Paired comparison of two models' evaluation results (the gate's inputs).

Both sides must come from the same suite version and the same data (hash); samples are paired by
document id and checked to be the same documents. Per-sample metrics get the paired difference with
a bootstrap CI, McNemar's exact test (binary) or Wilcoxon (continuous), and an effect size.
Summary-level metrics (e.g. bias scores) get the difference of estimates with a paired bootstrap CI
over documents; those the summary hook reports per unit of several documents (``units``: e.g. one
value per fact asked several ways) get the paired difference over units, as per-sample metrics do.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


from harness.artifacts import ARTIFACT_VERSION, atomic_write_json, utc_now
from harness.errors import HarnessError
from harness.evaluate import load_samples, load_summary
from harness.stats import paired_difference, resample_statistic
from harness.suites import available_suites

__all__ = ["compare_dirs", "compare_suite", "model_suite_dirs"]


def model_suite_dirs(root: Path) -> dict[str, Path]:
    root = Path(root)
    if (root / "summary.json").is_file():
        return {load_summary(root)["suite"]: root}
    found = {load_summary(p.parent)["suite"]: p.parent for p in sorted(root.glob("*/*/summary.json"))}
    if not found:
        raise HarnessError(f"{root} holds no evaluation results",
                           hint="pass <run>/eval/<model-fingerprint> or one of its <group>/<suite> folders")
    return found


def _pair(ref: list[dict], cand: list[dict], suite: str) -> tuple[list[dict], list[dict]]:
    by_id = {(r.get("task"), r["doc_id"]): r for r in cand}
    pairs = []
    for r in ref:
        c = by_id.get((r.get("task"), r["doc_id"]))
        if c is None:
            continue
        if r.get("doc_hash") and c.get("doc_hash") and r["doc_hash"] != c["doc_hash"]:
            raise HarnessError(f"{suite}: document {r['doc_id']} differs between the two results",
                               hint="compare results produced from the same data")
        pairs.append((r, c))
    if not pairs:
        raise HarnessError(f"{suite}: the two results share no documents", hint="score both with the same --limit")
    return [p[0] for p in pairs], [p[1] for p in pairs]


def compare_suite(ref_dir: Path, cand_dir: Path, *, seed: int = 0, n_resamples: int = 2000,
                  suite_dirs: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    ref_sum, cand_sum = load_summary(ref_dir), load_summary(cand_dir)
    suite = ref_sum["suite"]
    if cand_sum["suite"] != suite:
        raise HarnessError(f"cannot compare results of different suites ({suite} vs {cand_sum['suite']})")
    if ref_sum["suite_version"] != cand_sum["suite_version"]:
        raise HarnessError(
            f"{suite}: results come from different suite versions ({ref_sum['suite_version']} vs {cand_sum['suite_version']})",
            hint="re-score both models with the same suite version",
        )
    if ref_sum["data_hash"] != cand_sum["data_hash"]:
        raise HarnessError(f"{suite}: results come from different data (data hashes differ)",
                           hint="re-score both models on the same data")
    ref, cand = _pair(load_samples(ref_dir), load_samples(cand_dir), suite)
    rows = []
    for name, meta in ref_sum["metrics"].items():
        base = {"suite": suite, "metric": name, "higher_is_better": meta.get("higher_is_better"),
                "ideal": meta.get("ideal"), "suite_version": ref_sum["suite_version"], "data_hash": ref_sum["data_hash"]}
        if all(name in r["metrics"] for r in ref) and all(name in c["metrics"] for c in cand):
            a = [r["metrics"][name] for r in ref]
            b = [c["metrics"][name] for c in cand]
            keep = [i for i in range(len(a)) if a[i] is not None and b[i] is not None]
            stats = paired_difference([a[i] for i in keep], [b[i] for i in keep], seed=seed, n_resamples=n_resamples)
            rows.append({**base, **stats})
        else:  # summary-level metric: recompute the suite's summary hook on paired resamples
            suites = available_suites(suite_dirs)
            if suite not in suites or not suites[suite].spec.summary:
                raise HarnessError(f"{suite}: the summary metric '{name}' needs the suite's hooks to be compared",
                                   hint="name the folder of your own suites in eval.suite_dirs (harness eval compare --config FILE ...)")
            hook = suites[suite].hook(suites[suite].spec.summary)
            ref_summary, cand_summary = hook(ref), hook(cand)
            ref_est = ref_summary["metrics"].get(name)
            cand_est = cand_summary["metrics"].get(name)
            ref_units = (ref_summary.get("units") or {}).get(name)
            cand_units = (cand_summary.get("units") or {}).get(name)
            if ref_units is not None and cand_units is not None:  # a mean over units (e.g. facts): paired by unit
                keys = sorted(set(ref_units) & set(cand_units))
                stats = paired_difference([ref_units[k] for k in keys], [cand_units[k] for k in keys],
                                          seed=seed, n_resamples=n_resamples)
                rows.append({**base, **stats, "unit": "group"})
                continue
            def difference(pairs: list[tuple[dict, dict]]) -> float | None:
                x = hook([p[0] for p in pairs])["metrics"].get(name)
                y = hook([p[1] for p in pairs])["metrics"].get(name)
                return None if x is None or y is None else y - x

            # paired: each resample draws the same documents for both models
            lo, hi = resample_statistic(list(zip(ref, cand)), difference, n_resamples=max(200, n_resamples // 4), seed=seed)
            rows.append({**base, "n": len(ref), "reference_mean": ref_est, "candidate_mean": cand_est,
                         "difference": (cand_est - ref_est) if None not in (ref_est, cand_est) else math.nan,
                         "ci_low": lo, "ci_high": hi, "level": 0.95, "test": "paired_bootstrap"})
    return rows


def compare_dirs(reference: Path, candidate: Path, output: Path | None = None,
                 suite_dirs: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Path]:
    ref_dirs, cand_dirs = model_suite_dirs(reference), model_suite_dirs(candidate)
    common = sorted(set(ref_dirs) & set(cand_dirs))
    if not common:
        raise HarnessError("the two results have no suite in common",
                           hint=f"reference has {', '.join(ref_dirs)}; candidate has {', '.join(cand_dirs)}")
    rows = []
    for suite in common:
        rows += compare_suite(ref_dirs[suite], cand_dirs[suite], suite_dirs=tuple(suite_dirs))
    first_ref, first_cand = load_summary(ref_dirs[common[0]]), load_summary(cand_dirs[common[0]])
    comparison = {
        "schema_version": ARTIFACT_VERSION, "kind": "comparison", "created": utc_now(),
        "reference": {"path": str(reference), "model": first_ref["model"], "fingerprint": first_ref["model_fingerprint"]},
        "candidate": {"path": str(candidate), "model": first_cand["model"], "fingerprint": first_cand["model_fingerprint"]},
        "suites": common, "rows": rows,
    }
    if output is None:
        output = Path(candidate) / f"comparison_vs_{first_ref['model_fingerprint']}.json"
    atomic_write_json(output, comparison)
    return comparison, Path(output)
