"""The length-controlled win rate separates 'better answers' from 'longer answers'."""

from __future__ import annotations

import random

from feedback.winrate import length_controlled_win_rate


def test_wins_that_come_only_from_length_vanish_at_equal_length():
    rng = random.Random(0)
    diffs = [rng.gauss(10, 8) for _ in range(60)]  # the candidate usually answers longer...
    scores = [1.0 if d > 4 else 0.0 for d in diffs]  # ...and wins exactly when it is clearly longer
    raw = sum(scores) / len(scores)
    lc = length_controlled_win_rate(scores, diffs, n_resamples=200)
    assert raw > 0.65 and lc["estimate"] < 0.3 and lc["ci_high"] < raw
    assert lc["length_coefficient"] > 1 and lc["mean_length_difference"] > 5


def test_wins_unrelated_to_length_keep_their_rate():
    rng = random.Random(1)
    diffs = [rng.gauss(0, 8) for _ in range(80)]
    scores = [1.0 if rng.random() < 0.7 else 0.5 if rng.random() < 0.3 else 0.0 for _ in diffs]
    raw = sum(scores) / len(scores)
    lc = length_controlled_win_rate(scores, diffs, n_resamples=200, seed=3)
    assert abs(lc["estimate"] - raw) < 0.06 and lc["ci_low"] < lc["estimate"] < lc["ci_high"]


def test_too_few_judgements_give_no_estimate():
    assert length_controlled_win_rate([1.0], [3.0])["estimate"] is None
