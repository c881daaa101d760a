"""The table of ``harness sweep``: one row per variant (seeds pooled), effects with CIs, costs, Pareto marks.

Effects are paired differences candidate - base on the same documents (:func:`harness.compare.compare_suite`),
on each suite's headline metric (its first). Over several seeds, a per-sample metric is pooled by averaging
each document's score over the seeds' candidates and taking the paired difference with the base over
documents (the CI resamples documents); a summary-level metric (e.g. a bias score) gets the mean of the
seeds' differences and no pooled CI. A row is Pareto-optimal when no other row is at least as good on all
three of domain gain (mean over domain suites), retention change (mean over retention suites) and
training time, and better on one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.artifacts import atomic_write_json, atomic_write_text, utc_now
from harness.compare import compare_suite
from harness.evaluate import load_samples
from harness.stats import paired_difference

__all__ = ["build_table", "write_table", "pareto", "markdown", "GROUPS"]

GROUPS = ("domain", "retention", "bias")


def _group(suite: str) -> str:
    return suite.split("/", 1)[0]


def _pooled(base_dir: Path, cand_dirs: list[Path], metric: str, seed: int) -> dict[str, Any] | None:
    """Paired difference over documents of base vs the seeds' mean score (None: not a per-sample metric)."""
    base = {(r.get("task"), r["doc_id"]): r for r in load_samples(base_dir)}
    per_doc: dict[Any, list[float]] = {}
    for folder in cand_dirs:
        for r in load_samples(folder):
            value = r["metrics"].get(metric)
            if value is None:
                return None
            per_doc.setdefault((r.get("task"), r["doc_id"]), []).append(float(value))
    keys = [k for k in base if k in per_doc and len(per_doc[k]) == len(cand_dirs)
            and base[k]["metrics"].get(metric) is not None]
    if not keys:
        return None
    return paired_difference([float(base[k]["metrics"][metric]) for k in keys],
                             [sum(per_doc[k]) / len(per_doc[k]) for k in keys], seed=seed)


def _effect(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("suite", "metric", "n", "reference_mean", "candidate_mean", "difference", "ci_low", "ci_high",
            "higher_is_better", "ideal", "p_value", "test")
    return {k: row.get(k) for k in keep}


def _signed(effect: dict[str, Any]) -> float | None:
    """The difference oriented so that positive is better (a metric with an interior ideal: None)."""
    d = effect.get("difference")
    if d is None or (isinstance(d, float) and math.isnan(d)) or effect.get("ideal") is not None:
        return None
    return -d if effect.get("higher_is_better") is False else d


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _row(group: str, records: list[dict[str, Any]], seed: int, suite_dirs: tuple[Path, ...]) -> dict[str, Any]:
    effects: list[dict[str, Any]] = []
    suites = sorted(set.intersection(*[set(r["suites"]) for r in records]))
    for suite in suites:
        per_seed = []
        for r in records:
            dirs = r["suites"][suite]
            if "base" in dirs and "candidate" in dirs:
                rows = compare_suite(Path(dirs["base"]), Path(dirs["candidate"]), seed=seed, suite_dirs=suite_dirs)
                per_seed.append(_effect(rows[0]))
        if not per_seed:
            continue
        if len(per_seed) == 1:
            effect = per_seed[0]
        else:
            metric = per_seed[0]["metric"]
            pooled = _pooled(Path(records[0]["suites"][suite]["base"]),
                             [Path(r["suites"][suite]["candidate"]) for r in records], metric, seed)
            if pooled is not None:
                effect = {**per_seed[0], **{k: pooled.get(k) for k in ("n", "reference_mean", "candidate_mean",
                                                                       "difference", "ci_low", "ci_high", "p_value")},
                          "test": "paired_bootstrap_seed_mean"}
            else:
                effect = {**per_seed[0], "difference": _mean([e["difference"] for e in per_seed]),
                          "candidate_mean": _mean([e["candidate_mean"] for e in per_seed]),
                          "ci_low": None, "ci_high": None, "test": "mean_of_seeds"}
        effect["group"] = _group(suite)
        effect["per_seed"] = [{"difference": e["difference"], "ci_low": e["ci_low"], "ci_high": e["ci_high"]}
                              for e in per_seed]
        effects.append(effect)
    costs: dict[str, Any] = {}
    for key in records[0]["cost"]:
        values = [r["cost"].get(key) for r in records]
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        costs[key] = (sum(nums) / len(nums)) if len(nums) == len(values) and nums else values[0]
    latency = [r["latency"] for r in records if r.get("latency")]
    lat = None
    if latency:
        lat = {k: _mean([x[k] for x in latency]) for k in ("tokens_per_s_ratio", "ttft_ratio")}
        lat["candidate_tokens_per_s"] = _mean([x["candidate"]["tokens_per_s"] for x in latency])
        lat["base_tokens_per_s"] = _mean([x["base"]["tokens_per_s"] for x in latency])
    first = records[0]
    return {
        "variant": group, "method": first["method"], "grid": first["variant"].get("grid") or [],
        "seeds": [r["variant"]["seed"] for r in records], "variants": [r["variant"]["name"] for r in records],
        "effects": effects,
        "domain_gain": _mean([_signed(e) for e in effects if e["group"] == "domain"]),
        "retention_change": _mean([_signed(e) for e in effects if e["group"] == "retention"]),
        "cost": costs, "latency": lat,
    }


def pareto(rows: list[dict[str, Any]]) -> list[bool]:
    """Which rows no other row dominates on (domain gain up, retention change up, training seconds down)."""
    def point(r: dict[str, Any]) -> tuple[float, float, float] | None:
        g, k, t = r.get("domain_gain"), r.get("retention_change"), (r.get("cost") or {}).get("train_seconds")
        return None if None in (g, k, t) else (g, k, -t)

    pts = [point(r) for r in rows]
    out = []
    for i, p in enumerate(pts):
        if p is None:
            out.append(False)
            continue
        dominated = any(q is not None and j != i and all(a >= b for a, b in zip(q, p)) and q != p
                        for j, q in enumerate(pts))
        out.append(not dominated)
    return out


def build_table(records: list[dict[str, Any]], *, seed: int = 0, suite_dirs: tuple[Path, ...] = ()) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["variant"]["group"], []).append(r)
    rows = [_row(g, recs, seed, suite_dirs) for g, recs in groups.items()]
    for row, optimal in zip(rows, pareto(rows)):
        row["pareto"] = optimal
    return {"schema_version": 1, "kind": "sweep", "created": utc_now(),
            "base_model": records[0]["base_model"] if records else None, "rows": rows,
            "pareto_axes": ["domain_gain (up)", "retention_change (up)", "cost.train_seconds (down)"]}


