"""On-policy review pairs: several sampled answers of the policy per training prompt, paired with each
other and with the incumbent's answer, so reviewers judge the answers the policy actually gives.

``feedback.on_policy: true`` turns it on for the first review round (training prompts only; the final
review stays one answer per model). ``feedback.samples`` answers per prompt are drawn at
``feedback.temperature`` (seeded, cached by model fingerprint), identical or empty answers are dropped,
and the pairs are every two distinct samples (``sample_vs_sample``) plus every sample against the
incumbent (``sample_vs_incumbent``). ``feedback.budget`` caps the pairs sent to reviewers (a seeded
random choice); only ``sample_vs_incumbent`` pairs count for the win rate.
"""

from __future__ import annotations

import random
import re
from itertools import combinations
from typing import Any

from harness.errors import HarnessError

__all__ = ["OnPolicyPair", "on_policy_pairs", "within_budget", "max_pairs", "check_budget"]

_WS = re.compile(r"\s+")

OnPolicyPair = tuple[dict[str, Any], str, str, str]  # (prompt row, response a, response b, kind)


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def max_pairs(prompts: int, samples: int) -> int:
    """The most pairs ``prompts`` prompts can give: every two samples, and every sample vs the incumbent."""
    return prompts * (samples * (samples - 1) // 2 + samples)


def check_budget(budget: int | None, prompts: int, samples: int) -> None:
    """A budget no set of answers could fill is a configuration error (said before any model loads)."""
    if budget is not None and budget > max_pairs(prompts, samples):
        raise HarnessError(
            f"feedback.budget is {budget} review pairs, but {prompts} training prompts with {samples} samples each "
            f"give at most {max_pairs(prompts, samples)}",
            hint="lower feedback.budget, or raise feedback.samples, or add review prompts")


def on_policy_pairs(prompts: list[dict[str, Any]], samples: list[list[str]], incumbent: list[str], *,
                    budget: int | None, seed: int) -> tuple[list[OnPolicyPair], dict[str, int]]:
    """The review pairs and what was dropped: (pairs, counts)."""
    pairs: list[OnPolicyPair] = []
    counts = {"samples": 0, "duplicate_or_empty_samples": 0}
    for row, drawn, inc in zip(prompts, samples, incumbent):
        unique: list[str] = []
        seen: set[str] = set()
        for text in drawn:
            counts["samples"] += 1
            if not _norm(text) or _norm(text) in seen:
                counts["duplicate_or_empty_samples"] += 1
                continue
            seen.add(_norm(text))
            unique.append(text)
        pairs += [(row, a, b, "sample_vs_sample") for a, b in combinations(unique, 2)]
        pairs += [(row, a, inc, "sample_vs_incumbent") for a in unique if _norm(a) != _norm(inc) and _norm(inc)]
    counts["pairs_available"] = len(pairs)
    pairs = within_budget(pairs, budget, seed)
    counts["pairs_sent"] = len(pairs)
    return pairs, counts


def within_budget(pairs: list[OnPolicyPair], budget: int | None, seed: int) -> list[OnPolicyPair]:
    """At most ``budget`` of ``pairs``: a seeded random choice, in their original order."""
    if budget is None or len(pairs) <= budget:
        return list(pairs)
    chosen = set(random.Random(f"on-policy:{seed}").sample(range(len(pairs)), budget))
    return [p for i, p in enumerate(pairs) if i in chosen]
