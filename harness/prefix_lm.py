"""lm-eval's Hugging Face model with shared-prefix log-likelihood scoring.

A multiple-choice document asks for the log-likelihood of each choice after the same context. lm-eval's
``HFLM`` runs context + choice through the model once per choice (it shares work only when every
choice is a single token), so a 4-choice question pays for its context four times. ``SharedPrefixHFLM``
packs a context and all of its continuations into one row: the context once, then each continuation,
each attending to the context and to its own earlier tokens only (a block mask, passed to the model as
its 4-D attention mask) and placed at the positions it would have after the context alone (position
ids). One forward pass scores them all; the output layer runs only at the positions whose next token
is scored (transformers' ``logits_to_keep``). Rows of similar length share a batch, so there is
little padding, and no row is padded to another continuation's length.

Everything else (tokenization, truncation, generation, rolling log-likelihood, the result format) is
``HFLM``'s own. Requests that share no context with another (or whose context is too short for sharing
to save work), that must be truncated, or that go to a model that cannot take a block mask
(sequence-to-sequence, attention kernels other than ``sdpa``/``eager``, sliding windows shorter than
a row, prompt-learning adapters) are handed to ``HFLM``'s implementation unchanged.

The arithmetic is the same up to float rounding: in float32 the log-likelihoods agree with ``HFLM``'s
to about 1e-5 (``tests/harness/test_prefix_lm.py`` asserts 1e-4 on every request of the demo suites).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

__all__ = ["SharedPrefixHFLM"]

Request = tuple[tuple[str, str] | None, list[int], list[int]]
Unit = tuple[tuple[int, ...], list[int]]  # a context and the requests packed after it in one row
MIN_SAVING = 0.1  # pack a context's requests when that runs at least 10 % fewer tokens than HFLM would


class SharedPrefixHFLM(HFLM):
    """``HFLM`` that runs each shared context once (see the module docstring)."""

    def _packs(self) -> bool:
        """Whether this model can score packed rows: a causal LM whose attention takes a 4-D mask as given."""
        if not hasattr(self, "_pack_ok"):
            config = getattr(self.model, "config", None)
            layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
            window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
            self._pack_ok = (
                self.backend == "causal" and not hasattr(self.model, "peft_config")
                and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
                and "position_ids" in inspect.signature(self.model.forward).parameters
                and layer_types <= {"full_attention", "sliding_attention"}
                and (window is None or int(window) >= self.max_length)  # a block mask would drop the window
            )
        return self._pack_ok

    def _keeps_logits(self) -> bool:
        """Whether the model computes logits at chosen positions only (transformers' ``logits_to_keep``)."""
        if not hasattr(self, "_logits_to_keep"):
            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self._logits_to_keep

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        if not self._packs():
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, context, continuation) in enumerate(requests):
            if len(context) + len(continuation) <= self.max_length + 1:  # else HFLM truncates from the left
                groups.setdefault(tuple(context), []).append(i)
        units = [unit for ctx, idx in groups.items() if len(idx) > 1 for unit in self._units(ctx, idx, requests)]
        # packed where it saves work: a 1-token context before whole sentences (CrowS-Pairs) saves nothing
        units = [(ctx, idx) for ctx, idx in units
                 if (len(idx) - 1) * len(ctx) >= MIN_SAVING * sum(len(ctx) + len(requests[i][2]) - 1 for i in idx)]
        packed = {i for _, idx in units for i in idx}
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        rest = [i for i in range(len(requests)) if i not in packed]
        if rest:
            self._score_plain(requests, rest, results, disable_tqdm=disable_tqdm, override_bs=override_bs)
        batch = self.batch_size if isinstance(self.batch_size, int) else (override_bs or 16)
        units.sort(key=lambda u: -self._row_length(u, requests))  # rows of similar length share a batch
        with tqdm(total=len(packed), disable=disable_tqdm or self.rank != 0,
                  desc="Running loglikelihood requests (shared contexts)") as bar:
            for start in range(0, len(units), batch):
                chunk = units[start:start + batch]
                self._score_packed(chunk, requests, results)
                bar.update(sum(len(idx) for _, idx in chunk))
        for i in packed:
            if requests[i][0] is not None:
                self.cache_hook.add_partial("loglikelihood", requests[i][0], results[i])
        return results  # type: ignore[return-value]

    @staticmethod
    def _row_length(unit: Unit, requests: list[Request]) -> int:
        ctx, idx = unit
        return len(ctx) + sum(len(requests[i][2]) - 1 for i in idx)

    def _units(self, ctx: tuple[int, ...], idx: list[int], requests: list[Request]) -> list[Unit]:
        """A context's requests in rows of at most ``max_length`` tokens (the context in each)."""
        units: list[Unit] = [(ctx, [])]
        for i in idx:
            if units[-1][1] and self._row_length((ctx, units[-1][1] + [i]), requests) > self.max_length:
                units.append((ctx, []))
            units[-1][1].append(i)
        return units

    def _score_plain(self, requests: list[Request], indices: list[int], results: list[tuple[float, bool] | None],
                     **kwargs: Any) -> None:
        """``HFLM``'s own scoring of ``requests[i]`` for ``i`` in ``indices``, into ``results``."""
        answers = super()._loglikelihood_tokens([requests[i] for i in indices], **kwargs)
        for i, answer in zip(indices, answers, strict=True):
            results[i] = answer

    def _forward(self, **kwargs: Any) -> Any:
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(**kwargs)

    def _score_packed(self, chunk: list[Unit], requests: list[Request], results: list[tuple[float, bool] | None]) -> None:
        """One batch of packed rows: context, then each continuation but its last token (whose successor is
        never scored), each continuation seeing the context and its own earlier tokens."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(self._row_length(u, requests) for u in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        positions = torch.zeros((len(chunk), width), dtype=torch.long)
        allowed = torch.zeros((len(chunk), width, width), dtype=torch.bool)
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        scored: list[tuple[int, int, list[int]]] = []  # (row, request, positions whose logits score its tokens)
        for b, (ctx, idx) in enumerate(chunk):
            n = len(ctx)
            ids[b, :n] = torch.tensor(ctx)
            positions[b, :n] = torch.arange(n)
            allowed[b, :n, :n] = causal[:n, :n]
            end = n
            for i in idx:
                tail = requests[i][2][:-1]
                start, end = end, end + len(tail)
                ids[b, start:end] = torch.tensor(tail, dtype=torch.long)
                positions[b, start:end] = torch.arange(n, n + len(tail))
                allowed[b, start:end, :n] = True
                allowed[b, start:end, start:end] = causal[:len(tail), :len(tail)]
                scored.append((b, i, [n - 1, *range(start, end)]))
            allowed[b, end:, 0] = True  # padding attends somewhere (a query that sees nothing gives NaN)
        if self.model.config._attn_implementation == "eager":  # eager attention adds its mask to the scores
            mask = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, torch.finfo(torch.float32).min)
        else:
            mask = allowed
        # the output layer only where a next token is scored: from the earliest context end on
        lo = min(len(ctx) for ctx, _ in chunk) - 1
        keep = {"logits_to_keep": torch.arange(lo, width, device=self.device)} if self._keeps_logits() else {}
        out = self._forward(input_ids=ids.to(self.device), attention_mask=mask[:, None].to(self.device),
                            position_ids=positions.to(self.device), use_cache=False, **keep)
        if keep and out.logits.shape[1] != width - lo:  # a model that reads logits_to_keep as a count only
            self._logits_to_keep, keep = False, {}
            out = self._forward(input_ids=ids.to(self.device), attention_mask=mask[:, None].to(self.device),
                                position_ids=positions.to(self.device), use_cache=False)
        offset = lo if keep else 0
        logp = F.log_softmax(out.logits, dim=-1, dtype=self.softmax_dtype)
        for b, i, where in scored:
            target = torch.tensor(requests[i][2], device=self.device)
            rows = logp[b, torch.tensor(where, device=self.device) - offset]
            results[i] = (float(rows.gather(1, target.unsqueeze(1)).sum()), bool((rows.argmax(dim=-1) == target).all()))
