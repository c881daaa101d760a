"""The real pretrained model on the demo domain: LoRA fine-tuning must lower the validation loss."""

import json
from pathlib import Path

import pytest

from harness import data
from harness.config import load_config
from rlhf import sft

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smollm2_lora_on_demo_handbook_lowers_validation_loss(tmp_path):
    cfg = load_config(REPO / "examples/demo/cycle.yaml", [
        f"run.root={tmp_path}", "sft.max_steps=12", "sft.batch_size=4", "sft.eval_every=6",
        "data.validation_fraction=0.05",
    ])
    prepared = data.run(cfg)
    card = json.loads(prepared.card_path.read_text())
    assert card["counts"]["replay_added"] > 0 and card["counts"]["per_domain"]["hr_policy"]["validation"] >= 10
    result = sft.run(cfg)
    m = result.metrics
    assert m["eval_loss_final"] < m["eval_loss_initial"] - 0.2, m["eval_curve"]
    assert m["trainable_tensors_changed"] == m["trainable_tensors"]
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"data", "sft"}
    assert manifest["stages"]["data"]["inputs"][0]["sha256"]
