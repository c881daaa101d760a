import json
import math
import shutil

import pytest

from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from rlhf import reward
from tests.conftest import write_jsonl
from tests.rlhf.conftest import preference_rows


def _config(tmp_path, prefs, *extra):
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t",
        f"reward.preferences={prefs}", "reward.epochs=3", "reward.learning_rate=3e-3", "reward.logging_steps=1", *extra,
    ])


def test_reward_model_learns_a_constructed_preference(tmp_path, preferences_file, capfd):
    result = reward.run(_config(tmp_path, preferences_file))
    # The terminal gets one progress line for the stage; the trainer's raw log dicts go to metrics.jsonl only.
    out, err = capfd.readouterr()
    assert "{'loss'" not in out + err and "'learning_rate'" not in out + err
    assert "reward: training steps" in err
    assert "Loading weights" not in err  # a local model loads without transformers' bar
    assert "LOAD REPORT" not in err  # nor its report of the score head it is about to train
    assert any("loss" in json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines())
    m = result.metrics
    assert math.isfinite(m["train_loss"])
    assert m["trainable_tensors_changed"] == m["trainable_tensors"] > 0, m["unchanged_tensors"]
    held = m["heldout"]
    assert held["n"] == 12  # 20 % of 60 distinct prompts
    assert held["accuracy"] > 0.9 and held["chosen_scored_higher"] and held["ci_low"] > 0.5
    assert held["margin"]["mean"] > m["heldout_initial"]["margin"]["mean"] + 1.0
    assert sum(held["margin"]["histogram"]["counts"]) == 12
    # The saved adapter carries the trained score head: reloading it reproduces the held-out scores.
    saved = [json.loads(line) for line in (result.output_dir / "heldout_scores.jsonl").read_text().splitlines()]
    scorer = reward.load_scorer(str(result.model_path))
    rows = [r for r in preference_rows() if r["prompt"][0]["content"] in {s["prompt"] for s in saved}]
    rows.sort(key=lambda r: [s["prompt"] for s in saved].index(r["prompt"][0]["content"]))
    again = scorer.score([r["prompt"] for r in rows], [r["chosen"][0]["content"] for r in rows])
    assert again == pytest.approx([s["chosen_score"] for s in saved], abs=1e-4)
    result_json = json.loads((result.output_dir / "result.json").read_text())
    assert result_json["status"] == "complete" and result_json["inputs"]["backbone"] == "builtin:tiny-random"
    manifest = json.loads((tmp_path / "runs" / "t" / "manifest.json").read_text())
    assert "reward" in manifest["stages"]
    # Same settings and data: reused; other settings in the same folder: refused; --force retrains.
    assert reward.run(_config(tmp_path, preferences_file)).up_to_date
    with pytest.raises(HarnessError, match="different reward run"):
        reward.run(_config(tmp_path, preferences_file, "reward.epochs=1"))


@pytest.mark.slow
def test_encoder_backbone_and_merged_model(tmp_path, preferences_file):
    result = reward.run(_config(tmp_path, preferences_file, "reward.backbone=builtin:minilm-l6",
                                "reward.learning_rate=1e-3", "reward.merge=true"))
    m = result.metrics
    assert m["trainable_tensors_changed"] == m["trainable_tensors"] > 0
    assert m["heldout"]["accuracy"] > 0.9
    merged = result.output_dir / "merged"
    assert (merged / "model.safetensors").is_file()
    scorer = reward.load_scorer(str(merged))
    adapter_scorer = reward.load_scorer(str(result.model_path))
    prompt = [{"role": "user", "content": "How do I reset my password?"}]
    assert scorer.score([prompt], ["Happy to help."]) == pytest.approx(adapter_scorer.score([prompt], ["Happy to help."]), abs=1e-3)


