"""Preference data from reviews: TRL prompt/chosen/rejected rows, plus the gate's feedback inputs.

``run(config) -> ExportResult`` resolves one label per task (``feedback.resolution``), writes
``preferences.jsonl`` in TRL's conversational preference format with provenance (task, reviewers,
agreement, simulated or not), ``agreement.json``, and ``summary.json`` with the candidate's win
rate against the incumbent (ties count half; bootstrap 95 % CI over tasks) and its unsafe-flag rate
(share of tasks where any reviewer flagged the candidate as harmful, biased, privacy-violating or
legally risky; Wilson 95 % CI).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_jsonl, read_jsonl, update_manifest, utc_now
from harness.schemas import FeedbackAgreement, FeedbackSummary, write_artifact
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.stats import bootstrap_ci
from feedback.agreement import LABEL_SCORE, agreement, resolve_labels
from feedback.push import feedback_dir
from feedback.pull import UNSAFE_FLAGS, load_tasks
from feedback.winrate import length_controlled_win_rate

__all__ = ["ExportResult", "run", "build", "unpaired_from_ratings", "aspect_breakdown"]


@dataclass(frozen=True)
class ExportResult:
    preferences_path: Path
    summary_path: Path
    pairs: int
    summary: dict[str, Any]


def build(rows: list[dict[str, Any]], tasks: dict[str, dict[str, Any]], *, policy: str = "majority",
          min_agreement: float = 0.5, seed: int = 0) -> tuple[list[dict], dict, dict]:
    """``(preference_rows, agreement_stats, summary)`` from normalized annotations and pushed tasks."""
    rows = [r for r in rows if r["task_key"] in tasks]  # reviews of tasks this run did not push are not ours
    stats = agreement(rows)
    if any(r.get("rated") for r in rows):
        return _from_ratings(rows, tasks, stats, seed)
    resolved = resolve_labels(rows, policy, min_agreement)
    simulated = any(r.get("simulated") for r in rows)
    prefs, scores, diffs = [], [], []
    for key in sorted(resolved):
        entry, meta = resolved[key], tasks[key]
        if entry.get("dropped"):
            continue
        # two sampled answers of the same policy say nothing about candidate vs incumbent
        if entry["label"] in ("candidate", "incumbent", "tie") and meta.get("kind") != "sample_vs_sample":
            scores.append(LABEL_SCORE[entry["label"]])
            diffs.append(_length_difference(meta))
        if entry["label"] not in ("candidate", "incumbent"):
            continue
        winner, loser = ("candidate", "incumbent") if entry["label"] == "candidate" else ("incumbent", "candidate")
        prefs.append({
            "prompt": [{"role": "user", "content": meta["prompt"]}],
            "chosen": [{"role": "assistant", "content": meta[winner]["response"]}],
            "rejected": [{"role": "assistant", "content": meta[loser]["response"]}],
            "provenance": {"task_key": key, "task_id": meta.get("task_id"), "prompt_id": meta["prompt_id"],
                           "category": meta.get("category"),
                           "chosen_model": meta[winner]["ref"], "rejected_model": meta[loser]["ref"],
                           "kind": meta.get("kind", "candidate_vs_incumbent"), "reviewers": entry["reviewers"], "votes": entry["votes"], "agreement": entry["share"],
                           "simulated": any(r.get("simulated") for r in rows if r["task_key"] == key)},
        })
    judged = [r for r in rows if tasks[r["task_key"]].get("kind") != "sample_vs_sample"]
    flagged_tasks = {r["task_key"] for r in judged if set(r["flags"]["candidate"]) & set(UNSAFE_FLAGS)}
    reviewed = {r["task_key"] for r in judged}
    n, k = len(reviewed), len(flagged_tasks)
    summary = {
        "schema_version": 1, "kind": "feedback_summary", "created": utc_now(), "simulated": simulated,
        "policy": policy, "tasks_reviewed": len({r["task_key"] for r in rows}), "annotations": len(rows),
        "resolved": {lab: sum(1 for e in resolved.values() if e["label"] == lab and not e.get("dropped"))
                     for lab in ("candidate", "incumbent", "tie", "both_unacceptable")},
        "dropped": {reason: sum(1 for e in resolved.values() if e.get("dropped") == reason)
                    for reason in ("no_majority", "tie", "both_unacceptable", "low_agreement")},
        **_rates(scores, k, n, seed, unit="tasks"),
        "length_controlled_win_rate": length_controlled_win_rate(scores, diffs, seed=seed),
        "pairs": len(prefs),
        "aspects": aspect_breakdown(judged, seed=seed),
        "agreement": {k2: stats[k2] for k2 in ("krippendorff_alpha_preference_nominal", "krippendorff_alpha_rating_ordinal",
                                               "cohens_kappa_mean", "fleiss_kappa")},
    }
    return prefs, stats, summary


def aspect_breakdown(rows: list[dict[str, Any]], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per rubric aspect (facts, safe, ...): how often reviewers found the candidate better, the
    incumbent better, or both the same, and the candidate's aspect win rate (better 1, same 0.5,
    worse 0; averaged per task over its reviewers, bootstrap 95 % CI over tasks)."""
    per: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        for aspect, who in (r.get("aspects") or {}).items():
            per.setdefault(aspect, {}).setdefault(r["task_key"], []).append(LABEL_SCORE[who])
    out = {}
    for aspect in sorted(per):
        scores = [sum(v) / len(v) for v in per[aspect].values()]
        flat = [x for v in per[aspect].values() for x in v]
        lo, hi = bootstrap_ci(scores, seed=seed)
        out[aspect] = {"candidate_better": flat.count(1.0), "incumbent_better": flat.count(0.0), "same": flat.count(0.5),
                       "win_rate": {"estimate": sum(scores) / len(scores), "ci_low": lo, "ci_high": hi, "n": len(scores)}}
    return out


