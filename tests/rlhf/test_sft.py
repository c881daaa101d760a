import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.config import load_config
from harness.errors import HarnessError
from rlhf import sft

METHODS = ["full", "lora", "qlora", "dora", "prefix", "ia3", "freeze"]


def _config(tmp_path, data_dir, *extra):
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t",
        f"sft.data_dir={data_dir}", "sft.max_steps=4", "sft.warmup_ratio=0", "sft.batch_size=8",
        "sft.eval_every=2", "sft.logging_steps=1", "sft.early_stopping_patience=null", *extra,
    ])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains(tmp_path, prepared_data, method):
    lr = {"full": 1e-3, "freeze": 1e-3}.get(method, 1e-2)
    result = sft.run(_config(tmp_path, prepared_data, f"sft.method={method}", f"sft.learning_rate={lr}",
                             "sft.freeze.trainable_blocks=1"))
    m = result.metrics
    assert m["global_step"] == 4
    assert math.isfinite(m["train_loss"]) and math.isfinite(m["eval_loss_final"])
    assert m["trainable_tensors"] > 0
    if method == "qlora":
        # On the random tiny model, attention is near-uniform, so q/k LoRA-A gradients through
        # 4-bit weights can vanish; every B matrix (which gets direct gradients) must move.
        assert not [n for n in m["unchanged_tensors"] if "lora_B" in n]
        assert m["trainable_tensors_changed"] >= 0.8 * m["trainable_tensors"]
    else:
        assert m["trainable_tensors_changed"] == m["trainable_tensors"], m["unchanged_tensors"]
    assert m["trainable_parameters"] < m["total_parameters"] or method == "full"
    adapter_methods = {"lora", "qlora", "dora", "prefix", "ia3"}
    assert result.model_path.name == ("adapter" if method in adapter_methods else "model")
    assert (result.model_path / ("adapter_model.safetensors" if method in adapter_methods else "model.safetensors")).is_file()
    if method == "qlora":
        assert m["quantized_4bit_modules"] == 14  # 2 blocks x 7 linear layers, all NF4
    else:
        assert m["quantized_4bit_modules"] == 0
    if method == "freeze":  # last block (2 norms + 7 linears) + final norm
        assert m["trainable_tensors"] == 10
    logs = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3, 4]
    assert sum("eval_loss" in r for r in logs) >= 3  # before training, step 2, step 4


def test_validation_loss_falls_and_artifacts(tmp_path, prepared_data):
    cfg = _config(tmp_path, prepared_data, "sft.max_steps=12", "sft.learning_rate=3e-3", "sft.method=full")
    result = sft.run(cfg)
    m = result.metrics
    assert m["eval_loss_final"] < m["eval_loss_initial"] - 0.5
    res = json.loads((result.output_dir / "result.json").read_text())
    assert res["status"] == "complete" and res["model_sha256"] and res["method"] == "full"
    manifest = json.loads((tmp_path / "runs" / "t" / "manifest.json").read_text())
    entry = manifest["stages"]["sft"]
    assert entry["seed"] == 42 and entry["data_outputs"]["train.jsonl"]
    assert manifest["environment"]["packages"]["trl"].startswith("1.16")
    assert "cpu" in manifest["environment"]["hardware"]
    # Same config again: nothing retrained.
    again = sft.run(cfg)
    assert again.up_to_date and again.metrics["train_loss"] == m["train_loss"]
    # Different config in the same run folder: refused, nothing touched.
    with pytest.raises(HarnessError, match="already holds a different fine-tuning run"):
        sft.run(_config(tmp_path, prepared_data, "sft.max_steps=12", "sft.learning_rate=1e-3", "sft.method=full"))
    assert json.loads((result.output_dir / "result.json").read_text())["fingerprint"] == res["fingerprint"]


def test_adapter_as_base_is_refused(tmp_path, prepared_data):
    first = sft.run(_config(tmp_path, prepared_data, "sft.max_steps=1"))
    with pytest.raises(HarnessError, match="is an adapter"):
        sft.run(_config(tmp_path, prepared_data, f"model.base={first.model_path}", "run.id=u"))


def test_killed_run_resumes_from_checkpoint(tmp_path, prepared_data):
    args = [sys.executable, "-m", "harness.cli", "sft", "--model", "builtin:tiny-random", "--data", str(prepared_data),
            f"run.root={tmp_path / 'runs'}", "run.id=k", "sft.max_steps=60", "sft.eval_every=3",
            "sft.save_total_limit=2", "sft.batch_size=2", "sft.early_stopping_patience=null"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ckpts = tmp_path / "runs" / "k" / "sft" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not (ckpts.is_dir() and list(ckpts.glob("checkpoint-*/trainer_state.json"))):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (ckpts.parent / "result.json").exists()
    # Without --resume the unfinished run is not silently overwritten.
    plain = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2 and "--resume" in plain.stderr
    done = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((ckpts.parent / "result.json").read_text())
    assert result["metrics"]["global_step"] == 60
    assert result["metrics"]["resumed_from"] and "checkpoint-" in result["metrics"]["resumed_from"]
    steps = [json.loads(line)["step"] for line in (ckpts.parent / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == sorted(set(steps)), "log has no duplicated steps after resuming"


def test_early_stopping_ends_a_run_that_stops_improving(tmp_path, prepared_data):
    # A learning rate far below float resolution leaves the validation loss exactly flat.
    result = sft.run(_config(tmp_path, prepared_data, "sft.max_steps=40", "sft.learning_rate=1e-12",
                             "sft.early_stopping_patience=2", "sft.method=full"))
    assert result.metrics["global_step"] < 40
    assert len(result.metrics["eval_curve"]) >= 3
