"""Fold an adapter into its base model: the zero-added-latency serving path.

``run(config) -> MergeResult`` loads base + adapter, scores a fixed probe batch, merges with PEFT's
``merge_and_unload``, scores the probe again and refuses to write the merged model if any logit moved
by more than ``merge.atol``. The merged folder is plain safetensors plus the tokenizer.

An adapter trained on a 4-bit base (QLoRA) is merged into the full-precision base, which is not the
model it was trained with: the 4-bit base + adapter is scored on the probe too, and the largest logit
difference to the merged model is warned about and recorded (``four_bit_drift`` in
``harness_merge.json``), not refused: that drift is the known price of serving a QLoRA model merged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness import log as _log
from harness.artifacts import atomic_write_json, sha256_tree, staged_dir, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.models import ADAPTER_META, REFT_CONFIG, ModelSpec, load_model, load_tokenizer, resolve

__all__ = ["MergeResult", "run", "merge_adapter", "PROBE_TEXTS"]

PROBE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "How many days of paid time off carry over into the next year?",
    "Water boils at 100 degrees Celsius at sea level.",
)
_MERGEABLE = ("LORA", "IA3")


@dataclass(frozen=True)
class MergeResult:
    output: Path
    max_abs_diff: float
    four_bit_drift: float | None = None  # QLoRA adapters: merged vs 4-bit base + adapter, largest logit difference


def _probe_logits(model, tokenizer):
    import torch

    batch = tokenizer(list(PROBE_TEXTS), return_tensors="pt", padding=True).to(model.device)
    with torch.no_grad():
        logits = model(**batch).logits.float().cpu()
    return logits, batch["attention_mask"].bool().cpu()


def _trained_on_4bit(adapter: Path, spec: ModelSpec) -> bool:
    """Whether the adapter was trained on a 4-bit base: the harness wrote method qlora beside it, or the
    base model folder itself is stored 4-bit."""
    meta = adapter / ADAPTER_META
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")).get("method") == "qlora":
        return True
    config = Path(spec.base_spec.location) / "config.json"
    if spec.base_spec.kind in ("local", "builtin") and config.is_file():
        quant = json.loads(config.read_text(encoding="utf-8")).get("quantization_config") or {}
        return bool(quant.get("load_in_4bit") or quant.get("_load_in_4bit"))
    return False


def _four_bit_drift(spec: ModelSpec, task: str, tokenizer, merged_logits, mask) -> float:
    """Largest probe logit difference between the 4-bit base + adapter (the model QLoRA trained) and the
    merged full-precision model."""
    import torch

    from rlhf.methods import four_bit_config

    device_map = {"": 0} if torch.cuda.is_available() else "cpu"  # bitsandbytes' 4-bit layers run on CPU too
    quantized = load_model(spec, quantization_config=four_bit_config(), device_map=device_map, task=task).eval()
    if task != "causal-lm":
        quantized.config.pad_token_id = tokenizer.pad_token_id
    logits, _ = _probe_logits(quantized, tokenizer)
    gap = (logits - merged_logits).abs()
    return float(gap[mask].max()) if task == "causal-lm" else float(gap.max())


def run(config: CycleConfig) -> MergeResult:
    cfg = config.merge
    adapter = cfg.adapter if cfg.adapter is not None else config.layout().adapter("sft")
    output = cfg.output if cfg.output is not None else config.layout().merged
    return merge_adapter(Path(adapter), Path(output), atol=cfg.atol, trust_remote_code=config.model.trust_remote_code)


def merge_adapter(adapter: Path, output: Path, *, atol: float = 1e-4, trust_remote_code: bool = False) -> MergeResult:
    """Merge ``adapter`` into its base and write ``output``; refuses if the logits move by more than ``atol``."""
    import torch

    if (Path(adapter) / REFT_CONFIG).is_file():
        raise HarnessError(f"{adapter} holds ReFT interventions, which cannot be merged: they edit the hidden states "
                           "between blocks at run time, and no change of the base weights does the same",
                           hint="serve them as they are: every harness command accepts the ReFT folder as a model")
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise HarnessError(f"{adapter} is not an adapter folder (no adapter_config.json)",
                           hint="pass --adapter runs/<id>/sft/adapter; full and freeze runs need no merge")
    adapter_config = json.loads((Path(adapter) / "adapter_config.json").read_text())
    peft_type = adapter_config["peft_type"]
    if peft_type not in _MERGEABLE:
        raise HarnessError(
            f"{peft_type} adapters cannot be merged into the base weights (they add tokens or modules at run time)",
            hint="serve them as base + adapter: every harness command accepts the adapter folder as a model",
        )
    if output.exists() and any(output.iterdir()):
        raise HarnessError(f"output folder {output} is not empty", hint="choose another --output or remove it")
    task = "sequence-classification" if adapter_config.get("task_type") == "SEQ_CLS" else "causal-lm"
    spec = resolve(str(adapter), trust_remote_code=trust_remote_code)
    _log.info(f"merging {spec.describe()}")
    tokenizer = load_tokenizer(spec)
    model = load_model(spec, dtype=torch.float32, task=task).eval()
    if task != "causal-lm":
        model.config.pad_token_id = tokenizer.pad_token_id
    before, mask = _probe_logits(model, tokenizer)
    merged = model.merge_and_unload()
    after, _ = _probe_logits(merged, tokenizer)
    diff = float((before - after).abs()[mask].max()) if task == "causal-lm" else float((before - after).abs().max())
    if diff > atol:
        raise HarnessError(
            f"the merged model's logits differ from base+adapter by up to {diff:.2e} (allowed {atol:.0e}); nothing written",
            hint="raise merge.atol only if you accept that difference",
        )
    on_4bit = _trained_on_4bit(Path(adapter), spec)
    drift = None
    if on_4bit:
        try:
            drift = _four_bit_drift(spec, task, tokenizer, after, mask)
        except Exception as exc:  # noqa: BLE001  (no 4-bit backend here, or no memory for a third model)
            _log.warn(f"this adapter was trained on a 4-bit (QLoRA) base; the merge folds it into the full-precision "
                      f"base, a known source of drift, which could not be measured here ({type(exc).__name__}: {exc}); "
                      "evaluate the merged model before serving it")
    if drift is not None:
        _log.warn(f"this adapter was trained on a 4-bit (QLoRA) base, and the merge folds it into the full-precision "
                  f"base: the merged model's logits differ from 4-bit base + adapter (the model trained and validated) "
                  f"by up to {drift:.2e} on the probe texts; evaluate the merged model before serving it, or serve "
                  f"the adapter on the 4-bit base")
    with staged_dir(output) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "harness_merge.json", {
            "adapter": str(adapter), "adapter_sha256": sha256_tree(adapter), "base": spec.base.ref,
            "base_location": spec.base.location, "max_abs_logit_diff": diff, "atol": atol, "task": task,
            "trained_on_4bit": on_4bit, "four_bit_drift": drift, "merged": utc_now(),
        })
    _log.done(f"merged model written to {output} (largest logit difference {diff:.1e})")
    return MergeResult(output, diff, drift)
