"""Scoring with a trained reward model, and the pairwise report of any scorer's margins (used by the
reward stage, DPO's implicit reward and online RL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.models import ADAPTER_META, load_model, load_tokenizer, resolve
from rlhf._prefs import completion_text as _text, render_conversation

__all__ = ["RewardScorer", "load_scorer", "pairwise_report"]


def _prompt_messages(prompt: Any) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


class RewardScorer:
    """Score responses with a reward model; callable as a TRL reward function."""

    __name__ = "reward_model"

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 512, batch_size: int = 8):
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size
        self.chat = bool(getattr(tokenizer, "chat_template", None))

    def encode(self, prompt: list[dict[str, str]], response: str) -> list[int]:
        text = render_conversation(self.tokenizer, prompt, response)
        return self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"]

    def _fit(self, ids: list[int]) -> list[int]:
        """Over-long inputs: a decoder keeps the end (it scores the last token, the response's end);
        an encoder keeps the start (it scores its first token, e.g. [CLS])."""
        if len(ids) <= self.max_length:
            return ids
        return ids[-self.max_length:] if self.chat else ids[:self.max_length]

    def score(self, prompts: list[list[dict[str, str]]], responses: list[str]) -> list[float]:
        import torch

        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        out: list[float] = []
        try:
            for i in range(0, len(prompts), self.batch_size):
                ids = [self._fit(self.encode(p, r)) for p, r in zip(prompts[i:i + self.batch_size],
                                                                    responses[i:i + self.batch_size])]
                width = max(len(x) for x in ids)
                input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids], device=device)
                mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids], device=device)
                with torch.no_grad():
                    logits = self.model(input_ids=input_ids, attention_mask=mask).logits
                out.extend(float(v) for v in logits[:, 0].float().cpu())
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return self.score([_prompt_messages(p) for p in prompts], [_text(c) for c in completions])


def _prepare_tokenizer(spec: Any, pad_token: str | None):
    tok = load_tokenizer(spec)
    if pad_token is not None:
        if pad_token not in tok.get_vocab():
            raise HarnessError(f"reward.pad_token {pad_token!r} is not in the tokenizer's vocabulary",
                               hint="pick a token the tokenizer has, e.g. its eos token")
        tok.pad_token = pad_token
    if tok.pad_token is None:
        raise HarnessError(f"the tokenizer of {spec.ref} has no pad token and no eos token to pad with",
                           hint="set reward.pad_token to a token in its vocabulary")
    return tok


def load_scorer(ref: str, *, max_length: int | None = None, trust_remote_code: bool = False,
                batch_size: int = 8) -> RewardScorer:
    """A :class:`RewardScorer` for a trained reward model (adapter folder or merged model folder).
    ``max_length`` defaults to the length it was trained with."""
    spec = resolve(ref, trust_remote_code=trust_remote_code)
    if max_length is None:
        meta = Path(spec.location) / ADAPTER_META
        max_length = json.loads(meta.read_text()).get("max_length", 512) if meta.is_file() else 512
    tok = _prepare_tokenizer(spec, None)
    model = load_model(spec, task="sequence-classification", num_labels=1)
    if model.config.num_labels != 1:
        raise HarnessError(f"{ref} is not a reward model (its head has {model.config.num_labels} outputs, not 1)",
                           hint="train one with 'harness reward'")
    model.config.pad_token_id = tok.pad_token_id
    return RewardScorer(model, tok, max_length=max_length, batch_size=batch_size)


def pairwise_report(chosen: list[float], rejected: list[float]) -> dict[str, Any]:
    """Pairwise accuracy (ties count as errors) with a Wilson 95 % CI, and the margin distribution."""
    import numpy as np
    from scipy.stats import binomtest

    margins = np.asarray(chosen, dtype=float) - np.asarray(rejected, dtype=float)
    n = int(margins.size)
    if n == 0:
        return {"n": 0, "accuracy": None}
    k = int((margins > 0).sum())
    ci = binomtest(k, n).proportion_ci(method="wilson")
    counts, edges = np.histogram(margins, bins=min(10, max(1, n)))
    return {
        "n": n, "correct": k, "accuracy": k / n, "ci_low": float(ci.low), "ci_high": float(ci.high),
        "test": "Wilson 95% CI on the share of pairs scored chosen > rejected",
        "chosen_scored_higher": bool(ci.low > 0.5),
        "margin": {"mean": float(margins.mean()), "std": float(margins.std()),
                   **{f"p{q}": float(np.percentile(margins, q)) for q in (5, 25, 50, 75, 95)},
                   "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]}},
    }
