"""Tuning methods: one config key -> a PEFT config, a quantization config, or a freezing rule.

``full``   every weight trains.
``lora``   low-rank adapters on all linear layers (PEFT ``LoraConfig``).
``dora``   weight-decomposed LoRA (``use_dora=True``).
``qlora``  LoRA on a 4-bit NF4 base (bitsandbytes ``BitsAndBytesConfig``).
``prefix`` prefix tuning (``PrefixTuningConfig``): trained virtual key/value tokens.
``ia3``    IA3 adapters (``IA3Config``): learned rescaling vectors.
``freeze`` full weights, but only the last N transformer blocks (and the final norm) train.
``reft``   LoReFT interventions on hidden states (``harness.reft``); the base is frozen, no PEFT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

__all__ = ["MethodPlan", "plan", "freeze_all_but_last", "count_parameters", "DEFAULT_LR", "transformer_blocks",
           "four_bit_config"]

DEFAULT_LR = {"full": 2e-5, "freeze": 2e-5, "lora": 2e-4, "dora": 2e-4, "qlora": 2e-4, "prefix": 1e-2, "ia3": 1e-2,
              "reft": 2e-3}


@dataclass
class MethodPlan:
    method: str
    peft_config: Any = None
    quantization_config: Any = None
    trainable_blocks: int | None = None  # for freeze
    reft: Any = None  # for reft: the sft.reft options
    learning_rate: float = 2e-4

    @property
    def is_adapter(self) -> bool:
        return self.peft_config is not None


def plan(method: str, options: Any, *, task_type: str = "CAUSAL_LM", learning_rate: float | None = None,
         compute_dtype: Any = None) -> MethodPlan:
    """Build the plan for ``method``; ``options`` is an ``SFTConfig``-like object with lora/prefix/freeze."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig

    lr = learning_rate or DEFAULT_LR[method]
    if method == "full":
        return MethodPlan(method, learning_rate=lr)
    if method == "freeze":
        return MethodPlan(method, trainable_blocks=options.freeze.trainable_blocks, learning_rate=lr)
    if method == "reft":
        return MethodPlan(method, reft=options.reft, learning_rate=lr)
    if method in ("lora", "dora", "qlora"):
        lo = options.lora
        targets = lo.target_modules if lo.target_modules == "all-linear" else list(lo.target_modules)
        peft_config = LoraConfig(
            r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=targets,
            use_dora=method == "dora", task_type=task_type, bias="none",
        )
        quant = four_bit_config(compute_dtype) if method == "qlora" else None
        return MethodPlan(method, peft_config=peft_config, quantization_config=quant, learning_rate=lr)
    if method == "prefix":
        return MethodPlan(method, peft_config=PrefixTuningConfig(
            num_virtual_tokens=options.prefix.num_virtual_tokens, task_type=task_type), learning_rate=lr)
    if method == "ia3":
        return MethodPlan(method, peft_config=IA3Config(task_type=task_type), learning_rate=lr)
    raise HarnessError(f"unknown tuning method '{method}'",
                       hint="one of: full, lora, qlora, dora, prefix, ia3, freeze, reft")


def four_bit_config(compute_dtype: Any = None):
    """The 4-bit NF4 quantization QLoRA trains on (``rlhf.merge`` reloads a base this way to measure drift)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype or torch.float32)


def transformer_blocks(model: Any):
    """The model's list of transformer blocks (the longest ModuleList named like layers/h/blocks)."""
    from harness.reft import find_blocks

    return find_blocks(model, hint="use method lora or full for this architecture")


def freeze_all_but_last(model: Any, n: int) -> list[str]:
    """Freeze every parameter except the last ``n`` blocks and the final norm; return trained names."""
    name, blocks = transformer_blocks(model)
    if n > len(blocks):
        raise HarnessError(f"sft.freeze.trainable_blocks is {n} but the model has only {len(blocks)} blocks",
                           hint=f"use a value from 1 to {len(blocks)}")
    for p in model.parameters():
        p.requires_grad_(False)
    trained = []
    for i in range(len(blocks) - n, len(blocks)):
        for pname, p in blocks[i].named_parameters():
            p.requires_grad_(True)
            trained.append(f"{name}.{i}.{pname}")
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    for attr in ("norm", "final_layernorm", "ln_f"):
        norm = getattr(parent, attr, None)
        if norm is not None:
            for pname, p in norm.named_parameters():
                p.requires_grad_(True)
                trained.append(f"{attr}.{pname}")
    return trained


def count_parameters(model: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (4-bit packed weights counted as stored)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
