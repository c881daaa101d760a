"""The reward model's trust report: accuracy against baselines, calibration, length correlation; online RL
refuses an untrusted reward model unless told otherwise (and records it)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from harness.errors import HarnessError
from rlhf.online import reward_model_check
from rlhf.reward_quality import quality_report


def _pairs(n, seed=0):
    """Chosen answers are correct facts; which side is longer, and which repeats a word of the question,
    are coin flips (neither length nor word overlap carries the signal)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        good, bad = "forty hours roll over", "you lose all"
        if rng.random() < 0.5:
            good += " into january always"
        else:
            bad += " of them at new year"
        if rng.random() < 0.5:
            good += " vacation"
        else:
            bad += " vacation"
        out.append({"prompt": [{"role": "user", "content": "what happens to unused vacation?"}],
                    "chosen": [{"role": "assistant", "content": good}], "rejected": [{"role": "assistant", "content": bad}]})
    return out


def _words(p, side):
    return len(p[side][0]["content"].split())


def test_a_reward_model_that_knows_the_facts_is_trusted():
    pairs = _pairs(80)
    report = quality_report(pairs, [2.0] * 80, [-2.0] * 80, seed=1)
    assert report["reward_model"]["accuracy"] == 1.0 and report["n"] == 80
    length = report["baselines"]["length_only"]
    assert 0.3 < length["accuracy"] < 0.7 and length["ci_low"] < length["accuracy"] < length["ci_high"]
    assert report["trusted"] and "ahead of both baselines" in report["why"]
    ahead = report["vs_baselines"]["length_only"]
    assert ahead["difference"] == pytest.approx(1.0 - length["accuracy"]) and ahead["ci_low"] > 0.2
    assert report["calibration"]["ece"] < 0.05 and report["calibration"]["brier"] < 0.05  # sigmoid(4) = 0.98


def test_a_length_detector_is_not_trusted_and_says_why():
    pairs = _pairs(80)
    chosen = [float(_words(p, "chosen")) for p in pairs]
    rejected = [float(_words(p, "rejected")) for p in pairs]
    report = quality_report(pairs, chosen, rejected, seed=1)
    rm, length = report["reward_model"], report["baselines"]["length_only"]
    assert not report["trusted"] and "not ahead of the length-only" in report["why"]
    assert report["vs_baselines"]["length_only"]["difference"] <= 0  # the same verdicts (a baseline's tie counts half)
    assert rm["accuracy"] <= length["accuracy"] + 1e-9
    assert report["length_correlation"]["spearman"] > 0.95


def test_the_verdict_is_paired_a_split_that_favours_length_favours_a_length_minded_model_too():
    """On pairs where "longer wins" is right 70 % of the time, a model right on exactly those pairs plus
    a few more is ahead on every pair where it differs: the paired CI is above 0 although its own CI
    overlaps the baseline's accuracy; a model right as often but on other pairs is not ahead."""
    rng = random.Random(5)
    pairs = []
    for i in range(100):
        longer_chosen = i < 70
        good, bad = ("a b c d e f", "a b") if longer_chosen else ("a b", "a b c d e f")
        pairs.append({"prompt": [{"role": "user", "content": "q"}],
                      "chosen": [{"role": "assistant", "content": good}], "rejected": [{"role": "assistant", "content": bad}]})
    right = [i < 70 or i < 80 for i in range(100)]  # the 70 length-right pairs and 10 more
    report = quality_report(pairs, [1.0 if r else -1.0 for r in right], [0.0] * 100, seed=2)
    assert report["baselines"]["length_only"]["accuracy"] == pytest.approx(0.70)
    assert report["reward_model"]["accuracy"] == pytest.approx(0.80)
    assert report["vs_baselines"]["length_only"]["ci_low"] > 0 and report["trusted"]
    shuffled = right[:]
    rng.shuffle(shuffled)  # as accurate, but not on the same pairs: no paired advantage
    report = quality_report(pairs, [1.0 if r else -1.0 for r in shuffled], [0.0] * 100, seed=2)
    assert report["reward_model"]["accuracy"] == pytest.approx(0.80)
    assert report["vs_baselines"]["length_only"]["ci_low"] < 0.05


