"""Active labeling: which review pairs go to reviewers next, under a budget.

With ``feedback.on_policy`` the policy's sampled answers give far more candidate pairs than reviewers
can label. ``feedback.budget`` caps the pairs sent; ``feedback.rounds`` splits it into labeling rounds.
The first round is a seeded random choice (the *seed round*). After each round a small reward-model
ensemble learns from the labels so far and ranks the pairs not yet sent:

- ``random``: no ranking (every round a seeded random choice; the baseline);
- ``uncertainty``: the pairs whose ensemble-mean preference probability is closest to 0.5;
- ``disagreement``: the pairs on which the ensemble members disagree most (spread of their
  probabilities).

A round takes at most two pairs per prompt, so it cannot spend itself on one question. The ensemble
is deliberately light so a round costs seconds, not a training run: each answer is embedded once
with the built-in MiniLM sentence encoder (prompt and answer together, mean-pooled, normalized), and
each member is a Bradley-Terry model (scikit-learn logistic regression on the difference of the two
answers' embeddings, no intercept, both orientations) fitted on its own bootstrap sample of the
labeled pairs. The reward stage still trains the full reward model on every label afterwards.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Sequence

import numpy as np

__all__ = ["STRATEGIES", "Ensemble", "embed", "pair_features", "choose", "per_round", "labeled_xy"]

STRATEGIES = ("random", "uncertainty", "disagreement")
ENCODER = "builtin:minilm-l6"


def per_round(budget: int, rounds: int) -> list[int]:
    """How many pairs each round sends: the budget split evenly, the first rounds taking the remainder."""
    base, extra = divmod(budget, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


def embed(texts: Sequence[str], *, encoder: str = ENCODER, batch_size: int = 64, max_length: int = 256) -> np.ndarray:
    """Mean-pooled, L2-normalized sentence embeddings (one row per text)."""
    import torch

    from harness.models import load_model, load_tokenizer, resolve

    spec = resolve(encoder)
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, task="encoder").eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 384), dtype=np.float32)


def pair_features(emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    """Features of "a is better than b": the difference of the two answers' embeddings."""
    return emb_a - emb_b


class Ensemble:
    """Bradley-Terry members on bootstrap samples of the labeled pairs (see the module docstring)."""

    def __init__(self, members: int = 5, seed: int = 0, c: float = 1.0):
        self.members, self.seed, self.c = members, seed, c
        self.weights: list[np.ndarray] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Ensemble":
        """``x``: pair features (a minus b), ``y``: 1 when a was preferred."""
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(self.seed)
        self.weights = []
        n = len(y)
        for m in range(self.members):
            idx = rng.integers(0, n, n) if self.members > 1 else np.arange(n)
            xs, ys = x[idx], y[idx]
            xx, yy = np.concatenate([xs, -xs]), np.concatenate([ys, 1 - ys])  # both orientations: no side bias
            if len(set(yy.tolist())) < 2:
                continue
            model = LogisticRegression(C=self.c, fit_intercept=False, max_iter=1000)
            model.fit(xx, yy)
            self.weights.append(model.coef_[0])
        return self

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(members, pairs): each member's probability that a beats b."""
        if not self.weights:
            return np.full((1, len(x)), 0.5)
        w = np.stack(self.weights)
        return 1.0 / (1.0 + np.exp(-(x @ w.T).T))

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Pairwise accuracy of the ensemble mean (a probability of exactly 0.5 counts as wrong)."""
        p = self.probabilities(x).mean(0)
        return float(np.mean(np.where(y == 1, p > 0.5, p < 0.5))) if len(y) else float("nan")


def choose(strategy: str, candidates: list[int], k: int, *, prompt_of: Sequence[str], rng: random.Random,
           probabilities: np.ndarray | None = None, per_prompt: int = 2) -> list[int]:
    """``k`` of ``candidates`` (pool indices) by ``strategy``; at most ``per_prompt`` pairs per prompt."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    order = list(candidates)
    rng.shuffle(order)  # random order; also breaks score ties at random
    if strategy != "random" and probabilities is not None and len(order):
        p = probabilities[:, order]
        score = -np.abs(p.mean(0) - 0.5) if strategy == "uncertainty" else p.std(0)
        order = [order[i] for i in np.argsort(-score, kind="stable")]
    picked: list[int] = []
    taken: Counter[str] = Counter()
    for i in order:
        if len(picked) == k:
            break
        if taken[prompt_of[i]] < per_prompt:
            picked.append(i)
            taken[prompt_of[i]] += 1
    for i in order:  # too few prompts left for the cap: fill up anyway
        if len(picked) == k:
            break
        if i not in picked:
            picked.append(i)
    return picked


def labeled_xy(labels: dict[int, float], features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training rows from resolved labels ``{pool index: 1.0 (a won) | 0.0 (b won)}``; ties carry none."""
    idx = [i for i, v in labels.items() if v in (0.0, 1.0)]
    if not idx:
        return np.zeros((0, features.shape[1])), np.zeros(0)
    return features[idx], np.asarray([labels[i] for i in idx])

