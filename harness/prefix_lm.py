"""lm-eval's Hugging Face model with shared-prefix log-likelihood scoring.

A multiple-choice document asks for the log-likelihood of each choice after the same context. lm-eval's
``HFLM`` runs context + choice through the model once per choice (it shares work only when every
choice is a single token), so a 4-choice question pays for its context four times. ``SharedPrefixHFLM``
runs each context once, keeps its key/value cache, and scores all of its continuations against that
cache in one batch; several contexts share one batch. Everything else (tokenization, truncation,
generation, rolling log-likelihood, the result format) is ``HFLM``'s own: requests that share no
context with another (or whose context is shorter than its continuations), that must be truncated, or
that go to a model without a plain key/value cache (sequence-to-sequence, prompt-learning adapters)
are handed to ``HFLM``'s implementation unchanged.

The arithmetic is the same up to float rounding: in float32 the log-likelihoods agree with ``HFLM``'s
to about 1e-5 (``tests/harness/test_prefix_lm.py`` asserts 1e-4 on every request of the demo suites).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

__all__ = ["SharedPrefixHFLM"]

Request = tuple[tuple[str, str] | None, list[int], list[int]]
MAX_ROWS_PER_CONTEXT = 4  # continuations per context in a batch, on average (a 4-choice question's)


class SharedPrefixHFLM(HFLM):
    """``HFLM`` that computes each shared context once per batch (see the module docstring)."""

    def _shares_cache(self) -> bool:
        return self.backend == "causal" and not hasattr(self.model, "peft_config")

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        if not self._shares_cache():
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, context, continuation) in enumerate(requests):
            if len(context) + len(continuation) <= self.max_length + 1:  # else HFLM truncates from the left
                groups.setdefault(tuple(context), []).append(i)
        # shared where it saves work: several continuations, each shorter than their context on average
        # (a 1-token context before whole sentences, as CrowS-Pairs asks, gains nothing and loses HFLM's
        # length-sorted batches)
        shared = {ctx: idx for ctx, idx in groups.items()
                  if len(idx) > 1 and len(ctx) * len(idx) >= sum(len(requests[i][2]) for i in idx)}
        rest = sorted(set(range(len(requests))) - {i for idx in shared.values() for i in idx})
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        if rest:
            self._score_plain(requests, rest, results, disable_tqdm=disable_tqdm, override_bs=override_bs)
        # A batch holds up to batch_size contexts (each as long as one of HFLM's context + continuation rows)
        # and their continuations, which are shorter than their contexts: at most MAX_ROWS_PER_CONTEXT times
        # as many rows, which bounds the memory the continuations' logits take.
        batch = self.batch_size if isinstance(self.batch_size, int) else (override_bs or 16)
        max_rows = batch * MAX_ROWS_PER_CONTEXT
        units = [(ctx, idx[s:s + max_rows]) for ctx, idx in shared.items() for s in range(0, len(idx), max_rows)]
        units.sort(key=lambda u: -len(u[0]))  # similar context lengths share a batch: less padding
        chunks: list[list[tuple[tuple[int, ...], list[int]]]] = []
        rows = 0
        for unit in units:
            if not chunks or len(chunks[-1]) >= batch or rows + len(unit[1]) > max_rows:
                chunks.append([])
                rows = 0
            chunks[-1].append(unit)
            rows += len(unit[1])
        with tqdm(total=sum(len(idx) for idx in shared.values()), disable=disable_tqdm or self.rank != 0,
                  desc="Running loglikelihood requests (shared contexts)") as bar:
            for n, chunk in enumerate(chunks):
                if not self._score_shared(chunk, requests, results):  # the model's cache cannot be reordered
                    self._score_plain(requests, [i for c in chunks[n:] for _, idx in c for i in idx], results,
                                      disable_tqdm=True)
                    break
                bar.update(sum(len(idx) for _, idx in chunk))
        for i in (i for idx in shared.values() for i in idx):
            if requests[i][0] is not None:
                self.cache_hook.add_partial("loglikelihood", requests[i][0], results[i])
        return results  # type: ignore[return-value]

    def _score_plain(self, requests: list[Request], indices: list[int], results: list[tuple[float, bool] | None],
                     **kwargs: Any) -> None:
        """``HFLM``'s own scoring of ``requests[i]`` for ``i`` in ``indices``, into ``results``."""
        answers = super()._loglikelihood_tokens([requests[i] for i in indices], **kwargs)
        for i, answer in zip(indices, answers, strict=True):
            results[i] = answer

    def _keeps_logits(self) -> bool:
        """Whether the model computes logits at chosen positions only (transformers' ``logits_to_keep``)."""
        if not hasattr(self, "_logits_to_keep"):
            import inspect

            self._logits_to_keep = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        return self._logits_to_keep

    def _forward(self, **kwargs: Any) -> Any:
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(**kwargs)

    def _score_shared(self, chunk: list[tuple[tuple[int, ...], list[int]]], requests: list[Request],
                      results: list[tuple[float, bool] | None]) -> bool:
        """One batch of contexts, then all their continuations against the contexts' cache. False (nothing
        scored) for a model whose cache cannot be reordered per continuation."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lengths = torch.tensor([len(ctx) for ctx, _ in chunk], device=self.device)
        width = int(lengths.max())
        ctx_ids = torch.full((len(chunk), width), pad, dtype=torch.long, device=self.device)
        ctx_mask = torch.zeros((len(chunk), width), dtype=torch.long, device=self.device)
        for b, (ctx, _) in enumerate(chunk):
            ctx_ids[b, :len(ctx)] = torch.tensor(ctx, device=self.device)
            ctx_mask[b, :len(ctx)] = 1
        # the distribution of each continuation's first token, read at its context's last position: only
        # there are the output layer's logits needed (a 49k-token vocabulary is a fifth of a 135M model's arithmetic)
        last, where = torch.unique(lengths - 1, return_inverse=True)
        keep = {"logits_to_keep": last} if self._keeps_logits() else {}
        out = self._forward(input_ids=ctx_ids, attention_mask=ctx_mask, use_cache=True, **keep)
        if keep and out.logits.shape[1] != len(last):  # a model that reads logits_to_keep as a count only
            self._logits_to_keep, keep = False, {}
            out = self._forward(input_ids=ctx_ids, attention_mask=ctx_mask, use_cache=True)
        logits = out.logits[torch.arange(len(chunk), device=self.device), where if keep else lengths - 1]
        first = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        rows_of = [(b, i) for b, (_, idx) in enumerate(chunk) for i in idx]  # (context in the batch, request)
        conts = [requests[i][2] for _, i in rows_of]
        # Continuations longer than one token: their later tokens, in one pass after the cached context (a
        # one-token continuation was scored above and takes no row; passes by length would pad less but cost
        # more, as each reads every weight of the model again)
        multi = [r for r, cont in enumerate(conts) if len(cont) > 1]
        cache = out.past_key_values
        later: dict[int, torch.Tensor] = {}  # row -> log-probabilities of its tokens after the first
        if multi:
            if not hasattr(cache, "batch_select_indices"):
                return False
            owner = torch.tensor([rows_of[r][0] for r in multi], device=self.device)
            cache.batch_select_indices(owner)
            tail = max(len(conts[r]) for r in multi) - 1
            ids = torch.full((len(multi), tail), pad, dtype=torch.long, device=self.device)
            mask = torch.zeros((len(multi), tail), dtype=torch.long, device=self.device)
            for j, r in enumerate(multi):
                ids[j, :len(conts[r]) - 1] = torch.tensor(conts[r][:-1], device=self.device)
                mask[j, :len(conts[r]) - 1] = 1
            positions = lengths[owner].unsqueeze(1) + torch.arange(tail, device=self.device)
            out2 = self._forward(input_ids=ids, attention_mask=torch.cat([ctx_mask[owner], mask], dim=1),
                                 position_ids=positions, past_key_values=cache, use_cache=True)
            logp = F.log_softmax(out2.logits, dim=-1, dtype=self.softmax_dtype)
            later = {r: logp[j] for j, r in enumerate(multi)}
        for r, (b, i) in enumerate(rows_of):
            cont = conts[r]
            logp = float(first[b, cont[0]])
            greedy = int(first[b].argmax()) == cont[0]
            if len(cont) > 1:
                target = torch.tensor(cont[1:], device=self.device)
                rows = later[r][:len(cont) - 1]
                logp += float(rows.gather(1, target.unsqueeze(1)).sum())
                greedy = greedy and bool((rows.argmax(dim=-1) == target).all())
            results[i] = (logp, greedy)
        return True
