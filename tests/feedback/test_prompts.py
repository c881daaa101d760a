"""The review prompts are split once: training prompts train the preference stages, held-out ones are
judged only by the final review; the split is checked, seeded and recorded."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from feedback.prompts import normalize, prompts_for, split_prompts, write_split
from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from harness.schemas import PromptSplit, read_artifact

REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "examples" / "demo" / "review_prompts.jsonl"
DEMO = REPO / "examples" / "demo" / "cycle.yaml"


def _cfg(tmp_path, *extra):
    return load_config(None, [f"feedback.prompts={PROMPTS}", f"run.root={tmp_path / 'runs'}", "run.id=p", *extra])


def test_split_is_seeded_stratified_and_disjoint(tmp_path):
    split = split_prompts(_cfg(tmp_path))
    rows = [json.loads(line) for line in PROMPTS.read_text().splitlines()]
    assert len(split.training) + len(split.heldout) == len(rows)
    assert not {normalize(p["prompt"]) for p in split.training} & {normalize(p["prompt"]) for p in split.heldout}
    cats = Counter(p["category"] for p in split.heldout)
    assert set(cats) == {p["category"] for p in rows}  # safety-sensitive prompts on both sides
    assert 0.2 < len(split.heldout) / len(rows) < 0.4  # heldout_fraction 0.3 by default
    assert split_prompts(_cfg(tmp_path)).record.heldout == split.record.heldout  # same seed, same split
    other = split_prompts(_cfg(tmp_path, "run.seed=7")).record.heldout
    assert other != split.record.heldout
    path = write_split(_cfg(tmp_path))
    record = read_artifact(path, PromptSplit)
    assert record.overlap_checked and sorted(record.heldout) == sorted(split.record.heldout)
    assert record.by_category["safety"]["heldout"] >= 1 and record.by_category["safety"]["training"] >= 1


def test_repeated_questions_stay_on_one_side(tmp_path):
    rows = [{"id": f"q{i}", "prompt": f"Question number {i}?", "category": "c"} for i in range(20)]
    rows += [{"id": "dup", "prompt": "  question NUMBER 3 "}]  # the same question, written differently
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for seed in range(8):
        split = split_prompts(load_config(None, [f"feedback.prompts={path}", f"run.seed={seed}"]))
        sides = {p["id"]: "training" for p in split.training} | {p["id"]: "heldout" for p in split.heldout}
        assert sides["dup"] == sides["q3"]


def test_heldout_file_overlapping_the_training_prompts_is_refused(tmp_path):
    held = tmp_path / "held.jsonl"
    first = json.loads(PROMPTS.read_text().splitlines()[0])
    held.write_text(json.dumps({"id": "h1", "prompt": first["prompt"].upper() + "!!"}) + "\n"
                    + json.dumps({"id": "h2", "prompt": "A new question nobody trained on?"}) + "\n")
    with pytest.raises(HarnessError, match="1 review prompt\\(s\\) are both training and held-out prompts") as err:
        split_prompts(_cfg(tmp_path, f"feedback.heldout_prompts={held}"))
    assert "feedback.heldout_prompts" in err.value.hint
    held.write_text(json.dumps({"id": "h2", "prompt": "A new question nobody trained on?"}) + "\n")
    split = split_prompts(_cfg(tmp_path, f"feedback.heldout_prompts={held}"))
    assert [p["id"] for p in split.heldout] == ["h2"] and len(split.training) == len(PROMPTS.read_text().splitlines())


def test_an_empty_heldout_split_is_refused_for_the_final_review(tmp_path):
    with pytest.raises(HarnessError, match="held-out review split is empty"):
        prompts_for(_cfg(tmp_path, "feedback.heldout_fraction=0"), "heldout")
    assert len(prompts_for(_cfg(tmp_path, "feedback.heldout_fraction=0"), "training")) == len(PROMPTS.read_text().splitlines())


def test_the_cycle_refuses_a_bad_split_before_loading_any_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))  # an empty model cache: nothing built or loaded
    started = time.monotonic()
    code = main(["cycle", "--config", str(DEMO), "run.id=bad", "feedback.heldout_fraction=0",
                 "gate.incumbent=builtin:smollm2-135m-instruct"])
    assert code == 2 and time.monotonic() - started < 30
    assert "held-out review split is empty" in capsys.readouterr().err
    assert not (tmp_path / "home" / "models").exists() and not (tmp_path / "runs" / "bad" / "sft").exists()


def test_training_prompts_holding_an_evaluation_item_are_left_out(tmp_path):
    from harness.suites import available_suites

    gk = json.loads(available_suites()["retention/general_knowledge"].data_files()[0].read_text().splitlines()[1])
    rows = [{"id": f"p{i}", "prompt": f"How many vacation days does policy {i} give a new hire?", "category": "leave"}
            for i in range(12)] + [{"id": "leak", "prompt": gk["question"], "category": "leave"}]
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(None, [f"feedback.prompts={path}", f"run.root={tmp_path / 'runs'}", "run.id=p", "feedback.heldout_fraction=0",
                             "eval.suites=[retention/general_knowledge]"])
    split = split_prompts(cfg)
    assert "leak" not in [p["id"] for p in split.training] and len(split.training) == 12
    assert split.record.contaminated == [{"id": "leak", "why": "the same text as retention/general_knowledge document gk-0002"}]
    with pytest.raises(HarnessError, match="1 training review prompt\\(s\\) hold evaluation items \\(leak"):
        split_prompts(load_config(None, [f"feedback.prompts={path}", f"run.root={tmp_path / 'runs'}", "run.id=p",
                                         "feedback.heldout_fraction=0", "eval.suites=[retention/general_knowledge]",
                                         "data.decontaminate=fail"]))
