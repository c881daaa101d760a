"""Supervised fine-tuning on TRL's ``SFTTrainer`` with any tuning method.

``run(config) -> SFTResult`` reads a prepared data folder (``harness.data``), tokenizes chats with
assistant-only loss masks, trains with the method from ``rlhf.methods``, validates before training,
during it (each epoch or every N steps, with early stopping) and after it, and writes

``<run>/sft/adapter/`` (or ``model/`` for full/freeze), ``metrics.jsonl``, ``result.json``, and the
run's ``manifest.json`` entry. Checkpoints under ``<run>/sft/checkpoints/`` let ``resume=True`` carry
on after a crash or kill.

Defaults are chosen for throughput (see ``bench/sft_throughput.py``): padding-free batches (no pad
tokens are computed; transformers builds block-diagonal attention from position ids), no gradient
checkpointing for small models, and bf16 autocast where the hardware supports it natively.
"""

from __future__ import annotations

import json
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
    ARTIFACT_VERSION, atomic_write_json, read_json, read_jsonl, sha256_tree, stable_hash, staged_dir,
    update_manifest, utc_now,
)
from harness.config import CycleConfig
from harness.data import load_prepared
from harness.errors import HarnessError
from harness.models import ADAPTER_META, load_model, load_tokenizer, resolve
from rlhf import _stage, methods
from rlhf._chat import tokenize_chat
from rlhf.training import MetricsLogger, quiet, resolve_precision

__all__ = ["SFTResult", "run", "resolve_precision", "MetricsLogger", "build_training_args"]


@dataclass(frozen=True)
class SFTResult:
    output_dir: Path
    model_path: Path  # adapter folder (adapter methods) or full model folder
    metrics: dict[str, Any] = field(default_factory=dict)
    up_to_date: bool = False


