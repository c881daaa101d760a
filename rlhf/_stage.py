"""What the preference stages (reward, dpo, online) share: output folders, training arguments,
parameter-change checks, saving adapters, merging, and the result/manifest artifacts."""

from __future__ import annotations

import math
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.schemas import TrainingResult, artifact_dict, write_artifact
from harness.artifacts import (
    ARTIFACT_VERSION, atomic_write_json, read_json, sha256_tree, staged_dir, update_manifest, utc_now,
)
from harness.errors import HarnessError
from harness.layout import RunLayout
from rlhf.training import quiet
from harness.models import ADAPTER_META

__all__ = ["StageResult", "Trained", "check_output", "common_args", "default_policy", "train", "snapshot_trainable",
           "changed_tensors", "save_adapter", "merge_into", "write_result", "finite_or_fail", "peak_memory",
           "reset_peak_memory"]


@dataclass(frozen=True)
class StageResult:
    """What ``run`` of a preference stage returns."""

    output_dir: Path
    model_path: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    up_to_date: bool = False


def default_policy(policy: str | None, layout: RunLayout, stage: str) -> str:
    """``<stage>.policy``, or the run's SFT adapter, which must then exist."""
    ref = policy or str(layout.adapter("sft"))
    if policy is None and not Path(ref).is_dir():
        raise HarnessError(f"no SFT adapter at {ref} to start from",
                           hint=f"run 'harness sft' first, or set {stage}.policy to an adapter or model")
    return ref


def check_output(out: Path, fingerprint: str, *, stage: str, force: bool) -> dict | None:
    """Return an earlier complete result with the same fingerprint, or None to train.

    A folder holding another run of the stage is never overwritten silently (``--force`` replaces it).
    """
    result_path = out / "result.json"
    if force and out.exists():
        shutil.rmtree(out)
        return None
    if result_path.is_file():
        old = artifact_dict(result_path, TrainingResult)
        if old.get("fingerprint") == fingerprint and old.get("status") == "complete":
            return old
        raise HarnessError(f"{out} already holds a different {stage} run (other settings, model or data)",
                           hint="use another run.id, or pass --force to replace it")
    if out.exists() and any(out.iterdir()):
        state = out / "run_state.json"
        if state.is_file() and read_json(state).get("fingerprint") == fingerprint:
            shutil.rmtree(out)  # an interrupted attempt of this same run: start it again
            return None
        raise HarnessError(f"{out} is not empty and is not a finished {stage} run of these settings",
                           hint="use another run.id, or pass --force to replace it")
    return None


def seed_of(config: Any, cfg: Any) -> int:
    """A preference stage's seed: its own ``seed`` when set, else ``run.seed``."""
    return config.run.seed if cfg.seed is None else cfg.seed


