"""sft.method reft: training, the saved folder, and the stages that refuse to continue it."""

import json
import math

import pytest
import torch

from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import load_model, load_tokenizer, resolve
from harness.stage import StageContext
from rlhf import dpo, sft
from rlhf.merge import merge_adapter
from rlhf.stages import DPO, ONLINE


def _config(tmp_path, data_dir, *extra):
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t", f"sft.data_dir={data_dir}",
        "sft.method=reft", "sft.max_steps=4", "sft.warmup_ratio=0", "sft.batch_size=8", "sft.eval_every=2",
        "sft.logging_steps=1", "sft.early_stopping_patience=null", "sft.learning_rate=1e-2", *extra,
    ])


@pytest.fixture(scope="module")
def reft_run(tmp_path_factory, prepared_data):
    return sft.run(_config(tmp_path_factory.mktemp("reft"), prepared_data))


@pytest.fixture
def reft_folder(tmp_path):
    """Fresh (untrained) interventions saved as the SFT stage saves them: enough for the refusals."""
    from harness import reft

    spec = resolve("builtin:tiny-random")
    model = load_model(spec)
    reft.attach(model, rank=2)
    folder = reft.save(model, tmp_path / "reft")
    load_tokenizer(spec).save_pretrained(folder)
    (folder / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random", "method": "reft"}))
    return folder


@pytest.mark.slow
def test_reft_trains_only_its_interventions_and_saves_a_folder_that_loads(reft_run):
    m = reft_run.metrics
    assert m["global_step"] == 4 and math.isfinite(m["train_loss"]) and math.isfinite(m["eval_loss_final"])
    # R (its parametrization's free parameter), W and b of each of the tiny model's 2 blocks, all moved
    assert m["trainable_tensors"] == 6 and m["trainable_tensors_changed"] == 6, m["unchanged_tensors"]
    assert m["trainable_parameters"] == 2 * (4 * 64 + 4 * 64 + 4)  # R, W (rank x hidden) and b, per block
    folder = reft_run.model_path
    assert folder.name == "adapter"
    assert {"reft_config.json", "reft_model.safetensors", "harness_adapter.json", "tokenizer_config.json"} <= \
        {p.name for p in folder.iterdir()}
    assert not (folder / "model.safetensors").exists()  # the frozen base is not copied
    assert json.loads((folder / "harness_adapter.json").read_text())["method"] == "reft"
    assert json.loads((folder / "reft_config.json").read_text())["layers"] == [0, 1]
    result = json.loads((reft_run.output_dir / "result.json").read_text())
    assert result["method"] == "reft" and result["learning_rate"] == 1e-2 and result["model_kind"] == "adapter"

    spec = resolve(str(folder))
    assert spec.kind == "reft"
    tok = load_tokenizer(spec)
    batch = tok(["Ticket 3: which queue handles red items?"], return_tensors="pt")
    with torch.no_grad():
        trained = load_model(spec).eval()(**batch).logits
        base = load_model(spec.base_spec).eval()(**batch).logits
    assert not torch.allclose(trained, base, atol=1e-3)


@pytest.mark.slow
def test_reft_trains_far_fewer_parameters_than_lora(reft_run):
    from peft import LoraConfig, get_peft_model

    from rlhf.methods import count_parameters

    lora = get_peft_model(load_model(resolve("builtin:tiny-random")),
                          LoraConfig(r=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    lora_trainable, _ = count_parameters(lora)
    assert reft_run.metrics["trainable_parameters"] * 10 < lora_trainable


def test_reft_config_defaults_and_refusals(tmp_path, prepared_data):
    cfg = _config(tmp_path, prepared_data)
    assert (cfg.sft.reft.rank, cfg.sft.reft.layers, cfg.sft.reft.positions) == (4, "all", "all")
    from rlhf.methods import DEFAULT_LR, plan

    assert plan("reft", load_config(None, ["sft.method=reft"]).sft).learning_rate == DEFAULT_LR["reft"] == 2e-3
    for bad, message in [("sft.weight_decay=0.01", "weight_decay must be 0 for method reft"),
                         ("sft.reft.positions=last:4", "positions"), ("sft.reft.layers=[1,1]", "distinct block indices")]:
        with pytest.raises(HarnessError, match=message):
            _config(tmp_path, prepared_data, bad)


def test_preference_stages_refuse_to_continue_reft_before_training(tmp_path, reft_folder, preferences_file, capsys):
    with pytest.raises(HarnessError, match="dpo cannot continue .* ReFT interventions") as err:
        dpo.run(load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=d",
                                   f"dpo.preferences={preferences_file}", f"dpo.policy={reft_folder}"]))
    assert "sft.method lora" in err.value.hint
    assert not (tmp_path / "runs" / "d" / "dpo").exists()
    base = ["model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=c"]
    assert main(["online", "--policy", str(reft_folder), "online.reward_model=none",
                 "online.rules=[{name: polite, pattern: thank}]", f"online.preferences={preferences_file}", *base]) == 2
    assert "online cannot continue" in capsys.readouterr().err
    assert not (tmp_path / "c" / "online").exists()

    # in a cycle: the stages' prepare hooks, which run at cycle start before any stage trains
    cfg = load_config(None, ["sft.method=reft", "cycle.align=[dpo, online]", f"run.root={tmp_path}", "run.id=z"])
    ctx = StageContext(config=cfg, layout=cfg.layout(), incumbent="builtin:tiny-random", plan=["sft", "dpo", "online"],
                       records={})
    for stage in (DPO, ONLINE):
        with pytest.raises(HarnessError, match=f"{stage.name} cannot continue the SFT model: it holds ReFT"):
            stage.prepare(ctx)
    lora = load_config(None, ["sft.method=lora", "cycle.align=[dpo, online]", f"run.root={tmp_path}", "run.id=z"])
    for stage in (DPO, ONLINE):
        stage.prepare(StageContext(config=lora, layout=lora.layout(), incumbent="x", plan=[], records={}))


def test_merge_refuses_reft(tmp_path, reft_folder, capsys):
    with pytest.raises(HarnessError, match="ReFT interventions, which cannot be merged"):
        merge_adapter(reft_folder, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
    assert main(["merge", "--adapter", str(reft_folder), "--output", str(tmp_path / "m2"),
                 f"run.root={tmp_path}", "run.id=z"]) == 2
    assert "cannot be merged" in capsys.readouterr().err
