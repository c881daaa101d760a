"""Active labeling: the ensemble, the selection strategies, the round sizes and the config checks."""

import random

import numpy as np
import pytest

from feedback.active import Ensemble, choose, labeled_xy, per_round
from harness.config import load_config
from harness.errors import HarnessError


def _separable(n=200, d=8, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    x = rng.normal(size=(n, d))
    return x, (x @ w > 0).astype(float), w


def test_the_ensemble_learns_a_bradley_terry_preference_and_has_no_side_bias():
    x, y, _ = _separable()
    ens = Ensemble(members=5, seed=1).fit(x[:150], y[:150])
    assert len(ens.weights) == 5
    assert ens.accuracy(x[150:], y[150:]) > 0.85
    p = ens.probabilities(x[150:]).mean(0)
    q = ens.probabilities(-x[150:]).mean(0)  # the same pairs with the sides swapped
    assert np.allclose(p + q, 1.0)


def test_bootstrap_members_differ_and_an_empty_ensemble_is_undecided():
    x, y, _ = _separable(n=40)
    ens = Ensemble(members=4, seed=0).fit(x, y)
    assert not np.allclose(ens.weights[0], ens.weights[1])
    assert np.all(Ensemble().probabilities(x) == 0.5)


def test_uncertainty_picks_pairs_nearest_even_odds_and_disagreement_the_widest_spread():
    # pairs 0..5; members agree on 0-2 (confident, unsure, confident); disagree strongly on 3
    probs = np.array([[0.95, 0.52, 0.10, 0.15, 0.70, 0.60],
                      [0.93, 0.49, 0.12, 0.99, 0.72, 0.40]])
    prompts = [f"q{i}" for i in range(6)]
    unsure = choose("uncertainty", list(range(6)), 2, prompt_of=prompts, rng=random.Random(0), probabilities=probs)
    assert unsure == [5, 1]  # means 0.50 and 0.505; pair 3's mean is 0.57 however much its members differ
    split = choose("disagreement", list(range(6)), 1, prompt_of=prompts, rng=random.Random(0), probabilities=probs)
    assert split == [3]
    rnd = choose("random", list(range(6)), 3, prompt_of=prompts, rng=random.Random(0), probabilities=probs)
    assert len(set(rnd)) == 3


def test_a_round_takes_at_most_two_pairs_per_prompt_while_others_remain():
    prompts = ["a"] * 6 + ["b", "c"]
    picked = choose("random", list(range(8)), 4, prompt_of=prompts, rng=random.Random(3))
    assert sum(1 for i in picked if prompts[i] == "a") == 2
    assert len(choose("random", list(range(8)), 7, prompt_of=prompts, rng=random.Random(3))) == 7  # filled up


def test_round_sizes_and_ties_carry_no_training_label():
    assert per_round(10, 3) == [4, 3, 3] and sum(per_round(7, 7)) == 7
    x, y = labeled_xy({0: 1.0, 1: 0.5, 2: 0.0}, np.eye(3))
    assert y.tolist() == [1.0, 0.0] and x.shape == (2, 3)


@pytest.mark.parametrize("overrides, message", [
    (["feedback.select=uncertainty"], "feedback.on_policy: true and feedback.budget"),
    (["feedback.on_policy=true", "feedback.budget=50", "feedback.select=disagreement"], "set feedback.rounds to 2"),
    (["feedback.on_policy=true", "feedback.rounds=3"], "feedback.on_policy: true and feedback.budget"),
    (["feedback.on_policy=true", "feedback.budget=2", "feedback.rounds=3"], "smaller than feedback.rounds"),
])
def test_bad_active_labeling_settings_are_refused(overrides, message):
    with pytest.raises(HarnessError, match=message):
        load_config(None, overrides)
