"""What the training stages share: the precision to train in, and the metrics stream every trainer
writes (``metrics.jsonl``, one JSON object per log event)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.models import native_bf16

__all__ = ["resolve_precision", "MetricsLogger", "StageProgress", "quiet"]


def resolve_precision(precision: str, method: str = "lora") -> str:
    """``auto`` -> bf16 where the hardware computes it natively, else fp32."""
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if method == "qlora":
        return "fp32"  # bitsandbytes' CPU 4-bit kernels compute in fp32
    return "bf16" if native_bf16() else "fp32"


def _transformers_callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class MetricsLogger(_transformers_callback_base()):
    """Stream every logged metric to ``metrics.jsonl`` (one JSON object per log event, MLflow-style)."""

    def __init__(self, path: Path, stage: str):
        self.path = path
        self.stage = stage

    def on_step_end(self, args, state, control, **kwargs):
        # Log the last step too, so token counts and losses cover the whole run.
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_log = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        row = {"stage": self.stage, "step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
               "time": round(time.time(), 3)}
        row.update({k: (float(v) if isinstance(v, (int, float)) else v) for k, v in logs.items()})
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


class StageProgress(_transformers_callback_base()):
    """One progress line per training stage in the terminal (steps, latest loss); the trainer's raw log
    dicts go to ``metrics.jsonl`` only (``MetricsLogger``), not to the screen."""

    def __init__(self, stage: str):
        self.stage = stage
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from harness.log import console

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[loss]}"), console=console)
        self.task = self.progress.add_task(f"{self.stage}: training steps", total=state.max_steps or None, loss="")
        self.progress.start()

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if self.progress is not None and isinstance(loss, (int, float)):
            self.progress.update(self.task, loss=f"loss {loss:.3f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()
            self.progress = None


def quiet(trainer, stage: str):
    """Replace the trainer's own console output (tqdm bars, printed log dicts) by one progress line."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StageProgress(stage))
    return trainer
