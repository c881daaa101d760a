import json
import math

import pytest

from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import load_model, load_tokenizer, resolve
from rlhf import dpo
from tests.conftest import write_jsonl
from tests.rlhf.conftest import preference_rows


def _config(tmp_path, prefs, policy, *extra):
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t", f"dpo.preferences={prefs}",
        f"dpo.policy={policy}", "dpo.epochs=2", "dpo.learning_rate=2e-3", "dpo.logging_steps=1", *extra,
    ])


def test_dpo_raises_the_margin_against_the_starting_adapter(tmp_path, preferences_file, start_adapter):
    # fp32: the pairs are then scored in float32 too, precisely enough to tell the reference from the base
    result = dpo.run(_config(tmp_path, preferences_file, start_adapter, "dpo.precision=fp32"))
    m = result.metrics
    assert math.isfinite(m["train_loss"])
    assert m["trainable_tensors_changed"] == m["trainable_tensors"] > 0, m["unchanged_tensors"]
    # The chosen-minus-rejected log-probability margin on the training pairs grows.
    assert m["train"]["logp_margin_after"] > m["train"]["logp_margin_before"] + 1.0
    assert m["heldout"]["implicit_reward"]["accuracy"] > 0.9
    # The reference is the starting adapter (which differs from the bare base), not the base model.
    rows = [json.loads(line) for line in (result.output_dir / "pair_scores.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["split"] == "train")
    pair = next(p for p in preference_rows() if p["prompt"][0]["content"] == first["prompt"])
    start_spec, base_spec = resolve(str(start_adapter)), resolve("builtin:tiny-random")
    tok = load_tokenizer(start_spec)
    assert m["scored_in"] == "float32"  # the precision it trained in
    start = load_model(start_spec, merge_adapter=True)
    start_logp = dpo.sequence_logps(start, tok, [pair["prompt"]], [pair["chosen"][0]["content"]])[0]
    base_logp = dpo.sequence_logps(load_model(base_spec), tok, [pair["prompt"]], [pair["chosen"][0]["content"]])[0]
    assert first["ref_logp_chosen"] == pytest.approx(start_logp, abs=1e-2)
    assert abs(start_logp - base_logp) > 0.1
    # Only the trained adapter is saved (not TRL's frozen reference copy), on the policy's base model.
    saved = result.model_path
    assert not (saved / "ref").exists()
    assert json.loads((saved / "harness_adapter.json").read_text())["base"] == "builtin:tiny-random"
    assert resolve(str(saved)).base.ref == "builtin:tiny-random"
    trained = dpo.sequence_logps(load_model(resolve(str(saved))), tok, [pair["prompt"]], [pair["chosen"][0]["content"]])[0]
    assert trained == pytest.approx(first["policy_logp_chosen"], abs=1e-2)


def test_dpo_from_a_full_model_trains_a_new_adapter_and_merges(tmp_path, preferences_file):
    result = dpo.run(_config(tmp_path, preferences_file, "builtin:tiny-random", "dpo.epochs=1", "dpo.merge=true",
                             "dpo.loss_type=ipo", "dpo.score_train_pairs=5"))
    m = result.metrics
    assert m["trainable_tensors_changed"] == m["trainable_tensors"] > 0
    assert m["train"]["logp_margin_after"] > m["train"]["logp_margin_before"]
    # Only a sample of the training pairs is scored afterwards; every held-out pair is.
    assert m["train"]["n"] == 5 < m["train_pairs"] and m["heldout"]["n"] == m["heldout_pairs"] > 0
    rows = [json.loads(line) for line in (result.output_dir / "pair_scores.jsonl").read_text().splitlines()]
    assert [r["split"] for r in rows].count("train") == 5
    assert (result.output_dir / "merged" / "model.safetensors").is_file()
    assert json.loads((result.output_dir / "result.json").read_text())["loss_type"] == "ipo"


def test_kto_from_unpaired_ratings(tmp_path, start_adapter):
    pairs = preference_rows(30)
    unpaired = []
    for p in pairs:
        unpaired.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
        unpaired.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
    path = write_jsonl(tmp_path / "unpaired.jsonl", unpaired)
    prefs = write_jsonl(tmp_path / "prefs.jsonl", pairs)
    result = dpo.run(_config(tmp_path, prefs, start_adapter, "dpo.objective=kto", f"dpo.unpaired={path}", "dpo.epochs=1"))
    m = result.metrics
    assert math.isfinite(m["train_loss"])
    assert m["trainable_tensors_changed"] == m["trainable_tensors"] > 0
    # Held-out prompts' unpaired rows are kept out of training.
    assert m["train_unpaired"] == 2 * m["train_pairs"] and m["heldout_pairs"] == 6
    assert m["train"]["logp_margin_after"] > m["train"]["logp_margin_before"]
    logs = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r["stage"] == "kto" and "kl" in r for r in logs)


def test_kto_needs_both_labels(tmp_path, start_adapter):
    rows = [{"prompt": p["prompt"], "completion": p["chosen"], "label": True} for p in preference_rows(4)]
    path = write_jsonl(tmp_path / "unpaired.jsonl", rows)
    with pytest.raises(HarnessError, match="only desirable"):
        dpo.run(_config(tmp_path, tmp_path / "none.jsonl", start_adapter, "dpo.objective=kto", f"dpo.unpaired={path}"))


def test_dpo_cli_bad_inputs(tmp_path, capsys, preferences_file, start_adapter):
    base = ["model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=c"]
    assert main(["dpo", "-p", str(preferences_file), *base]) == 2  # no SFT adapter in this run
    assert "run 'harness sft' first" in capsys.readouterr().err
    assert main(["dpo", "--policy", str(start_adapter), "-p", str(preferences_file), "dpo.beta=0", *base]) == 2
    assert "dpo.beta" in capsys.readouterr().err
    assert not (tmp_path / "c" / "dpo").exists()