def _ci(e: dict[str, Any] | None) -> str:
    if e is None or e.get("difference") is None:
        return "n/a"
    text = f"{e['difference']:+.3f}"
    if e.get("ci_low") is not None and e.get("ci_high") is not None:
        text += f" [{e['ci_low']:+.3f}, {e['ci_high']:+.3f}]"
    return text


def _num(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(table: dict[str, Any]) -> str:
    rows = table["rows"]
    suites = list(dict.fromkeys(e["suite"] for r in rows for e in r["effects"]))
    head = ["variant", "seeds", "lr", *[f"{s} ({next(e['metric'] for r in rows for e in r['effects'] if e['suite'] == s)})"
                                  for s in suites],
            "trainable params", "peak RSS MB", "train tok/s", "train s", "adapter MB", "gen tok/s vs base", "Pareto"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        by_suite = {e["suite"]: e for e in r["effects"]}
        c, lat = r["cost"], r.get("latency") or {}
        params = c.get("trainable_parameters")
        share = (f" ({100 * params / c['total_parameters']:.2g} %)"
                 if params is not None and c.get("total_parameters") else "")
        cells = [r["variant"], ",".join(map(str, r["seeds"])), _num(c.get("learning_rate"), "g"), *[_ci(by_suite.get(s)) for s in suites],
                 f"{_num(params, ',.0f')}{share}", _num(c.get("peak_rss_mb"), ".0f"),
                 _num(c.get("train_tokens_per_s"), ".0f"), _num(c.get("train_seconds"), ".0f"),
                 _num(None if c.get("adapter_bytes") is None else c["adapter_bytes"] / 2**20, ".2f"),
                 _num(lat.get("tokens_per_s_ratio"), ".2f"), "yes" if r.get("pareto") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    notes = ["", "Effects: candidate - base on the same documents, each suite's headline metric, 95 % CI "
                 "(over documents; several seeds: each document's mean over seeds). Pareto: not dominated on mean "
                 "domain gain, mean retention change and training seconds. Generation speed: batched greedy, "
                 "unmerged, measured beside the base model in the same process."]
    return "\n".join(lines + notes) + "\n"


def write_table(table: dict[str, Any], folder: Path) -> None:
    atomic_write_json(Path(folder) / "sweep.json", table)
    atomic_write_text(Path(folder) / "sweep.md", markdown(table))