def _trim_metrics(path: Path, max_step: int) -> None:
    """After a resume, drop log lines the killed run wrote past the checkpoint we resume from."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= max_step]
    from harness.artifacts import atomic_write_text

    atomic_write_text(path, "".join(line + "\n" for line in keep))


def _tokenize_rows(rows: list[dict], tokenizer: Any, max_length: int, assistant_only: bool) -> tuple[list[dict], dict]:
    out, truncated, empty = [], 0, 0
    for row in rows:
        enc = tokenize_chat(tokenizer, row["messages"], max_length, assistant_only)
        if not any(enc["assistant_masks"]):
            empty += 1  # truncation cut every assistant token: nothing to learn from
            continue
        truncated += enc["truncated"]
        out.append({"input_ids": enc["input_ids"], "assistant_masks": enc["assistant_masks"]})
    return out, {"records": len(rows), "kept": len(out), "truncated": truncated, "dropped_no_target": empty,
                 "tokens": sum(len(r["input_ids"]) for r in out),
                 "target_tokens": sum(sum(r["assistant_masks"]) for r in out)}


def build_training_args(cfg: Any, *, output_dir: Path, seed: int, precision: str, learning_rate: float,
                        has_validation: bool = True):
    """The TRL ``SFTConfig`` for our ``sft`` section."""
    import torch
    from trl import SFTConfig as TRLSFTConfig

    if cfg.eval_every == "epoch":
        strategy: dict[str, Any] = {"eval_strategy": "epoch", "save_strategy": "epoch"}
    else:
        strategy = {"eval_strategy": "steps", "save_strategy": "steps",
                    "eval_steps": cfg.eval_every, "save_steps": cfg.eval_every}
    if not has_validation:
        strategy["eval_strategy"] = "no"
    packing = cfg.packing
    return TRLSFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of total steps in transformers 5
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        activation_checkpointing=cfg.gradient_checkpointing,  # transformers 5 name of gradient checkpointing
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=has_validation,
        metric_for_best_model="eval_loss" if has_validation else None,
        greater_is_better=False,
        report_to=[],
        # Data arrives tokenized, masked and truncated (rlhf._chat): TRL builds labels from the masks.
        assistant_only_loss=False,
        completion_only_loss=False,
        padding_free=packing == "padding_free",
        packing=packing == "bfd",
        packing_strategy="bfd",
        max_length=cfg.max_length if packing == "bfd" else None,
        dataset_num_proc=None,
        remove_unused_columns=True,
        **strategy,
    )


def _fingerprint(config: CycleConfig, data_card: dict) -> str:
    sft = config.sft.model_dump(mode="json", exclude={"data_dir", "logging_steps", "save_total_limit"})
    return stable_hash({"sft": sft, "model": config.model.model_dump(mode="json"), "seed": config.run.seed,
                        "data": data_card.get("outputs")})


def _check_output(out: Path, fingerprint: str, *, resume: bool, force: bool) -> dict | None:
    """Return an earlier complete result to reuse, or None to train; refuse to mix different runs."""
    result_path, state_path = out / "result.json", out / "run_state.json"
    if force and out.exists():
        shutil.rmtree(out)
        return None
    if result_path.is_file():
        old = artifact_dict(result_path, TrainingResult)
        if old.get("fingerprint") == fingerprint and old.get("status") == "complete":
            return old
    if state_path.is_file():
        state = read_json(state_path)
        if state.get("fingerprint") != fingerprint:
            raise HarnessError(
                f"{out} already holds a different fine-tuning run (other config, model or data)",
                hint="use another run.id, or pass --force to replace it",
            )
        if not resume and any((out / "checkpoints").glob("checkpoint-*")):
            raise HarnessError(
                f"{out} holds an unfinished run of this same config",
                hint="pass --resume to continue from its last checkpoint, or --force to start over",
            )
    elif out.exists() and any(out.iterdir()):
        raise HarnessError(f"{out} is not empty and is not a harness fine-tuning run",
                           hint="use another run.id, or remove the folder")
    return None


def run(config: CycleConfig, *, resume: bool = False, force: bool = False, out: Path | None = None,
        manifest_key: str = "sft") -> SFTResult:
    """Fine-tune ``config.model.base`` on prepared data with ``config.sft``; see the module docstring.
    ``out``/``manifest_key``: another output folder and manifest entry (one domain's run under ``sft.per_domain``,
    which :mod:`rlhf.per_domain` runs when that is set)."""
    import torch
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    cfg = config.sft
    if cfg.per_domain:  # one adapter per domain, each an ordinary run of this function
        from rlhf import per_domain

        return per_domain.run(config, resume=resume, force=force)
    layout = config.layout()
    run_dir = layout.dir
    data_dir = cfg.data_dir if cfg.data_dir is not None else layout.data
    train_rows, val_rows, card = load_prepared(data_dir)
    out = out if out is not None else layout.stage("sft")
    fingerprint = _fingerprint(config, card)
    previous = _check_output(out, fingerprint, resume=resume, force=force)
    if previous is not None:
        _log.done(f"fine-tuning in {out} is up to date (same model, data and settings)")
        return SFTResult(out, Path(previous["model_path"]), previous["metrics"], up_to_date=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "run_state.json", {"fingerprint": fingerprint, "status": "running", "started": utc_now()})

    spec = resolve(config.model.base, revision=config.model.revision, trust_remote_code=config.model.trust_remote_code)
    if spec.kind == "adapter":
        raise HarnessError(f"model.base '{config.model.base}' is an adapter; fine-tuning needs a full base model",
                           hint="merge it first: harness merge --adapter DIR --output MERGED, then train on MERGED")
    precision = resolve_precision(cfg.precision, cfg.method)
    dtype = torch.float32
    plan = methods.plan(cfg.method, cfg, learning_rate=cfg.learning_rate,
                        compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    _log.info(f"fine-tuning {spec.describe()} with {cfg.method} (precision {precision}, lr {plan.learning_rate:g})")

    tokenizer = load_tokenizer(spec)
    train_tok, train_stats = _tokenize_rows(train_rows, tokenizer, cfg.max_length, cfg.assistant_only_loss)
    val_tok, val_stats = _tokenize_rows(val_rows, tokenizer, cfg.max_length, cfg.assistant_only_loss)
    if not train_tok:
        raise HarnessError(f"no training example keeps an assistant token within sft.max_length={cfg.max_length}",
                           hint="raise sft.max_length")
    _log.info(f"tokenized {train_stats['kept']} training examples ({train_stats['tokens']} tokens, "
              f"{train_stats['truncated']} truncated) and {val_stats['kept']} validation examples")

    log_file = out / "train.log"  # the libraries' own loading and data-preparation bars go here
    with _log.elsewhere(log_file, f"loading the model (details: {log_file})"):
        model = load_model(spec, dtype=dtype, quantization_config=plan.quantization_config,
                           device_map="cpu" if plan.quantization_config is not None and not torch.cuda.is_available() else None)
    if plan.method == "freeze":
        methods.freeze_all_but_last(model, plan.trainable_blocks)
    elif plan.reft is not None:  # LoReFT interventions (harness.reft) on the frozen base; no PEFT
        from harness import reft

        o = plan.reft
        reft.attach(model, rank=o.rank, layers=o.layers, positions=o.positions, dropout=o.dropout)
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still pass gradients on
    model.config.use_cache = False  # a KV cache is useless while training and costs memory

    ckpt_dir = out / "checkpoints"
    args = build_training_args(cfg, output_dir=ckpt_dir, seed=config.run.seed, precision=precision,
                               learning_rate=plan.learning_rate, has_validation=bool(val_tok))
    metrics_path = out / "metrics.jsonl"
    last_ckpt = get_last_checkpoint(str(ckpt_dir)) if resume and ckpt_dir.is_dir() else None
    if last_ckpt:
        step = int(Path(last_ckpt).name.split("-")[-1])
        _trim_metrics(metrics_path, step)
        _log.info(f"resuming from {last_ckpt} (step {step})")
    elif metrics_path.exists():
        metrics_path.unlink()
    callbacks: list[Any] = [MetricsLogger(metrics_path, "sft")]
    if cfg.early_stopping_patience and val_tok:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))

    with _log.elsewhere(log_file, f"preparing the trainer (details: {log_file})"):
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(train_tok),
            eval_dataset=Dataset.from_list(val_tok) if val_tok else None,
            processing_class=tokenizer, peft_config=plan.peft_config, callbacks=callbacks,
        )
    quiet(trainer, "sft")  # before the first validation: no evaluation bars either
    trainable, total = methods.count_parameters(trainer.model)
    quantized = sum(1 for m in trainer.model.modules()
                    if type(m).__name__ == "Linear4bit" and type(m).__module__.startswith("bitsandbytes"))
    before = _stage.snapshot_trainable(trainer.model)

    initial_eval = None
    if val_tok and not last_ckpt:
        initial_eval = trainer.evaluate()["eval_loss"]
        _log.info(f"validation loss before training: {initial_eval:.4f}")
    started = time.perf_counter()
    train_out = trainer.train(resume_from_checkpoint=last_ckpt)
    elapsed = time.perf_counter() - started
    final_eval = trainer.evaluate()["eval_loss"] if val_tok else None

    changed, unchanged = _stage.changed_tensors(trainer.model, before)
    logs = read_jsonl(metrics_path)
    eval_curve = [{"step": r["step"], "eval_loss": r["eval_loss"]} for r in logs if "eval_loss" in r]
    tokens_seen = max((r.get("num_tokens", 0) for r in logs), default=0)
    loss = train_out.training_loss
    if not math.isfinite(loss):
        raise HarnessError(f"training diverged: the loss is {loss}",
                           hint="lower sft.learning_rate, or use precision fp32")

    final_name = "adapter" if plan.is_adapter or plan.reft is not None else "model"
    with staged_dir(out / final_name) as tmp:
        if plan.reft is not None:  # the interventions only, not the frozen base
            from harness import reft

            reft.save(trainer.model, tmp)
        else:
            trainer.model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if final_name == "adapter":
            atomic_write_json(tmp / ADAPTER_META, {"base": config.model.base, "method": plan.method,
                                                   "base_location": spec.location})
    model_path = out / final_name
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = {
        "train_loss": loss, "global_step": train_out.global_step, "epochs": trainer.state.epoch,
        "eval_loss_initial": initial_eval, "eval_loss_final": final_eval,
        "eval_loss_best": trainer.state.best_metric, "eval_curve": eval_curve,
        "train_seconds": round(elapsed, 2), "tokens_seen": tokens_seen,
        "tokens_per_second": round(tokens_seen / elapsed, 1) if elapsed > 0 and tokens_seen else None,
        "trainable_parameters": trainable, "total_parameters": total, "quantized_4bit_modules": quantized,
        "trainable_tensors_changed": changed, "trainable_tensors": len(before), "unchanged_tensors": unchanged,
        "peak_rss_mb": round(peak_rss_mb, 1), "resumed_from": last_ckpt,
        "tokenization": {"train": train_stats, "validation": val_stats},
    }
    if torch.cuda.is_available():
        metrics["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    result = {
        "schema_version": ARTIFACT_VERSION, "kind": "sft_result", "status": "complete", "finished": utc_now(),
        "fingerprint": fingerprint, "method": plan.method, "precision": precision,
        "learning_rate": plan.learning_rate, "base_model": config.model.base, "base_location": spec.location,
        "model_path": str(model_path), "model_kind": final_name, "model_sha256": sha256_tree(model_path),
        "data_dir": str(data_dir), "metrics": metrics,
    }
    write_artifact(out / "result.json", result, TrainingResult)
    atomic_write_json(out / "run_state.json", {"fingerprint": fingerprint, "status": "complete", "finished": utc_now()})
    update_manifest(run_dir, manifest_key, {
        "config": cfg.model_dump(mode="json"), "model": config.model.model_dump(mode="json"),
        "seed": config.run.seed, "fingerprint": fingerprint, "data_dir": str(data_dir),
        "data_outputs": card.get("outputs"), "result": str(out / "result.json"),
    })
    shown = f"{final_eval:.4f}" if final_eval is not None else "n/a"
    init = f"{initial_eval:.4f} -> " if initial_eval is not None else ""
    _log.done(f"fine-tuned in {elapsed:.0f}s: train loss {loss:.4f}, validation loss {init}{shown}; saved {model_path}")
    return SFTResult(out, model_path, metrics)