def test_overconfident_coin_flips_are_badly_calibrated():
    pairs = _pairs(100)
    rng = random.Random(3)
    signs = [rng.choice([-1, 1]) for _ in pairs]
    report = quality_report(pairs, [5.0 * s for s in signs], [0.0] * 100, seed=0)
    assert 0.35 < report["reward_model"]["accuracy"] < 0.65 and not report["trusted"]
    assert report["calibration"]["ece"] > 0.3  # ~99 % confident, right half the time


def test_temperature_scaling_fixes_an_overconfident_but_informative_model_cross_fitted():
    """Right 80 % of the time with margins of about 6 (~99.8 % confident): raw ECE is large; a temperature
    fitted on the other folds brings each fold's confidence near 0.8 (ECE small), and T is well above 1."""
    rng = np.random.default_rng(0)
    n = 400
    right = rng.random(n) < 0.8
    margins = np.where(right, 1.0, -1.0) * rng.uniform(4.0, 8.0, n)
    report = quality_report(_pairs(n), list(margins), [0.0] * n, seed=0)
    raw, scaled = report["calibration"], report["calibration_scaled"]
    assert raw["ece"] > 0.15
    assert scaled["ece"] < 0.06 and scaled["brier"] < raw["brier"] and scaled["temperature"] > 3.0
    assert scaled["folds"] == 5 and "cross-fitted" in scaled["method"]
    # a well-calibrated model keeps a temperature near 1
    p = rng.uniform(0.55, 0.95, n)
    wins = rng.random(n) < p
    calibrated = np.where(wins, 1.0, -1.0) * np.log(p / (1 - p))
    report = quality_report(_pairs(n), list(calibrated), [0.0] * n, seed=0)
    assert 0.75 < report["calibration_scaled"]["temperature"] < 1.33


def test_ece_on_few_pairs_is_read_against_what_a_calibrated_model_would_show():
    """On 58 pairs a perfectly calibrated model still shows a binned ECE of several points; the report says
    how much (if_calibrated) and how likely the observed figure is under calibration (p_value)."""
    rng = np.random.default_rng(1)
    n = 58
    p = rng.uniform(0.55, 0.95, n)
    wins = rng.random(n) < p
    report = quality_report(_pairs(n), list(np.where(wins, 1.0, -1.0) * np.log(p / (1 - p))), [0.0] * n, seed=0)
    cal = report["calibration"]
    ref = cal["if_calibrated"]
    assert 0.05 < ref["ece_mean"] < ref["ece_p95"] < 0.3  # the small-sample floor: far from 0
    assert ref["p_value"] > 0.05  # calibrated by construction: within chance
    # ~99 % confident and right half the time: far outside what calibration allows
    signs = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    bad = quality_report(_pairs(n), list(5.0 * signs), [0.0] * n, seed=0)["calibration"]
    assert bad["ece"] > bad["if_calibrated"]["ece_p95"] and bad["if_calibrated"]["p_value"] < 0.01


def test_no_heldout_pairs_is_not_trusted():
    assert quality_report([], [], []) == {"n": 0, "trusted": False, "why": "no held-out pairs: nothing measured"}


def test_online_refuses_an_untrusted_reward_model_unless_overridden(tmp_path):
    adapter = tmp_path / "reward" / "adapter"
    adapter.mkdir(parents=True)
    with pytest.raises(HarnessError, match="no trust report beside the reward model"):
        reward_model_check(str(adapter), allow_weak=False)
    quality = quality_report(_pairs(20), [0.0] * 20, [0.0] * 20)
    (adapter.parent / "result.json").write_text(json.dumps({
        "schema_version": 1, "kind": "reward_result", "finished": "t", "fingerprint": "f", "model_path": str(adapter),
        "model_sha256": "0", "metrics": {"quality": quality}}))
    with pytest.raises(HarnessError, match="refuses to train against the reward model .*held-out accuracy 0.00") as err:
        reward_model_check(str(adapter), allow_weak=False)
    assert "online.allow_weak_reward_model" in err.value.hint
    check = reward_model_check(str(adapter), allow_weak=True)
    assert check["overridden"] and not check["trusted"] and "baseline" in check["why"]