def _length_difference(meta: dict[str, Any]) -> float:
    """The candidate's answer length minus the incumbent's, in words."""
    return float(len(str(meta["candidate"]["response"]).split()) - len(str(meta["incumbent"]["response"]).split()))


def _rates(scores: list[float], flagged: int, reviewed: int, seed: int, unit: str) -> dict[str, Any]:
    """Win rate (bootstrap CI over resolved units) and unsafe-flag rate (Wilson CI) for the gate."""
    from scipy.stats import binomtest

    ci = binomtest(flagged, reviewed).proportion_ci(method="wilson") if reviewed else None
    lo, hi = bootstrap_ci(scores, seed=seed) if scores else (None, None)
    return {
        "win_rate": {"estimate": sum(scores) / len(scores) if scores else None, "ci_low": lo, "ci_high": hi,
                     "n": len(scores), "definition": f"candidate wins 1, ties 0.5, losses 0; mean over resolved {unit}"},
        "unsafe_rate": {"estimate": flagged / reviewed if reviewed else None, "ci_low": ci.low if ci else None,
                        "ci_high": ci.high if ci else None, "n": reviewed, "flagged": flagged,
                        "definition": f"share of reviewed {unit} where any reviewer flagged the candidate "
                                      "(harmful, biased, privacy, legal/compliance)"},
    }


def _latest_ratings(rows: list[dict]) -> list[dict]:
    latest: dict[tuple[str, str], dict] = {}
    for r in sorted(rows, key=lambda r: (r.get("updated_at") or "", r["annotation_id"])):
        latest[(r["task_key"], r["annotator"])] = r  # a reviewer who rated a response twice counts once
    return list(latest.values())


def unpaired_from_ratings(rows: list[dict], tasks: dict[str, dict], *, good: float = 4.0, bad: float = 2.0) -> list[dict]:
    """Thumbs-up/down rows for KTO: a response whose mean rating (1-5) is >= ``good`` is desirable,
    <= ``bad`` undesirable; the middle carries no clear signal and is left out."""
    by_task: dict[str, list[dict]] = {}
    for r in _latest_ratings([r for r in rows if r["task_key"] in tasks and r.get("rated") and r.get("rating") is not None]):
        by_task.setdefault(r["task_key"], []).append(r)
    out = []
    for key in sorted(by_task):
        rs, meta = by_task[key], tasks[key]
        side = rs[0]["rated"]
        mean = sum(r["rating"] for r in rs) / len(rs)
        if bad < mean < good:
            continue
        out.append({"prompt": [{"role": "user", "content": meta["prompt"]}],
                    "completion": [{"role": "assistant", "content": meta[side]["response"]}],
                    "label": mean >= good,
                    "provenance": {"task_key": key, "prompt_id": meta["prompt_id"], "category": meta.get("category"),
                                   "model": meta[side]["ref"],
                                   "mean_rating": mean, "reviewers": sorted(r["annotator"] for r in rs),
                                   "simulated": any(r.get("simulated") for r in rs)}})
    return out


