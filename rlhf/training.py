"""What the training stages share: the precision to train in, and the metrics stream every trainer
writes (``metrics.jsonl``, one JSON object per log event)."""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["resolve_precision", "MetricsLogger"]


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, method: str = "lora") -> str:
    """``auto`` -> bf16 where the hardware computes it natively, else fp32."""
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if method == "qlora":
        return "fp32"  # bitsandbytes' CPU 4-bit kernels compute in fp32
    return "bf16" if _cpu_has_native_bf16() else "fp32"


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
