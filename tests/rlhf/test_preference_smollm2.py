"""The real pretrained model: reward -> DPO -> online RL on handbook preference pairs, then eval of the result."""

import json
import math
from pathlib import Path

import pytest

from harness import evaluate
from harness.config import load_config
from rlhf import dpo, online, reward
from tests.conftest import write_jsonl

REPO = Path(__file__).resolve().parents[2]


def handbook_pairs(n: int) -> list[dict]:
    """The handbook's answer beats the answer to another question (a wrong fact for this prompt)."""
    chats = [json.loads(line)["messages"] for line in (REPO / "examples/demo/sft.jsonl").read_text().splitlines()]
    rows = []
    for i in range(n):
        msgs, other = chats[i * 3], chats[i * 3 + 11]
        rows.append({"prompt": [msgs[-2]], "chosen": [msgs[-1]], "rejected": [other[-1]],
                     "provenance": {"category": "policy"}})
    return rows


@pytest.mark.slow
def test_smollm2_reward_dpo_online_and_eval(tmp_path):
    prefs = write_jsonl(tmp_path / "prefs.jsonl", handbook_pairs(20))
    cfg = load_config(REPO / "examples/demo/cycle.yaml", [
        f"run.root={tmp_path}", f"reward.preferences={prefs}", "reward.max_steps=3", "reward.batch_size=4",
        "reward.cross_fit_folds=0", "reward.validation_fraction=0.2",  # the demo cross-fits; one split here, 4 held out
        "online.allow_weak_reward_model=true",  # 20 pairs train no trusted reward model
        f"dpo.preferences={prefs}", "dpo.policy=builtin:smollm2-135m-instruct", "dpo.max_steps=3", "dpo.batch_size=4",
        "dpo.learning_rate=5e-4", f"online.preferences={prefs}", f"online.policy={tmp_path / 'demo' / 'dpo' / 'adapter'}",
        "online.max_steps=2", "online.batch_size=4", "online.max_completion_length=16",
        "eval.suites=[domain/handbook_mcq]", "eval.limit=8", "eval.use_cache=false",
    ])
    r = reward.run(cfg).metrics
    assert math.isfinite(r["train_loss"]) and r["trainable_tensors_changed"] == r["trainable_tensors"]
    assert r["heldout"]["n"] == 4 and 0 <= r["heldout"]["accuracy"] <= 1
    assert r["quality"]["n"] == 4 and set(r["quality"]["baselines"]) == {"length_only", "lexical_overlap"}

    d = dpo.run(cfg)
    m = d.metrics
    assert math.isfinite(m["train_loss"]) and m["trainable_tensors_changed"] == m["trainable_tensors"]
    assert m["train"]["logp_margin_after"] > m["train"]["logp_margin_before"]

    o = online.run(cfg)
    m = o.metrics
    assert m["global_step"] == 2 and math.isfinite(m["train_loss"]) and m["trainable_tensors_changed"] > 0
    assert all(c["reward_model"] is not None and c["kl"] is not None for c in m["curve"])
    check = m["reward_model_check"]  # a weak reward model was allowed here: recorded either way
    assert check["trusted"] or check["overridden"]

    # The stages' adapters are ordinary models for the evaluation harness.
    ev = evaluate.run(cfg.model_copy(update={"eval": cfg.eval.model_copy(
        update={"models": [str(d.model_path), str(o.model_path)]})}))
    accs = {row["model"]: row["estimate"] for row in ev.table() if row["metric"] == "acc"}
    assert len(accs) == 2 and all(0 <= v <= 1 for v in accs.values())
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert {"reward", "dpo", "online"} <= set(manifest["stages"])