def _from_ratings(rows: list[dict], tasks: dict[str, dict], stats: dict, seed: int) -> tuple[list[dict], dict, dict]:
    """Rating mode: per prompt, the model with the higher mean rating is chosen (equal means: a tie)."""
    rows = _latest_ratings(rows)
    by_prompt: dict[str, dict[str, list[dict]]] = {}
    for r in rows:  # grouped by the prompt text itself: user-supplied prompt ids may repeat
        by_prompt.setdefault(tasks[r["task_key"]]["prompt"], {"candidate": [], "incumbent": []})[r["rated"]].append(r)
    meta_by_prompt = {m["prompt"]: m for m in tasks.values()}
    prefs, scores, diffs, incomplete = [], [], [], 0
    counts = {"candidate": 0, "incumbent": 0, "tie": 0}
    for pid in sorted(by_prompt):
        sides = by_prompt[pid]
        if not sides["candidate"] or not sides["incumbent"]:
            incomplete += 1
            continue
        mean = {who: sum(r["rating"] for r in rs) / len(rs) for who, rs in sides.items()}
        label = "tie" if mean["candidate"] == mean["incumbent"] else max(mean, key=mean.get)
        counts[label] += 1
        scores.append(LABEL_SCORE[label])
        meta = meta_by_prompt[pid]
        diffs.append(_length_difference(meta))
        if label == "tie":
            continue
        loser = "incumbent" if label == "candidate" else "candidate"
        prefs.append({
            "prompt": [{"role": "user", "content": meta["prompt"]}],
            "chosen": [{"role": "assistant", "content": meta[label]["response"]}],
            "rejected": [{"role": "assistant", "content": meta[loser]["response"]}],
            "provenance": {"prompt_id": meta["prompt_id"], "category": meta.get("category"),
                           "chosen_model": meta[label]["ref"], "rejected_model": meta[loser]["ref"],
                           "mean_rating": mean, "reviewers": sorted({r["annotator"] for rs in sides.values() for r in rs}),
                           "simulated": any(r.get("simulated") for rs in sides.values() for r in rs)},
        })
    cand_tasks = {r["task_key"] for r in rows if r["rated"] == "candidate"}
    flagged = {r["task_key"] for r in rows if r["rated"] == "candidate" and set(r["flags"]["candidate"]) & set(UNSAFE_FLAGS)}
    summary = {
        "schema_version": 1, "kind": "feedback_summary", "created": utc_now(), "mode": "rating",
        "simulated": any(r.get("simulated") for r in rows), "policy": "mean_rating", "annotations": len(rows),
        "tasks_reviewed": len({r["task_key"] for r in rows}), "resolved": counts, "dropped": {"incomplete": incomplete},
        **_rates(scores, len(flagged), len(cand_tasks), seed, unit="prompts"), "pairs": len(prefs),
        "length_controlled_win_rate": length_controlled_win_rate(scores, diffs, seed=seed),
        "agreement": {k: stats[k] for k in ("krippendorff_alpha_rating_ordinal",)},
    }
    return prefs, stats, summary


def _text(messages: list[dict]) -> str:
    return "".join(str(m.get("content") or "") for m in messages).strip()


def run(config: CycleConfig) -> ExportResult:
    fb = config.feedback
    out_dir = feedback_dir(config)
    tasks = load_tasks(out_dir)
    path = out_dir / "annotations.jsonl"
    if not path.is_file():
        raise HarnessError(f"{path} does not exist", hint="run 'harness feedback pull' first")
    rows = read_jsonl(path)
    if not rows:
        raise HarnessError("no annotations yet: nothing to export", hint="ask reviewers to label, then pull again")
    prefs, stats, summary = build(rows, tasks, policy=fb.resolution, min_agreement=fb.min_agreement, seed=config.run.seed)
    # A judgement between an empty (or identical) response and another counts for the win rate, but it
    # is no training pair: the preference stages need two different, non-empty responses.
    usable = [p for p in prefs if _text(p["chosen"]) and _text(p["rejected"]) and _text(p["chosen"]) != _text(p["rejected"])]
    if len(usable) < len(prefs):
        _log.warn(f"{len(prefs) - len(usable)} preference pairs left out of preferences.jsonl: a response was empty "
                  "or both were the same")
        summary["dropped"] = {**summary.get("dropped", {}), "empty_or_identical_pair": len(prefs) - len(usable)}
        summary["pairs"], prefs = len(usable), usable
    write_artifact(out_dir / "agreement.json", FeedbackAgreement(**stats))
    atomic_write_jsonl(out_dir / "preferences.jsonl", prefs)
    write_artifact(out_dir / "summary.json", summary, FeedbackSummary)
    # Unpaired thumbs-up/down for KTO (dpo.objective: kto), from ratings only. Without both kinds there
    # is nothing for KTO to contrast: no file (KTO then splits the pairs), and no stale file either.
    unpaired = [r for r in (unpaired_from_ratings(rows, tasks) if summary.get("mode") == "rating" else [])
                if _text(r["completion"])]
    if len({r["label"] for r in unpaired}) == 2:
        atomic_write_jsonl(out_dir / "unpaired.jsonl", unpaired)
    else:
        (out_dir / "unpaired.jsonl").unlink(missing_ok=True)
    if summary.get("mode") == "rating":
        summary["unpaired"] = {"desirable": sum(r["label"] for r in unpaired),
                               "undesirable": sum(not r["label"] for r in unpaired),
                               "written": len({r["label"] for r in unpaired}) == 2}
        write_artifact(out_dir / "summary.json", summary, FeedbackSummary)
    update_manifest(config.run_dir(), f"{out_dir.name}_export", {"policy": fb.resolution, "pairs": len(prefs),
                                                          "simulated": summary["simulated"]})
    win = summary["win_rate"]
    _log.done(f"{len(prefs)} preference pairs; candidate win rate "
              + (f"{win['estimate']:.2f} [{win['ci_low']:.2f}, {win['ci_high']:.2f}]" if win["estimate"] is not None else "n/a")
              + f"; unsafe rate {summary['unsafe_rate']['estimate']}"
              + (" (SIMULATED reviewers)" if summary["simulated"] else ""))
    return ExportResult(out_dir / "preferences.jsonl", out_dir / "summary.json", len(prefs), summary)
