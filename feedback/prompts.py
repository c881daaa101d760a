"""Review prompts, split once into *training* prompts (their labels train reward, DPO and online RL)
and *held-out* prompts (only the final review sees them), so the final review measures the preference
stages on prompts they never trained on.

The split is seeded (``run.seed``), stratified by ``category`` (safety-sensitive prompts land on both
sides), and made over *normalized* prompt texts (case, whitespace and punctuation ignored): the same
question never appears on both sides. With ``feedback.heldout_prompts`` the held-out prompts come from
that file instead, and any prompt found in both files is an error. Either way the result is checked,
not assumed, and recorded in ``<run>/prompts/split.json`` (the audit report shows it).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.artifacts import sha256_file, utc_now
from harness.errors import HarnessError
from harness.schemas import PromptSplit, write_artifact

__all__ = ["Split", "normalize", "split_prompts", "prompts_for", "write_split"]

_PUNCT = re.compile(r"[^\w\s]")
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The form two prompts are compared in: lower case, punctuation dropped, whitespace collapsed."""
    return _WS.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


@dataclass(frozen=True)
class Split:
    training: list[dict[str, Any]]
    heldout: list[dict[str, Any]]
    record: PromptSplit

    def side(self, which: str) -> list[dict[str, Any]]:
        """The ``training`` or ``heldout`` prompts; an empty held-out side is an error (the final review needs it)."""
        chosen = self.training if which == "training" else self.heldout
        if not chosen:
            raise HarnessError("the held-out review split is empty: the final review has no prompts to judge",
                               where=self.record.source["path"],
                               hint="set feedback.heldout_fraction above 0 (e.g. 0.3), or feedback.heldout_prompts to a file")
        return chosen


def _overlap(training: list[dict], heldout: list[dict]) -> list[str]:
    seen = {normalize(p["prompt"]) for p in training}
    return [p["prompt"] for p in heldout if normalize(p["prompt"]) in seen]


def _decontaminate(config: Any, training: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Training prompts holding an evaluation item (harness.decontam) are left out, or refused with
    data.decontaminate: fail; their labels would otherwise teach the preference stages a test item."""
    from harness.decontam import index_for, refusal

    index = index_for(config)
    if index is None:
        return training, []
    kept, found = index.partition(training, lambda r: [r["prompt"]])
    if found and config.data.decontaminate == "fail":
        raise refusal([(str(r["id"]), why) for r, why in found], "training review prompt(s)",
                      where=str(config.feedback.prompts),
                      hint="remove them, or set data.decontaminate: drop to leave them out and count them")
    return kept, [{"id": str(r["id"]), "why": why} for r, why in found]


def split_prompts(config: Any) -> Split:
    """The training and held-out review prompts of this run (see the module docstring)."""
    from feedback.push import read_prompts

    fb, seed = config.feedback, config.run.seed
    rows = read_prompts(fb.prompts, fb.limit)
    if fb.heldout_prompts is not None:
        training, heldout = rows, read_prompts(fb.heldout_prompts)
        method = f"held-out prompts from {fb.heldout_prompts}"
    else:
        groups: dict[str, list[dict]] = {}
        for row in rows:  # one group per normalized text: a repeated question stays on one side
            groups.setdefault(normalize(row["prompt"]), []).append(row)
        by_category: dict[str, list[str]] = defaultdict(list)
        for key, members in groups.items():
            by_category[str(members[0].get("category") or "uncategorized")].append(key)
        rng = random.Random(f"prompt-split:{seed}")
        held: set[str] = set()
        for category in sorted(by_category):
            keys = sorted(by_category[category])
            rng.shuffle(keys)
            k = round(len(keys) * fb.heldout_fraction)
            if fb.heldout_fraction > 0 and len(keys) >= 2:
                k = min(max(k, 1), len(keys) - 1)  # every category on both sides when it can be
            held.update(keys[:k])
        training = [r for r in rows if normalize(r["prompt"]) not in held]
        heldout = [r for r in rows if normalize(r["prompt"]) in held]
        method = f"seeded split (seed {seed}), {fb.heldout_fraction:g} of each category held out"
    training, contaminated = _decontaminate(config, training)
    both = _overlap(training, heldout)
    if both:
        shown = "; ".join(repr(p[:60]) for p in both[:3])
        raise HarnessError(f"{len(both)} review prompt(s) are both training and held-out prompts: {shown}",
                           where=str(fb.heldout_prompts or fb.prompts),
                           hint="remove them from one of feedback.prompts / feedback.heldout_prompts: the final "
                                "review must not judge prompts the preference stages trained on")
    if not training:
        raise HarnessError("no training review prompts are left after the held-out split",
                           where=str(fb.prompts), hint="add prompts, or lower feedback.heldout_fraction")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"training": 0, "heldout": 0})
    for side, items in (("training", training), ("heldout", heldout)):
        for r in items:
            counts[str(r.get("category") or "uncategorized")][side] += 1
    record = PromptSplit(
        created=utc_now(), seed=seed, method=method, heldout_fraction=fb.heldout_fraction,
        source={"path": str(fb.prompts), "sha256": sha256_file(fb.prompts)},
        heldout_source=({"path": str(fb.heldout_prompts), "sha256": sha256_file(fb.heldout_prompts)}
                        if fb.heldout_prompts is not None else None),
        training=[str(r["id"]) for r in training], heldout=[str(r["id"]) for r in heldout],
        by_category=dict(sorted(counts.items())), overlap_checked=True, contaminated=contaminated)
    return Split(training, heldout, record)


def prompts_for(config: Any, which: str) -> list[dict[str, Any]]:
    """The prompts of one side (``training``, ``heldout``) or ``all`` of them."""
    if which == "all":
        from feedback.push import read_prompts

        return read_prompts(config.feedback.prompts, config.feedback.limit)
    return split_prompts(config).side(which)


def write_split(config: Any, split: Split | None = None) -> Path:
    """Record this run's split (computed here unless given) in ``<run>/prompts/split.json``."""
    path = config.layout().prompt_split
    write_artifact(path, (split or split_prompts(config)).record)
    return path
