"""The metrics part of ``harness report diff``: each model role's results in run A and run B, suite by
suite, and the change with its CI (paired on shared documents, else unpaired); see :mod:`reports.diff`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from reports.diff_schema import MetricChange
from reports.evaluation import fingerprint_or_none

__all__ = ["evaluated", "metric_changes", "ROLE_ORDER"]

ROLE_ORDER = ("candidate", "sft_candidate", "incumbent", "base")


def evaluated(run_dir: Path, eval_dir: Path, decision: dict | None, base: str | None,
              read: list[str]) -> dict[tuple[str, str], Path]:
    """(role, suite) -> the folder of that model's results on that suite; ``read`` gets the summaries' paths."""
    from harness.evaluate import load_summary

    roles: dict[str, list[str]] = {}
    if decision:
        for key, role in (("candidate", "candidate"), ("sft_only", "sft_candidate"), ("incumbent", "incumbent")):
            if decision.get(key):
                roles.setdefault(decision[key]["fingerprint"], []).append(role)
    summaries = {path.parent: load_summary(path.parent) for path in sorted(eval_dir.glob("*/*/*/summary.json"))}
    if base:  # by reference as the evaluation recorded it; else by fingerprint (which may need the weights)
        base_fps = {s["model_fingerprint"] for s in summaries.values() if s["model"] == base} or \
            ({fingerprint_or_none(base)} if summaries else set())
        for fp in base_fps - {None}:
            roles.setdefault(fp, []).append("base")
    out: dict[tuple[str, str], Path] = {}
    for folder, summary in summaries.items():
        fp = summary["model_fingerprint"]
        for role in roles.get(fp) or [f"model {fp[:12]}"]:
            out[(role, summary["suite"])] = folder
        if folder.is_relative_to(run_dir):
            read.append(folder.relative_to(run_dir).as_posix() + "/summary.json")
    return out


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _suite_rows(role: str, suite: str, da: Path | None, db: Path | None, suite_dirs: tuple[Path, ...]) -> list[MetricChange]:
    from harness.compare import compare_suite
    from harness.evaluate import load_samples, load_summary
    from harness.stats import unpaired_difference

    sa, sb = (load_summary(d) if d else None for d in (da, db))
    names = list(dict.fromkeys([*(sa or {}).get("metrics", {}), *(sb or {}).get("metrics", {})]))
    same = sa["model_fingerprint"] == sb["model_fingerprint"] if sa and sb else None
    paired: dict[str, dict[str, Any]] = {}
    reason = "per-sample results are missing"
    if sa and sb and (da / "samples.jsonl").is_file() and (db / "samples.jsonl").is_file():
        try:
            paired = {r["metric"]: r for r in compare_suite(da, db, suite_dirs=suite_dirs)}
        except HarnessError as exc:  # other data, suite version or documents: the two estimates stand apart
            reason = exc.message
    rows = []
    for name in names:
        ma, mb = ((s or {}).get("metrics", {}).get(name) for s in (sa, sb))
        hib = (ma or mb or {}).get("higher_is_better")
        common = {"role": role, "suite": suite, "metric": name, "same_model": same, "higher_is_better": hib}
        if ma is None or mb is None:
            rows.append(MetricChange(**common, a=_num((ma or {}).get("estimate")), b=_num((mb or {}).get("estimate")),
                                     change=None, ci_low=None, ci_high=None, n=None, comparison="only in one run",
                                     note=f"evaluated in run {'A' if mb is None else 'B'} only"))
        elif name in paired:
            r = paired[name]
            rows.append(MetricChange(**common, a=_num(r["reference_mean"]), b=_num(r["candidate_mean"]),
                                     change=_num(r["difference"]), ci_low=_num(r["ci_low"]), ci_high=_num(r["ci_high"]),
                                     n=r["n"], comparison="paired", test=r.get("test"),
                                     note=f"paired over {r['n']} documents both runs scored"
                                          + ("; the same model in both runs" if same else "")))
        else:
            va = [s["metrics"].get(name) for s in load_samples(da)] if (da / "samples.jsonl").is_file() else []
            vb = [s["metrics"].get(name) for s in load_samples(db)] if (db / "samples.jsonl").is_file() else []
            if va and vb and None not in va and None not in vb:
                r = unpaired_difference(va, vb)
                no_ci = "" if _num(r["ci_low"]) is not None else ", no CI: a run scored fewer than 2 items"
                rows.append(MetricChange(**common, a=_num(ma.get("estimate")), b=_num(mb.get("estimate")),
                                         change=_num(r["difference"]), ci_low=_num(r["ci_low"]), ci_high=_num(r["ci_high"]),
                                         n=min(r["n_reference"], r["n_candidate"]), comparison="unpaired", test=r["test"],
                                         note=f"unpaired difference of two estimates{no_ci} ({reason})"))
            else:
                ea, eb = _num(ma.get("estimate")), _num(mb.get("estimate"))
                rows.append(MetricChange(**common, a=ea, b=eb, change=None if None in (ea, eb) else eb - ea,
                                         ci_low=None, ci_high=None, n=None, comparison="unpaired",
                                         note=f"unpaired difference of two estimates, no CI ({reason})"))
    return rows


def metric_changes(ea: dict[tuple[str, str], Path], eb: dict[tuple[str, str], Path], suite_dirs: tuple[Path, ...]) -> list[MetricChange]:
    def order(key: tuple[str, str]) -> tuple[int, str, str]:
        return (ROLE_ORDER.index(key[0]) if key[0] in ROLE_ORDER else len(ROLE_ORDER), key[0], key[1])

    rows: list[MetricChange] = []
    for role, suite in sorted(set(ea) | set(eb), key=order):
        rows += _suite_rows(role, suite, ea.get((role, suite)), eb.get((role, suite)), suite_dirs)
    return rows


