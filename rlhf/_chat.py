"""Chat tokenization with assistant masks that works for any chat template.

TRL's ``assistant_only_loss`` needs ``{% generation %}`` markers that many templates (SmolLM2's
among them) lack, and TRL patches only a fixed list. We find each assistant turn's span by rendering
the conversation up to that turn with a sentinel as the assistant's content: the text before the
sentinel is the prompt, and the turn ends where the rendering of the conversation through that turn
ends (so the end-of-turn token is trained and the model learns to stop). Templates that are not
prefix-preserving are refused with a clear error instead of silently mis-masking.
"""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError

__all__ = ["tokenize_chat", "render_prompt"]

_SENTINEL = "\u2063HARNESS_ASSISTANT_TURN\u2063"


def _render(tokenizer: Any, messages: list[dict[str, str]], **kw: Any) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, **kw)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The text a model sees before it answers ``messages``."""
    return _render(tokenizer, messages, add_generation_prompt=True)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """Return the full rendered text and the character spans of every assistant turn."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise HarnessError("the tokenizer has no chat template, so chat data cannot be rendered",
                           hint="use a chat/instruct model, or set a chat template on the tokenizer")
    full = _render(tokenizer, messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        probe = _render(tokenizer, [*messages[:i], {"role": "assistant", "content": _SENTINEL}])
        start = probe.find(_SENTINEL)
        through = _render(tokenizer, messages[: i + 1])
        if start < 0 or not through.startswith(probe[:start]) or not full.startswith(through):
            raise HarnessError(
                "the chat template is not prefix-preserving (rendering a conversation changes earlier turns), "
                "so assistant-only loss cannot be computed reliably",
                hint="set sft.assistant_only_loss: false, or use a template that renders each turn independently",
            )
        spans.append((start, len(through)))
    return full, spans


def tokenize_chat(tokenizer: Any, messages: list[dict[str, str]], max_length: int | None,
                  assistant_only: bool = True) -> dict[str, Any]:
    """``{input_ids, assistant_masks, truncated}``; masks are 1 on tokens inside assistant turns."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if assistant_only:
        mask = [1 if any(s <= a < e for s, e in spans) else 0 for a, _ in offsets]
    else:
        mask = [1] * len(ids)
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, mask = ids[:max_length], mask[:max_length]
    return {"input_ids": ids, "assistant_masks": mask, "truncated": truncated}
