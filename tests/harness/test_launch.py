"""Scale-out: the accelerate launch commands and shipped configs, and the vLLM evaluation backend's arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness import launch
from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from harness.scoring import vllm_model_args
from harness.models import resolve
from tests.conftest import random_adapter


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero3", "DEEPSPEED")])
def test_shipped_configs_are_accelerate_configs(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(launch.SHIPPED[name]))  # accelerate's own reader: unknown keys fail
    assert cfg.distributed_type.value == kind and cfg.num_machines == 1 and cfg.mixed_precision == "bf16"
    if kind == "FSDP":
        assert cfg.fsdp_config["fsdp_version"] == 2 and cfg.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    if kind == "DEEPSPEED":
        assert cfg.deepspeed_config["zero_stage"] == 3 and cfg.deepspeed_config["zero3_save_16bit_model"] is True


def test_generated_launch_command():
    argv = ["--config", "c.yaml", "--launcher", "accelerate", "--accelerate-config=fsdp", "--num-processes", "4",
            "sft.max_steps=2", "--force"]
    args = launch.strip_launcher_options(argv)
    assert args == ["--config", "c.yaml", "sft.max_steps=2", "--force"]
    cmd = launch.accelerate_command("dpo", args, launch.SHIPPED["fsdp"], num_processes=4)
    assert cmd == [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launch.SHIPPED["fsdp"]),
                   "--num_processes", "4", "-m", "harness.cli", "dpo", "--config", "c.yaml", "sft.max_steps=2", "--force"]


def test_launcher_bad_input(tmp_path, capsys):
    assert main(["sft", "--launcher", "accelerate", "model.base=builtin:tiny-random"]) == 2
    assert "needs --accelerate-config" in capsys.readouterr().err
    assert main(["sft", "--launcher", "slurm", "--accelerate-config", "ddp"]) == 2
    assert "unknown launcher" in capsys.readouterr().err
    not_accelerate = tmp_path / "x.yaml"
    not_accelerate.write_text("distributed_type: QUANTUM\n")
    assert main(["reward", "--launcher", "accelerate", "--accelerate-config", str(not_accelerate)]) == 2
    assert "is not an accelerate config" in capsys.readouterr().err
    with pytest.raises(HarnessError, match="does not exist"):
        launch.resolve_config(tmp_path / "missing.yaml")


@pytest.mark.slow
def test_sft_relaunched_under_accelerate_on_two_cpu_processes(tmp_path, prepared_data, monkeypatch):
    """A real launch: two CPU processes (gloo) train one SFT run; only the main process writes."""
    config = tmp_path / "multi_cpu.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_CPU\nnum_machines: 1\n"
                      "machine_rank: 0\nnum_processes: 2\nmain_training_function: main\nmixed_precision: 'no'\n"
                      "rdzv_backend: static\nsame_network: true\nuse_cpu: true\n")
    monkeypatch.chdir(tmp_path)
    code = main(["sft", "--launcher", "accelerate", "--accelerate-config", str(config), "model.base=builtin:tiny-random",
                 f"sft.data_dir={prepared_data}", "sft.max_steps=3", "sft.eval_every=100", "run.id=ddp"])
    assert code == 0
    result = json.loads((tmp_path / "runs" / "ddp" / "sft" / "result.json").read_text())
    assert result["status"] == "complete" and result["metrics"]["global_step"] == 3
    assert result["metrics"]["trainable_tensors_changed"] > 0
    leftovers = [p.name for p in (tmp_path / "runs" / "ddp" / "sft").iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers  # no staged folders from the other process


def test_vllm_arguments_for_base_and_adapter(tmp_path):
    cfg = load_config(None, ["eval.backend=vllm", "eval.vllm.tensor_parallel_size=2", "eval.max_length=2048"]).eval
    base = resolve("builtin:tiny-random")
    args = vllm_model_args(base, cfg)
    assert args["pretrained"] == base.location and "lora_local_path" not in args
    assert (args["tensor_parallel_size"], args["max_model_len"], args["gpu_memory_utilization"]) == (2, 2048, 0.9)
    adapter = random_adapter(tmp_path / "adapter")
    args = vllm_model_args(resolve(str(adapter)), cfg)
    assert args["pretrained"] == base.location and args["lora_local_path"] == str(adapter)
    assert args["max_lora_rank"] == 8 and args["tokenizer"] == str(adapter)


def test_vllm_backend_without_vllm_is_one_clear_error(tmp_path, capsys):
    pytest.importorskip("torch")
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    code = main(["eval", "-m", "builtin:tiny-random", "-s", "retention/general_knowledge", "--output", str(tmp_path / "out"),
                 "eval.backend=vllm"])
    assert code == 2 and "vllm package is not installed" in capsys.readouterr().err
    assert not Path(tmp_path / "out").exists()
