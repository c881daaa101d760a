"""Inference cost of a model: time to first token and tokens per second of batched greedy generation.

:func:`measure_generation` times a loaded model the way the harness generates (chat template, left
padding, greedy, KV cache, batches of prompts of about the same length). Every run generates exactly
``max_new_tokens`` per prompt (``min_new_tokens`` too, so an early end-of-sequence cannot make one model
look faster than another): tokens per second compare across models. :func:`measure_ref` loads a model
reference first, with its adapter merged into the base weights or not.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from harness.errors import HarnessError
from harness.models import ModelSpec, load_model, load_tokenizer, resolve

__all__ = ["measure_generation", "measure_ref", "load_ref"]


def _check(prompts: list[str], max_new_tokens: int, batch_size: int, repeats: int, warmup: int) -> None:
    if not prompts:
        raise HarnessError("no prompts to time generation on", hint="pass at least one prompt")
    for name, value, least in (("max_new_tokens", max_new_tokens, 1), ("batch_size", batch_size, 1),
                               ("repeats", repeats, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or value < least:
            raise HarnessError(f"{name} must be an integer >= {least}, got {value!r}")


def _batches(tokenizer: Any, prompts: list[str], batch_size: int) -> list[Any]:
    """Chat-templated, tokenized batches, left-padded, of prompts of about the same length (as
    :mod:`harness.generate` batches them: :func:`harness.generate.chat_batches`)."""
    from harness.generate import chat_batches

    return [batch for _, batch in chat_batches(tokenizer, list(prompts), batch_size)]


def _generate(model: Any, batch: Any, tokens: int, pad_token_id: int) -> tuple[float, int]:
    """Seconds for one greedy generation of exactly ``tokens`` new tokens per row, and the new tokens made."""
    import torch

    device = getattr(model, "device", None)
    inputs = {k: v.to(device) for k, v in batch.items()} if device is not None else dict(batch)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, use_cache=True,
                         pad_token_id=pad_token_id)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    made = (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
    return seconds, made


def measure_generation(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 32, batch_size: int = 8,
                       repeats: int = 3, warmup: int = 1) -> dict:
    """Time batched greedy generation of ``model`` on ``prompts``.

    ``ttft_s``: median seconds of a generate with one new token, per batch (prompt processing plus the
    first token). ``seconds``: median over ``repeats`` of the time to generate ``max_new_tokens`` for every
    prompt; ``tokens_per_s`` = ``new_tokens`` / ``seconds``. ``warmup`` untimed generations of the first
    batch come first. The per-run timings are returned too (``ttft_runs_s``, ``seconds_runs``)."""
    import torch

    _check(prompts, max_new_tokens, batch_size, repeats, warmup)
    batches = _batches(tokenizer, list(prompts), batch_size)
    pad = tokenizer.pad_token_id
    model.eval()
    ttft_runs: list[float] = []
    seconds_runs: list[float] = []
    new_tokens = 0
    with torch.inference_mode():
        for _ in range(warmup):
            _generate(model, batches[0], max_new_tokens, pad)
        for _ in range(repeats):
            ttft_runs += [_generate(model, batch, 1, pad)[0] for batch in batches]
            total, made = 0.0, 0
            for batch in batches:
                seconds, count = _generate(model, batch, max_new_tokens, pad)
                total += seconds
                made += count
            seconds_runs.append(total)
            new_tokens = made
    expected = len(prompts) * max_new_tokens
    if new_tokens != expected:  # min_new_tokens should make this impossible; a figure on other counts would mislead
        raise HarnessError(f"the model generated {new_tokens} new tokens where {expected} were asked for",
                           hint="its generate() does not honour min_new_tokens/max_new_tokens")
    seconds = statistics.median(seconds_runs)
    return {
        "ttft_s": statistics.median(ttft_runs), "tokens_per_s": new_tokens / seconds, "seconds": seconds,
        "new_tokens": new_tokens, "batch_size": batch_size, "prompts": len(prompts),
        "max_new_tokens": max_new_tokens, "repeats": repeats, "warmup": warmup,
        "ttft_runs_s": ttft_runs, "seconds_runs": seconds_runs,
    }


def _refuse_unmergeable(spec: ModelSpec) -> None:
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(spec.location)
    if config.is_prompt_learning:
        raise HarnessError(
            f"adapter {spec.location} ({getattr(config.peft_type, 'value', config.peft_type)}) cannot be merged into its base weights: it adds "
            "virtual tokens at run time, not weight changes",
            hint="measure it with merge=False (base + adapter), the only way it runs")


def load_ref(ref: str, *, merge: bool, dtype: str = "float32", trust_remote_code: bool = False) -> tuple[Any, Any, bool]:
    """``(model, tokenizer, merged)`` for a model reference, in eval mode. ``merge``: fold an adapter into
    its base with PEFT's ``merge_and_unload``; an adapter PEFT cannot merge (prefix tuning) raises
    :class:`HarnessError` before any model is loaded. A plain model has nothing to merge: ``merged`` False."""
    spec = resolve(ref, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(spec)
    if not merge or spec.kind != "adapter":
        return load_model(spec, dtype=dtype).eval(), tokenizer, False
    _refuse_unmergeable(spec)
    model = load_model(spec, dtype=dtype)
    try:
        merged = model.merge_and_unload()
    except (AttributeError, NotImplementedError, ValueError) as exc:
        raise HarnessError(f"adapter {spec.location} cannot be merged into its base weights: {exc}",
                           hint="measure it with merge=False (base + adapter)") from None
    return merged.eval(), tokenizer, True


def measure_ref(ref: str, prompts: list[str], *, merge: bool, dtype: str = "float32", **kw: Any) -> dict:
    """:func:`measure_generation` on the model ``ref`` names (loaded by :func:`load_ref`); ``kw`` goes to
    :func:`measure_generation`. The result also says ``ref``, ``dtype`` and whether it was ``merged``."""
    _check(prompts, kw.get("max_new_tokens", 1), kw.get("batch_size", 1), kw.get("repeats", 1), kw.get("warmup", 0))
    model, tokenizer, merged = load_ref(ref, merge=merge, dtype=dtype)
    result = measure_generation(model, tokenizer, prompts, **kw)
    return {**result, "ref": ref, "dtype": dtype, "merged": merged}
