"""The policy a preference stage starts from: resolving and loading an adapter or model to continue,
its base, and the log-probabilities of responses under it (used by DPO and online RL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.models import ModelSpec, load_model, resolve
from rlhf._chat import render_prompt

__all__ = ["resolve_policy", "load_policy", "adapter_method", "policy_base_ref", "sequence_logps", "reft_unsupported"]


def reft_unsupported(stage: str, ref: str) -> HarnessError:
    """The one error for a preference stage asked to continue ReFT interventions (PEFT cannot load them)."""
    return HarnessError(
        f"{stage} cannot continue {ref}: it holds ReFT interventions (sft.method reft), and the preference stages "
        "(reward, dpo, online) train PEFT adapters; ReFT supports SFT, evaluation, feedback generation, the gate "
        "and promotion only",
        hint=f"train SFT with a PEFT method (sft.method lora) for a cycle with {stage}, or run the cycle without "
             f"preference alignment (cycle.align: []); or set {stage}.policy to a LoRA adapter or a full model")


def resolve_policy(ref: str, stage: str, *, trust_remote_code: bool) -> ModelSpec:
    """Resolve a policy reference; adapters must be LoRA/DoRA causal-LM adapters."""
    spec = resolve(ref, trust_remote_code=trust_remote_code)
    if spec.kind == "reft":
        raise reft_unsupported(stage, ref)
    if spec.kind == "adapter":
        adapter_config = json.loads((Path(spec.location) / "adapter_config.json").read_text())
        if adapter_config.get("peft_type") != "LORA":
            raise HarnessError(
                f"{stage}.policy {ref} is a {adapter_config.get('peft_type')} adapter; preference training continues LoRA/DoRA adapters",
                hint="merge it first (harness merge) and set the merged folder as the policy",
            )
        if adapter_config.get("task_type") == "SEQ_CLS":
            raise HarnessError(f"{stage}.policy {ref} is a reward model, not a policy",
                               hint="use the SFT adapter (runs/<id>/sft/adapter) as the policy")
    return spec


def load_policy(spec: ModelSpec, *, quantization_config: Any = None) -> tuple[Any, bool]:
    """``(model, fresh)``: an adapter policy is loaded trainable (TRL then adds the frozen "ref" copy);
    a full model is loaded as is and ``fresh`` says the trainer must add a new adapter."""
    import torch

    device_map = "cpu" if quantization_config is not None and not torch.cuda.is_available() else None
    if spec.kind == "adapter":
        return load_model(spec, is_trainable=True, quantization_config=quantization_config, device_map=device_map), False
    return load_model(spec, quantization_config=quantization_config, device_map=device_map), True


def adapter_method(spec: ModelSpec) -> str:
    """lora or dora, for an adapter being continued."""
    config = json.loads((Path(spec.location) / "adapter_config.json").read_text())
    return "dora" if config.get("use_dora") else "lora"


def policy_base_ref(spec: ModelSpec) -> str:
    """The base model reference an adapter trained from ``spec`` sits on."""
    if spec.kind != "adapter":
        return spec.ref
    meta = Path(spec.location) / "harness_adapter.json"
    if meta.is_file():
        return json.loads(meta.read_text())["base"]
    return spec.base_spec.ref


def sequence_logps(model: Any, tokenizer: Any, prompts: list[list[dict]], responses: list[str],
                   *, batch_size: int = 8, max_length: int | None = None) -> list[float]:
    """Sum of log-probabilities of each response (its assistant turn, end-of-turn included) given its prompt."""
    import torch

    device = next(model.parameters()).device
    seqs = []
    for prompt, response in zip(prompts, responses):
        head = render_prompt(tokenizer, prompt)
        full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": response}], tokenize=False)
        if not full.startswith(head):
            raise HarnessError("the chat template renders the prompt differently inside a full conversation",
                               hint="use a prefix-preserving chat template")
        p_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(full[len(head):], add_special_tokens=False)["input_ids"]
        ids = p_ids + r_ids
        if max_length is not None and len(ids) > max_length:
            keep = max(0, max_length - len(r_ids))
            p_ids = p_ids[len(p_ids) - keep:] if keep else []
            ids = (p_ids + r_ids)[:max_length]
        seqs.append((ids, len(p_ids)))
    pad = tokenizer.pad_token_id
    out: list[float] = []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i:i + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk], device=device)
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk], device=device)
            with torch.no_grad():
                logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
            for row, (ids, n_prompt) in enumerate(chunk):
                out.append(float(logp[row, max(n_prompt, 1) - 1:len(ids) - 1].sum()))
    finally:
        model.train(was_training)
    return out