BAD_ROWS = {
    "missing rejected": ({"prompt": "q", "chosen": "a"}, "has no rejected"),
    "identical": ({"prompt": "q", "chosen": "same answer", "rejected": "same answer"}, "the same response"),
    "prompt ends with assistant": ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                                    "chosen": "x", "rejected": "y"}, "must end with a user message"),
    "not a chat message": ({"prompt": [{"speaker": "user", "text": "q"}], "chosen": "x", "rejected": "y"}, "not a chat message"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_preference_rows_exit_2_and_write_nothing(tmp_path, capsys, case):
    row, message = BAD_ROWS[case]
    prefs = write_jsonl(tmp_path / "prefs.jsonl", [*preference_rows(2), row])
    assert main(["reward", "--preferences", str(prefs), "model.base=builtin:tiny-random", f"run.root={tmp_path}",
                 "run.id=bad"]) == 2
    err = capsys.readouterr().err
    assert message in err and "prefs.jsonl:3" in err
    assert not (tmp_path / "bad" / "reward").exists()


def test_empty_preference_set(tmp_path, capsys):
    prefs = write_jsonl(tmp_path / "prefs.jsonl", [])
    assert main(["reward", "-p", str(prefs), "model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=e"]) == 2
    assert "is empty" in capsys.readouterr().err


def test_backbone_without_pad_token(tmp_path, tiny_model_dir, preferences_file):
    """A tokenizer with neither pad nor eos token: a clear error, and reward.pad_token fixes it."""
    local = tmp_path / "nopad"
    shutil.copytree(tiny_model_dir, local)
    tok_cfg = json.loads((local / "tokenizer_config.json").read_text())
    for key in ("pad_token", "eos_token"):
        tok_cfg.pop(key, None)
    (local / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    with pytest.raises(HarnessError, match="no pad token"):
        reward.run(_config(tmp_path, preferences_file, f"reward.backbone={local}"))
    assert not (tmp_path / "runs" / "t" / "reward").exists()
    result = reward.run(_config(tmp_path, preferences_file, f"reward.backbone={local}", "reward.pad_token=<|endoftext|>",
                                "reward.epochs=1"))
    assert math.isfinite(result.metrics["train_loss"])


def test_cross_fitting_measures_every_pair_with_a_model_that_did_not_train_on_it(tmp_path, preferences_file, capsys):
    result = reward.run(_config(tmp_path, preferences_file, "reward.cross_fit_folds=3"))
    m = result.metrics
    said = " ".join(capsys.readouterr().err.split())
    assert "cross-fitted (3 folds) accuracy" in said and "and 3 cross-fitting models in" in said  # their time is not hidden
    folds = m["cross_fit"]
    assert [f["fold"] for f in folds] == [0, 1, 2]
    assert sum(f["scored_pairs"] for f in folds) == 60  # every pair is measured, once
    assert all(f["train_pairs"] + f["scored_pairs"] == 60 for f in folds)  # each fold model trained on the others only
    assert all(math.isfinite(f["train_loss"]) for f in folds)
    assert m["train_pairs"] == 60  # the saved model trains on all of them
    q = m["quality"]
    assert q["n"] == 60 and q["estimate"]["kind"] == "cross_fit" and q["estimate"]["folds"] == 3
    assert q["why"].startswith("cross-fitted (3 folds) accuracy")
    assert m["heldout"]["n"] == 60 and m["heldout"]["accuracy"] > 0.9  # the constructed preference generalizes across folds
    saved = [json.loads(line) for line in (result.output_dir / "heldout_scores.jsonl").read_text().splitlines()]
    by_fold = {}
    for s in saved:
        by_fold.setdefault(s["fold"], set()).add(s["prompt"])
    assert sorted(by_fold) == [0, 1, 2] and sum(map(len, by_fold.values())) == 60  # a prompt in one fold only
    # The scores are the fold models', not the saved model's: the saved model scores the same pairs differently.
    scorer = reward.load_scorer(str(result.model_path))
    rows = {r["prompt"][0]["content"]: r for r in preference_rows()}
    again = scorer.score([rows[s["prompt"]]["prompt"] for s in saved], [rows[s["prompt"]]["chosen"][0]["content"] for s in saved])
    assert max(abs(a - s["chosen_score"]) for a, s in zip(again, saved)) > 1e-3


@pytest.mark.parametrize("extra, message", [
    (["reward.cross_fit_folds=1"], "at least 2 folds, got 1"),
    (["reward.cross_fit_folds=4", "reward.validation_fraction=0.3"], "set one of them only"),
    (["reward.cross_fit_folds=61"], "needs at least 61 distinct prompts; the preference pairs have 60"),
])
def test_bad_cross_fitting_settings_exit_2_before_any_model_loads(tmp_path, preferences_file, capsys, extra, message):
    code = main(["reward", "-p", str(preferences_file), "model.base=builtin:tiny-random", f"run.root={tmp_path}",
                 "run.id=bad", *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bad" / "reward").exists()
