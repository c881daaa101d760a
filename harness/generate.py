"""Batched chat generation for any model reference (used for reviews and previews): greedy, or ``samples``
responses per prompt drawn at a temperature (on-policy review pairs), seeded. Prompts are batched by
length and padded on the left; in float32, greedy answers are the same as generating one prompt at a
time (``tests/harness/test_generate.py``); in bfloat16 the batch's make-up can change a near-tie."""

from __future__ import annotations

from typing import Any

from harness.models import ModelSpec, load_model, load_tokenizer

__all__ = ["sample_responses", "chat_batches"]


def chat_batches(tokenizer: Any, prompts: list[str], batch_size: int) -> list[tuple[list[int], Any]]:
    """User prompts, chat-templated and tokenized in left-padded batches of about the same length (longest
    first: an out-of-memory shows at once), each with the indices of its prompts in ``prompts``."""
    tokenizer.padding_side = "left"  # decoder-only batches must be padded on the left to generate
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: (-lengths[i], i))
    return [(chunk, tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False))
            for chunk in (order[start:start + batch_size] for start in range(0, len(order), batch_size))]


def sample_responses(spec: ModelSpec, prompts: list[str], *, samples: int, temperature: float, seed: int = 0,
                     max_new_tokens: int = 96, batch_size: int = 8, description: str = "generating",
                     dtype: str = "float32") -> list[list[str]]:
    """``samples`` responses per prompt (greedy when ``temperature`` is 0), in prompt order. ``dtype``: what
    the model runs in (a name; :func:`harness.models.inference_dtype` picks one); an adapter is merged
    into the base weights first, which answers the same and runs faster."""
    import torch
    from rich.progress import Progress

    from harness.log import console

    tokenizer = load_tokenizer(spec)
    model = load_model(spec, dtype=dtype, merge_adapter=True).eval()
    outputs: list[list[str]] = [[] for _ in prompts]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(description, total=len(prompts))
        for start, (chunk, batch) in zip(range(0, len(prompts), batch_size), chat_batches(tokenizer, prompts, batch_size)):
            sampling = {"do_sample": True, "temperature": temperature, "num_return_sequences": samples} \
                if temperature > 0 else {"do_sample": False}
            if temperature > 0:
                torch.manual_seed(seed + start)  # the same prompts, seed and settings draw the same samples
            with torch.no_grad():
                out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                     **sampling)
            texts_out = [tokenizer.decode(row, skip_special_tokens=True).strip()
                         for row in out[:, batch["input_ids"].shape[1]:]]
            per_prompt = samples if temperature > 0 else 1
            for j, i in enumerate(chunk):
                outputs[i] = texts_out[j * per_prompt:(j + 1) * per_prompt]
            progress.advance(task, len(chunk))
    return outputs
