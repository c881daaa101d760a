"""Labeling rounds under a budget (``feedback.rounds`` > 1): the driver around :mod:`feedback.active`.

Each round chooses pairs from the on-policy pool (:func:`feedback.push.candidate_pool`), hands them to
``label`` (push to Label Studio, then the scripted reviewers or people; it returns once they are
labeled, or pauses the cycle), and reads the labels back to rank the next round. Every choice is
seeded and depends only on earlier rounds' labels; ``<feedback>/rounds.json`` records each round's pairs (task
keys), and a resumed run sends exactly those again rather than ranking anew. The report shows the rounds.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness import log as _log
from harness.artifacts import read_jsonl, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.schemas import LabelingRounds, read_artifact, write_artifact
from feedback import active
from feedback.agreement import LABEL_SCORE, resolve_labels
from feedback.push import Pool, candidate_pool, feedback_dir, task_key

__all__ = ["run_rounds", "pool_labels", "pool_features"]


def pool_labels(config: CycleConfig, pool: Pool, sent: list[int]) -> dict[int, float]:
    """Resolved labels of the pairs sent so far: pool index -> 1.0 (its first answer won), 0.0, or 0.5 (tie)."""
    path = feedback_dir(config) / "annotations.jsonl"
    rows = read_jsonl(path) if path.is_file() else []
    resolved = resolve_labels(rows, config.feedback.resolution, config.feedback.min_agreement)
    out = {}
    for i in sent:
        p, a, b, _ = pool.pairs[i]
        entry = resolved.get(task_key(p["prompt"], a, b))
        if entry and not entry.get("dropped") and entry["label"] in LABEL_SCORE:
            out[i] = LABEL_SCORE[entry["label"]]  # push puts a pair's first answer on the "candidate" side
    return out


def pool_features(pool: Pool, encoder: str) -> np.ndarray:
    """One row per pool pair: its first answer's embedding minus its second's (each answer embedded once,
    with its prompt)."""
    texts: dict[tuple[str, str], int] = {}
    for p, a, b, _ in pool.pairs:
        for answer in (a, b):
            texts.setdefault((p["prompt"], answer), len(texts))
    emb = active.embed([f"{q}\n\n{answer}" for q, answer in texts], encoder=encoder)
    return np.stack([active.pair_features(emb[texts[(p["prompt"], a)]], emb[texts[(p["prompt"], b)]])
                     for p, a, b, _ in pool.pairs])


def run_rounds(config: CycleConfig, label: Callable[[Pool, list[int]], Any]) -> Any:
    """Run every round; ``label(pool, indices)`` pushes the pairs of ``pool`` sent so far and returns once
    they are labeled."""
    fb = config.feedback
    pool = candidate_pool(config)
    if not pool.pairs:
        raise HarnessError("the on-policy pool has no review pairs (every sampled answer was empty or the same)",
                           hint="raise feedback.temperature or feedback.max_new_tokens")
    sizes = active.per_round(min(fb.budget or len(pool.pairs), len(pool.pairs)), fb.rounds)
    prompt_of = [p[0]["prompt"] for p in pool.pairs]
    keys = [task_key(p["prompt"], a, b) for p, a, b, _ in pool.pairs]
    index_of = {k: i for i, k in enumerate(keys)}
    earlier = _earlier_rounds(config, sizes, len(pool.pairs), index_of)
    features: np.ndarray | None = None
    sent: list[int] = []
    rounds: list[dict[str, Any]] = []
    result = None
    for r, k in enumerate(sizes, 1):
        if r in earlier:  # a resumed cycle: this round's pairs were chosen (and pushed) before
            entry = earlier[r]
            picked = [index_of[key] for key in entry["task_keys"]]
            _log.info(f"labeling round {r} of {len(sizes)}: the {len(picked)} pairs chosen before")
        else:
            taken = set(sent)
            remaining = [i for i in range(len(pool.pairs)) if i not in taken]
            probs, strategy, labeled = None, "random" if r == 1 else fb.select, 0
            if r > 1 and fb.select != "random":
                if features is None:
                    _log.info(f"embedding {len(pool.pairs)} candidate pairs for the reward-model ensemble")
                    features = pool_features(pool, str(fb.encoder))
                labels = pool_labels(config, pool, sent)
                x, y = active.labeled_xy(labels, features)
                labeled = len(y)
                probs = active.Ensemble(fb.ensemble, seed=config.run.seed + r).fit(x, y).probabilities(features)
            rng = random.Random(f"active:{config.run.seed}:{r}")
            picked = active.choose(strategy, remaining, k, prompt_of=prompt_of, rng=rng, probabilities=probs)
            chosen = probs[:, picked] if probs is not None and picked else None
            entry = {"round": r, "strategy": "random (seed round)" if r == 1 else strategy, "pairs_sent": len(picked),
                     "labeled_pairs_before": labeled, "ensemble_members": fb.ensemble if probs is not None else 0,
                     "picked_mean_p": None if chosen is None else float(np.abs(chosen.mean(0) - 0.5).mean() + 0.5),
                     "picked_member_spread": None if chosen is None else float(chosen.std(0).mean()),
                     "task_keys": [keys[i] for i in picked]}
            _log.info(f"labeling round {r} of {len(sizes)}: {len(picked)} pairs chosen ({entry['strategy']}"
                      f"{f', ensemble of {fb.ensemble} on {labeled} labeled pairs' if probs is not None else ''})")
        rounds.append(entry)
        sent += picked
        _write(config, pool, sizes, rounds)
        result = label(pool, list(sent))
    final = pool_labels(config, pool, sent)
    rounds[-1]["labeled_pairs_after"] = sum(1 for v in final.values() if v in (0.0, 1.0))
    _write(config, pool, sizes, rounds)
    return result


def _earlier_rounds(config: CycleConfig, sizes: list[int], pool_pairs: int,
                    index_of: dict[str, int]) -> dict[int, dict[str, Any]]:
    """The rounds an interrupted run of these settings already chose, by round number: a resumed cycle
    sends exactly those pairs again (nothing twice, nothing labeled lost), even if labels or floating
    point would now rank differently."""
    path = feedback_dir(config) / "rounds.json"
    if not path.is_file():
        return {}
    try:
        record = read_artifact(path, LabelingRounds)
    except HarnessError:
        return {}
    if (record.select, record.planned, record.pool_pairs) != (config.feedback.select, sizes, pool_pairs):
        return {}
    out = {}
    for entry in record.rounds:
        keys = entry.get("task_keys") or []
        if not keys or any(k not in index_of for k in keys):
            break
        out[entry["round"]] = entry
    return out


def _write(config: CycleConfig, pool: Pool, sizes: list[int], rounds: list[dict[str, Any]]) -> Path:
    fb = config.feedback
    path = feedback_dir(config) / "rounds.json"
    write_artifact(path, LabelingRounds(created=utc_now(), select=fb.select, budget=fb.budget or sum(sizes),
                                        pool_pairs=len(pool.pairs), planned=sizes, ensemble=fb.ensemble, rounds=rounds))
    return path
