"""The table of ``harness sweep``: one row per variant (seeds pooled), effects with CIs, costs, Pareto marks.

Effects are paired differences candidate - base on the same documents (:func:`harness.compare.compare_suite`),
on each suite's headline metric (its first). Over several seeds, a per-sample metric is pooled as the mean
over seeds and documents, with a two-level bootstrap CI (seeds resampled, then documents: the spread between
training seeds is in the interval); a summary-level metric (e.g. a bias score) gets the mean of the seeds'
differences and no pooled CI (each seed's is kept). A row is Pareto-optimal when no other row is at least as
good on all of domain gain (mean over domain suites), retention change (mean over retention suites) and
training time, and better on one (an axis no row has a figure for is left out).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.artifacts import atomic_write_json, atomic_write_text, utc_now
from harness.compare import compare_suite
from harness.evaluate import load_samples
from harness.stats import interior_ideal, oriented

__all__ = ["build_table", "write_table", "pareto", "pareto_axes", "markdown", "GROUPS"]

GROUPS = ("domain", "retention", "bias")


def _group(suite: str) -> str:
    return suite.split("/", 1)[0]


def _pooled(base_dir: Path, cand_dirs: list[Path], metric: str, seed: int,
            n_resamples: int = 2000) -> dict[str, Any] | None:
    """Base vs the seeds' candidates on a per-sample metric (None: not one): the mean over seeds and documents
    of (candidate - base), with a two-level bootstrap CI that resamples seeds, then documents, so the spread
    between training seeds is in the interval, not only the spread between documents."""
    import numpy as np

    base = {(r.get("task"), r["doc_id"]): r for r in load_samples(base_dir)}
    per_seed: list[dict[Any, float]] = []
    for folder in cand_dirs:
        scores = {}
        for r in load_samples(folder):
            value = r["metrics"].get(metric)
            if value is None:
                return None
            scores[(r.get("task"), r["doc_id"])] = float(value)
        per_seed.append(scores)
    keys = [k for k in base if all(k in s for s in per_seed) and base[k]["metrics"].get(metric) is not None]
    if not keys:
        return None
    ref = np.array([float(base[k]["metrics"][metric]) for k in keys])
    diff = np.array([[s[k] for k in keys] for s in per_seed]) - ref  # seeds x documents
    rng = np.random.default_rng(seed)
    k, n = diff.shape
    rows = rng.integers(0, k, size=(n_resamples, k))
    cols = rng.integers(0, n, size=(n_resamples, n))
    means = np.array([diff[rows[b]][:, cols[b]].mean() for b in range(n_resamples)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"n": n, "seeds": k, "reference_mean": float(ref.mean()), "candidate_mean": float((diff + ref).mean()),
            "difference": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi), "p_value": None}


def _effect(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("suite", "metric", "n", "reference_mean", "candidate_mean", "difference", "ci_low", "ci_high",
            "higher_is_better", "ideal", "p_value", "test")
    return {k: row.get(k) for k in keep}


def _signed(effect: dict[str, Any]) -> float | None:
    """The difference oriented so that positive is better (a metric with an interior ideal: None)."""
    d = effect.get("difference")
    if d is None or (isinstance(d, float) and math.isnan(d)):
        return None
    return oriented(d, effect.get("ideal"), effect.get("higher_is_better"))


def _verdict(effect: dict[str, Any]) -> str | None:
    """better / worse (the CI, oriented by the metric's direction, excludes 0) / unclear; None for a metric
    whose ideal lies in the middle (e.g. 50 % stereotype choices), where a change is not better or worse."""
    if interior_ideal(effect.get("ideal"), effect.get("higher_is_better")) or effect.get("higher_is_better") is None:
        return None
    lo, hi = effect.get("ci_low"), effect.get("ci_high")
    if lo is None or hi is None:
        return "unclear"
    if effect["higher_is_better"] is False:
        lo, hi = -hi, -lo
    return "better" if lo > 0 else "worse" if hi < 0 else "unclear"


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
                effect = {**per_seed[0], **pooled, "test": "bootstrap_over_seeds_and_documents"}
            else:  # a summary-level metric: the seeds' mean, no pooled interval (each seed's is in per_seed)
                effect = {**per_seed[0], "difference": _mean([e["difference"] for e in per_seed]),
                          "candidate_mean": _mean([e["candidate_mean"] for e in per_seed]),
                          "ci_low": None, "ci_high": None, "p_value": None, "test": "mean_of_seeds"}
        effect["group"] = _group(suite)
        effect["verdict"] = _verdict(effect)
        effect["per_seed"] = [{"difference": e["difference"], "ci_low": e["ci_low"], "ci_high": e["ci_high"]}
                              for e in per_seed]
        effects.append(effect)
    costs: dict[str, Any] = {}
    for key in records[0]["cost"]:
        values = [r["cost"].get(key) for r in records]
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        same = all(v == values[0] for v in values)  # one seed, or the same count every seed: keep it as it is
        costs[key] = values[0] if same or len(nums) != len(values) or not nums else sum(nums) / len(nums)
    costs["resumed"] = any(r["cost"].get("resumed") for r in records)
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


AXES = (("domain_gain", 1), ("retention_change", 1), ("train_seconds", -1))


def _value(row: dict[str, Any], axis: str) -> float | None:
    return (row.get("cost") or {}).get(axis) if axis == "train_seconds" else row.get(axis)


def pareto_axes(rows: list[dict[str, Any]]) -> list[str]:
    """The axes the rows can be compared on: one no row has a figure for (no retention suite, say) is left out."""
    return [a for a, _ in AXES if any(_value(r, a) is not None for r in rows)]


def pareto(rows: list[dict[str, Any]]) -> list[bool]:
    """Which rows no other row dominates on (domain gain up, retention change up, training seconds down),
    over the axes of :func:`pareto_axes`; a row missing one of those figures is not marked."""
    axes = [(a, sign) for a, sign in AXES if a in pareto_axes(rows)]

    def point(r: dict[str, Any]) -> tuple[float, ...] | None:
        values = [_value(r, a) for a, _ in axes]
        return None if not axes or None in values else tuple(sign * v for (_, sign), v in zip(axes, values))

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
    names = {"domain_gain": "domain gain (up)", "retention_change": "retention change (up)",
             "train_seconds": "training seconds (down)"}
    return {"schema_version": 1, "kind": "sweep", "created": utc_now(),
            "base_model": records[0]["base_model"] if records else None, "rows": rows,
            "pareto_axes": [names[a] for a in pareto_axes(rows)]}


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
        name = r["variant"] + (" (resumed)" if c.get("resumed") else "")
        cells = [name, ",".join(map(str, r["seeds"])), _num(c.get("learning_rate"), "g"), *[_ci(by_suite.get(s)) for s in suites],
                 f"{_num(params, ',.0f')}{share}", _num(c.get("peak_rss_mb"), ".0f"),
                 _num(c.get("train_tokens_per_s"), ".0f"), _num(c.get("train_seconds"), ".0f"),
                 _num(None if c.get("adapter_bytes") is None else c["adapter_bytes"] / 2**20, ".2f"),
                 _num(lat.get("tokens_per_s_ratio"), ".2f"), "yes" if r.get("pareto") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    notes = ["", "Effects: candidate - base on the same documents, each suite's headline metric, 95 % CI "
                 "(over documents; several seeds: resampling seeds, then documents). Pareto: not dominated on "
                 + ", ".join(table.get("pareto_axes") or []) + ". Generation speed: batched greedy, unmerged, "
                 "measured beside the base model in the same process. (resumed): training was killed and resumed, "
                 "so its time and speed cover the part after the restart only."]
    return "\n".join(lines + notes) + "\n"


def write_table(table: dict[str, Any], folder: Path) -> None:
    atomic_write_json(Path(folder) / "sweep.json", table)
    atomic_write_text(Path(folder) / "sweep.md", markdown(table))
