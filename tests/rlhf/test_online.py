import json
import math
import random

import pytest

from harness import data
from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from rlhf import online, reward, sft
from tests.conftest import write_jsonl


@pytest.mark.slow
def test_grpo_raises_the_mean_rule_reward(tmp_path):
    """A policy that answers yes or no at random (full SFT of the tiny model) learns, online, to say yes."""
    rng = random.Random(0)
    chats = [{"messages": [{"role": "user", "content": f"Question {i}: is ticket {i} resolved?"},
                           {"role": "assistant", "content": rng.choice(["yes", "no"])}]} for i in range(64)]
    src = write_jsonl(tmp_path / "yn.jsonl", chats)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Question {i}: is ticket {i} resolved?"} for i in range(100, 132)])
    cfg = load_config(None, [
        f"data.sources=[{{path: {src}, domain: yn}}]", f"data.output_dir={tmp_path / 'data'}", "data.dedupe.near=false",
        "run.id=yn", f"run.root={tmp_path / 'runs'}", "model.base=builtin:tiny-random", f"sft.data_dir={tmp_path / 'data'}",
        "sft.method=full", "sft.max_steps=40", "sft.learning_rate=1e-2", "sft.eval_every=20", "sft.warmup_ratio=0",
        f"online.prompts={prompts}", f"online.policy={tmp_path / 'runs' / 'yn' / 'sft' / 'model'}", "online.reward_model=none",
        "online.rules=[{name: says_yes, pattern: 'yes', kind: match}]", "online.max_completion_length=4",
        "online.max_steps=30", "online.learning_rate=3e-2", "online.batch_size=16", "online.logging_steps=1",
        "online.kl_ceiling=null", "online.warmup_ratio=0", "online.lr_scheduler=constant",
    ])
    data.run(cfg)
    assert sft.run(cfg).metrics["eval_loss_final"] < 2.0  # it now answers yes or no
    result = online.run(cfg)
    m = result.metrics
    assert math.isfinite(m["train_loss"]) and m["global_step"] == 30
    assert m["trainable_tensors_changed"] == m["trainable_tensors"] > 0
    rewards = [c["reward"] for c in m["curve"]]
    assert len(rewards) == 30
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.1, rewards
    assert all(c["kl"] is not None and c["mean_length"] is not None for c in m["curve"])
    # A fresh LoRA adapter on the SFT model: it is what 'harness eval' loads.
    meta = json.loads((result.model_path / "harness_adapter.json").read_text())
    assert meta["base"].endswith("sft/model") and meta["stage"] == "online-grpo"


def test_rloo_with_the_reward_model_stops_at_the_kl_ceiling(tmp_path, preferences_file, start_adapter):
    base = ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t"]
    reward.run(load_config(None, [*base, f"reward.preferences={preferences_file}", "reward.epochs=1"]))
    online_args = [*base, f"online.preferences={preferences_file}", f"online.policy={start_adapter}",
                             "online.algorithm=rloo", "online.max_steps=6", "online.learning_rate=1e-2",
                             # no warm-up (a first step at learning rate 0 moves nothing) and diverse samples (a
                             # group of identical responses has no advantage to learn from): the ceiling must trip
                             "online.warmup_ratio=0", "online.temperature=2.0",
                             "online.logging_steps=1", "online.max_completion_length=8", "online.kl_ceiling=1e-9",
                             "online.length_penalty=0.01", "online.length_target=4",
                             "online.rules=[{name: polite, pattern: '(?i)thank', kind: match, weight: 0.5}]"]
    # The fixture's chosen answers are always the longer ones: a reward model that cannot beat "longer
    # wins" is refused, by name, before any model is loaded...
    with pytest.raises(HarnessError, match="refuses to train against the reward model .*length-only"):
        online.run(load_config(None, online_args))
    # ...unless the run says so, and then the override is on the record
    result = online.run(load_config(None, [*online_args, "online.allow_weak_reward_model=true"]))
    assert result.metrics["reward_model_check"]["overridden"] is True
    m = result.metrics
    # The first step samples from the starting policy itself (KL 0); the first update moves it past the
    # ceiling, training stops, and the weights of the last step within the ceiling are put back.
    tripped = m["stopped_by_kl_ceiling"]
    assert tripped is not None and tripped["kl"] > 1e-9 and m["global_step"] < 6, m["curve"]
    assert tripped["restored_weights_of_step"] == tripped["step"] - 1
    if tripped["step"] == 2:  # restored to the weights step 1 started from: the starting adapter itself
        assert m["trainable_tensors_changed"] == 0
    assert math.isfinite(m["train_loss"])
    step = m["curve"][0]
    assert {"reward", "kl", "mean_length", "reward_model", "rule_polite", "length_penalty"} <= set(step)
    # 8 sampled tokens, target 4: the length penalty is -0.01 per token beyond it.
    assert step["length_penalty"] == pytest.approx(-0.04, abs=0.041)
    result_json = json.loads((result.output_dir / "result.json").read_text())
    assert result_json["reward_functions"] == {"reward_model": 1.0, "rule_polite": 0.5, "length_penalty": 1.0}
    assert result_json["inputs"]["reward_model"].endswith("reward/adapter")


@pytest.mark.parametrize("override, message", [
    ("online.kl_coef=-0.1", "kl_coef must be >= 0"),
    ("online.num_generations=3", "must divide batch_size"),
    ("online.rules=[{name: r, pattern: '(unclosed'}]", "not a valid regular expression"),
    ("online.rules=[{name: r, pattern: a}, {name: r, pattern: b}]", "rule names must be unique"),
])
def test_bad_online_config_exits_2(tmp_path, capsys, override, message):
    assert main(["online", "model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=o", override]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_online_needs_a_reward(tmp_path, capsys, start_adapter, preferences_file):
    args = ["online", "--policy", str(start_adapter), "model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=o",
            f"online.preferences={preferences_file}"]
    assert main(args) == 2
    assert "run 'harness reward' first" in capsys.readouterr().err
    assert main([*args, "--reward-model", "none"]) == 2
    assert "has no reward" in capsys.readouterr().err
    assert not (tmp_path / "o" / "online").exists()
