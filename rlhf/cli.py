"""The training stages' commands: harness sft, merge, reward, dpo, online (registered through the
``harness.commands`` entry point)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from harness.cliutil import (
    AccelerateConfigOpt, ConfigOpt, LauncherOpt, NumProcessesOpt, OverridesArg, load, maybe_relaunch, model_ref,
    run_writer, stage_overrides, with_run_id,
)

__all__ = ["register"]


def sft(
    config: Optional[Path] = ConfigOpt,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model reference (overrides model.base)."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Prepared data folder (overrides sft.data_dir)."),
    resume: bool = typer.Option(False, help="Continue an unfinished run from its last checkpoint."),
    force: bool = typer.Option(False, help="Discard an earlier run in the same folder and start over."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Supervised fine-tuning with full, lora, qlora, dora, prefix, ia3 or freeze."""
    from rlhf import sft as sft_stage

    extra = list(overrides or [])
    if model:
        extra.append(f"model.base={model}")
    if data:
        extra.append(f"sft.data_dir={data.resolve()}")
    cfg = with_run_id(load(config, extra))
    with run_writer(cfg):  # held by this process while launched ranks run, if any
        maybe_relaunch("sft", launcher, accelerate_config, num_processes)
        result = sft_stage.run(cfg, resume=resume, force=force)
    m = result.metrics
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "train_loss": m.get("train_loss"), "eval_loss_initial": m.get("eval_loss_initial"),
                      "eval_loss_final": m.get("eval_loss_final"), "up_to_date": result.up_to_date}, indent=2))


def merge(
    config: Optional[Path] = ConfigOpt,
    adapter: Optional[Path] = typer.Option(None, "--adapter", "-a", help="Adapter folder (default: <run>/sft/adapter)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Merged model folder (default: <run>/merged)."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Fold a LoRA/DoRA/IA3 adapter into its base and check the logits match base+adapter."""
    from rlhf import merge as merge_stage

    extra = list(overrides or [])
    if adapter:
        extra.append(f"merge.adapter={adapter.resolve()}")
    if output:
        extra.append(f"merge.output={output}")
    cfg = load(config, extra)
    with run_writer(cfg):
        result = merge_stage.run(cfg)
    print(json.dumps({"output": str(result.output), "max_abs_logit_diff": result.max_abs_diff}, indent=2))



def reward(
    config: Optional[Path] = ConfigOpt,
    preferences: Optional[Path] = typer.Option(None, "--preferences", "-p", help="Preference pairs JSONL (overrides reward.preferences)."),
    force: bool = typer.Option(False, help="Discard an earlier reward model of this run and train again."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Train a reward model (LoRA + score head) on reviewers' preference pairs."""
    from rlhf import reward as reward_stage

    cfg = with_run_id(load(config, stage_overrides(overrides, "reward", preferences=preferences)))
    with run_writer(cfg):  # held by this process while launched ranks run, if any
        maybe_relaunch("reward", launcher, accelerate_config, num_processes)
        result = reward_stage.run(cfg, force=force)
    held = result.metrics.get("heldout") or {}
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "train_loss": result.metrics.get("train_loss"), "heldout_accuracy": held.get("accuracy"),
                      "heldout_ci": [held.get("ci_low"), held.get("ci_high")], "up_to_date": result.up_to_date}, indent=2))


def dpo(
    config: Optional[Path] = ConfigOpt,
    policy: Optional[str] = typer.Option(None, "--policy", help="Adapter or model to start from (overrides dpo.policy)."),
    preferences: Optional[Path] = typer.Option(None, "--preferences", "-p", help="Preference pairs JSONL (overrides dpo.preferences)."),
    force: bool = typer.Option(False, help="Discard an earlier DPO run of this run id and train again."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Preference-tune the policy with DPO (or KTO: dpo.objective=kto); the reference is the starting policy."""
    from rlhf import dpo as dpo_stage

    extra = stage_overrides(overrides, "dpo", preferences=preferences)
    if policy:
        extra.append(f"dpo.policy={model_ref(policy)}")
    cfg = with_run_id(load(config, extra))
    with run_writer(cfg):  # held by this process while launched ranks run, if any
        maybe_relaunch("dpo", launcher, accelerate_config, num_processes)
        result = dpo_stage.run(cfg, force=force)
    m = result.metrics
    train, held = m.get("train") or {}, (m.get("heldout") or {}).get("implicit_reward") or {}
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "train_loss": m.get("train_loss"), "train_logp_margin_change": train.get("logp_margin_change"),
                      "heldout_preference_accuracy": held.get("accuracy"), "up_to_date": result.up_to_date}, indent=2))


def online(
    config: Optional[Path] = ConfigOpt,
    policy: Optional[str] = typer.Option(None, "--policy", help="Adapter or model to start from (overrides online.policy)."),
    reward_model: Optional[str] = typer.Option(None, "--reward-model", help="Reward model adapter, or 'none' (overrides online.reward_model)."),
    force: bool = typer.Option(False, help="Discard an earlier online RL run of this run id and train again."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Online RL (PPO family: GRPO or RLOO) against the reward model, with a KL leash and ceiling."""
    from rlhf import online as online_stage

    extra = list(overrides or [])
    if policy:
        extra.append(f"online.policy={model_ref(policy)}")
    if reward_model:
        extra.append(f"online.reward_model={model_ref(reward_model)}")
    cfg = with_run_id(load(config, extra))
    with run_writer(cfg):  # held by this process while launched ranks run, if any
        maybe_relaunch("online", launcher, accelerate_config, num_processes)
        result = online_stage.run(cfg, force=force)
    m = result.metrics
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "steps": m.get("global_step"), "reward": m.get("reward"), "kl": m.get("kl"),
                      "stopped_by_kl_ceiling": m.get("stopped_by_kl_ceiling"), "up_to_date": result.up_to_date}, indent=2))




def register(app: typer.Typer) -> None:
    for command in (sft, merge, reward, dpo, online):
        app.command()(command)
