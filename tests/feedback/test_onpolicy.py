"""On-policy review pairs: K sampled answers per training prompt, paired with each other and with the
incumbent, deduplicated, capped by a budget; bad settings are refused before any model loads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from feedback.onpolicy import check_budget, max_pairs, on_policy_pairs
from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "cycle.yaml"


def _prompts(n):
    return [{"id": f"p{i}", "prompt": f"question {i}?"} for i in range(n)]


def test_pairs_among_samples_and_against_the_incumbent():
    samples = [["a", "b", "c"], ["x", "x ", "", "y"]]  # prompt 2: a duplicate (whitespace) and an empty answer
    pairs, counts = on_policy_pairs(_prompts(2), samples, ["inc0", "y"], budget=None, seed=0)
    kinds = [(p[0]["id"], p[1], p[2], p[3]) for p in pairs]
    assert ("p0", "a", "b", "sample_vs_sample") in kinds and ("p0", "a", "inc0", "sample_vs_incumbent") in kinds
    assert sum(k[3] == "sample_vs_sample" for k in kinds if k[0] == "p0") == 3  # every two of 3 samples
    assert sum(k[3] == "sample_vs_incumbent" for k in kinds if k[0] == "p0") == 3
    # prompt 2: x, y remain; y equals the incumbent's answer, so no y-vs-incumbent pair
    assert [k[1:] for k in kinds if k[0] == "p1"] == [("x", "y", "sample_vs_sample"), ("x", "y", "sample_vs_incumbent")]
    assert counts == {"samples": 7, "duplicate_or_empty_samples": 2, "pairs_available": 8, "pairs_sent": 8}


def test_a_budget_is_a_seeded_choice():
    samples = [[f"s{i}-{k}" for k in range(4)] for i in range(10)]
    first, counts = on_policy_pairs(_prompts(10), samples, ["inc"] * 10, budget=25, seed=1)
    again, _ = on_policy_pairs(_prompts(10), samples, ["inc"] * 10, budget=25, seed=1)
    other, _ = on_policy_pairs(_prompts(10), samples, ["inc"] * 10, budget=25, seed=2)
    assert len(first) == 25 and counts["pairs_available"] == max_pairs(10, 4) == 100
    assert first == again and first != other


def test_bad_settings_are_refused():
    with pytest.raises(HarnessError, match="feedback.budget is 500 review pairs, but 10 training prompts"):
        check_budget(500, 10, 4)
    check_budget(100, 10, 4)
    with pytest.raises(HarnessError, match="feedback.samples: Input should be greater than or equal to 2"):
        load_config(None, ["feedback.on_policy=true", "feedback.samples=1"])
    with pytest.raises(HarnessError, match="on_policy pairs need template: pairwise"):
        load_config(None, ["feedback.on_policy=true", "feedback.template=rating"])


def test_the_cycle_refuses_an_impossible_budget_before_loading_any_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    started = time.monotonic()
    code = main(["cycle", "--config", str(DEMO), "run.id=bad", "feedback.on_policy=true", "feedback.samples=2",
                 "feedback.budget=100000", "gate.incumbent=builtin:smollm2-135m-instruct"])
    assert code == 2 and time.monotonic() - started < 30
    assert "feedback.budget is 100000 review pairs, but 306 training prompts" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "home" / "models").exists()
