"""Batched greedy chat generation for any model reference (used for reviews and previews)."""

from __future__ import annotations

from typing import Any

from harness.models import ModelSpec, load_model, load_tokenizer

__all__ = ["generate_responses"]


def generate_responses(spec: ModelSpec, prompts: list[str], *, max_new_tokens: int = 96, batch_size: int = 8,
                       description: str = "generating") -> list[str]:
    """Greedy responses to single-turn user prompts, rendered with the model's chat template."""
    import torch
    from rich.progress import Progress

    from harness.log import console

    tokenizer = load_tokenizer(spec)
    tokenizer.padding_side = "left"  # decoder-only batches must be padded on the left to generate
    model = load_model(spec, dtype=torch.float32).eval()
    outputs: list[str] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(description, total=len(prompts))
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                   add_generation_prompt=True) for p in chunk]
            batch: Any = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            for row in out[:, batch["input_ids"].shape[1]:]:
                outputs.append(tokenizer.decode(row, skip_special_tokens=True).strip())
            progress.advance(task, len(chunk))
    return outputs