def common_args(cfg: Any, *, output_dir: Path, seed: int, precision: str, learning_rate: float) -> dict[str, Any]:
    """TrainingArguments shared by every TRL config we build (the stage adds its own)."""
    import torch

    return dict(
        output_dir=str(output_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=learning_rate, lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of total steps in transformers 5
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=not torch.cuda.is_available(),
        seed=seed, data_seed=seed, logging_steps=cfg.logging_steps, logging_first_step=True,
        save_strategy="no", report_to=[], activation_checkpointing=False,
    )


@dataclass(frozen=True)
class Trained:
    loss: float
    steps: int
    seconds: float
    metrics: dict[str, Any]  # parameter counts, which trainable tensors changed, peak memory


def train(trainer: Any, stage: str, label: str | None = None) -> Trained:
    """Run ``trainer.train()`` and check what every stage checks: a finite loss, which trainable
    tensors changed, the peak memory of the training itself. ``label`` names the progress line when a
    stage trains more than once (default: the stage)."""
    from rlhf.methods import count_parameters

    trainable, total = count_parameters(trainer.model)
    before = snapshot_trainable(trainer.model)
    reset_peak_memory()
    quiet(trainer, label or stage)
    started = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - started
    memory = peak_memory()
    if out.global_step == 0:  # a stage that trained nothing must not pass its starting model off as trained
        examples = len(trainer.train_dataset) if trainer.train_dataset is not None else 0
        raise HarnessError(f"{stage} trained 0 steps: its {examples} training examples do not fill one batch",
                           hint=f"lower {stage}.batch_size (and {stage}.gradient_accumulation_steps), or give it more data")
    finite_or_fail(out.training_loss, stage)
    changed, unchanged = changed_tensors(trainer.model, before)
    return Trained(out.training_loss, out.global_step, seconds, {
        "trainable_parameters": trainable, "total_parameters": total, "trainable_tensors_changed": changed,
        "trainable_tensors": len(before), "unchanged_tensors": unchanged, **memory})


def snapshot_trainable(model: Any) -> dict[str, Any]:
    return {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}


def changed_tensors(model: Any, before: dict[str, Any]) -> tuple[int, list[str]]:
    """``(changed, unchanged_names)`` among the tensors that were trainable at the snapshot."""
    import torch

    params = dict(model.named_parameters())
    unchanged = [n for n, old in before.items() if n in params and torch.equal(old, params[n].detach().float())]
    return len(before) - len(unchanged), unchanged


def finite_or_fail(loss: float, stage: str) -> None:
    if not math.isfinite(loss):
        raise HarnessError(f"{stage} training diverged: the loss is {loss}",
                           hint=f"lower {stage}.learning_rate, or use {stage}.precision: fp32")


def save_adapter(model: Any, tokenizer: Any, dest: Path, meta: dict[str, Any]) -> Path:
    """Save the trained ("default") adapter only: the frozen "ref" copy TRL adds is not part of the result."""
    with staged_dir(dest) as tmp:
        kw = {"selected_adapters": ["default"]} if "ref" in getattr(model, "peft_config", {}) else {}
        model.save_pretrained(tmp, safe_serialization=True, **kw)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / ADAPTER_META, meta)
    return dest


def merge_into(adapter: Path, output: Path, *, trust_remote_code: bool, atol: float = 1e-4) -> Path:
    """Write base + adapter folded into one model (checked against base + adapter), for ``merge: true``."""
    from rlhf.merge import merge_adapter

    return merge_adapter(adapter, output, atol=atol, trust_remote_code=trust_remote_code).output


def reset_peak_memory() -> None:
    """Start a stage's GPU peak from zero (the process RSS peak cannot be reset)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, float]:
    """Peak memory after training: the process's RSS peak so far (it includes earlier work in the
    same process) and, on a GPU, the stage's own peak CUDA allocation."""
    import torch

    out = {"process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def write_result(out: Path, run_dir: Path, *, stage: str, fingerprint: str, model_path: Path,
                 config: dict[str, Any], inputs: dict[str, Any], metrics: dict[str, Any],
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``<stage>/result.json`` plus the run manifest entry, written last (their presence means complete)."""
    shutil.rmtree(out / "checkpoints", ignore_errors=True)  # trainer scratch: these stages save no checkpoints
    result = {
        "schema_version": ARTIFACT_VERSION, "kind": f"{stage}_result", "status": "complete", "finished": utc_now(),
        "fingerprint": fingerprint, "model_path": str(model_path), "model_sha256": sha256_tree(model_path),
        "inputs": inputs, "metrics": metrics, **(extra or {}),
    }
    write_artifact(out / "result.json", result, TrainingResult)
    atomic_write_json(out / "run_state.json", {"fingerprint": fingerprint, "status": "complete", "finished": utc_now()})
    update_manifest(run_dir, stage, {"config": config, "fingerprint": fingerprint, "inputs": inputs,
                                     "result": str(out / "result.json")})
    return result


def log_up_to_date(stage: str, out: Path) -> None:
    _log.done(f"{stage} in {out} is up to date (same model, data and settings)")
