"""lm-eval's Hugging Face model with shared-prefix log-likelihood scoring.

A multiple-choice document asks for the log-likelihood of each choice after the same context. lm-eval's
``HFLM`` runs context + choice through the model once per choice (it shares work only when every
choice is a single token), so a 4-choice question pays for its context four times. ``SharedPrefixHFLM``
packs a context and all of its continuations into one row: the context once, then the continuations
as a tree (a beginning several of them share, like the words two CrowS-Pairs sentences have in common
before the one that differs, once), each token attending to the context and to its own continuation's
earlier tokens only (a block mask, passed to the model as its 4-D attention mask) at the position it
would have after the context alone (position ids). One forward pass scores them all; the output layer
runs only at the positions whose next token is scored (transformers' ``logits_to_keep`` as a boolean
mask). Rows of similar length share a batch, so there is little padding, and no row is padded to another
continuation's length.

Everything else (tokenization, truncation, generation, rolling log-likelihood, the result format) is
``HFLM``'s own. Requests that share no context with another (or where packing would not save a tenth of
the tokens), that must be truncated, or that go to a model that cannot take a block mask
(sequence-to-sequence, architectures not in ``PACKED_MODEL_TYPES``, attention kernels other than
``sdpa``/``eager``, sliding windows shorter than a row, prompt-learning adapters) are handed to
``HFLM``'s implementation unchanged.

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
TAIL_TOKENS = 256  # continuation tokens in one row at most (unless one continuation is longer)
# Architectures whose attention takes a 4-D mask as given and whose positions come from position_ids alone.
# Others (a window or ALiBi bias computed from a token's place in the row, as GPT-Neo's local layers or
# Falcon-RW do, or a window in a composite config, as Gemma 3) would score packed rows differently: HFLM.
PACKED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gpt2"})


class SharedPrefixHFLM(HFLM):
    """``HFLM`` that runs each shared context once (see the module docstring)."""

    def _packs(self) -> bool:
        """Whether this model can score packed rows: a causal LM of an architecture known to take a 4-D mask
        as given and to place tokens by their position ids alone (``PACKED_MODEL_TYPES``), with no sliding
        window shorter than a row (a block mask would drop the window)."""
        if not hasattr(self, "_pack_ok"):
            config = getattr(self.model, "config", None)
            text = config.get_text_config() if hasattr(config, "get_text_config") else config
            layer_types = set(getattr(text, "layer_types", None) or ["full_attention"])
            window = getattr(text, "sliding_window", None) if getattr(text, "use_sliding_window", True) else None
            self._pack_ok = (
                self.backend == "causal" and not hasattr(self.model, "peft_config")
                and getattr(config, "model_type", None) in PACKED_MODEL_TYPES
                and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
                and "position_ids" in inspect.signature(self.model.forward).parameters
                and layer_types <= {"full_attention", "sliding_attention"}
                and (window is None or int(window) >= self.max_length)
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
            # too long: HFLM truncates from the left; empty: HFLM refuses it with its own error
            if context and continuation and len(context) + len(continuation) <= self.max_length + 1:
                groups.setdefault(tuple(context), []).append(i)
        # continuations in token order: those that begin alike come together, and share a row's tree
        units = [unit for ctx, idx in groups.items() if len(idx) > 1
                 for unit in self._units(ctx, sorted(idx, key=lambda i: requests[i][2]), requests)]
        # packed where it saves work (HFLM runs context + continuation but its last token, per request); each
        # unit with its row length, longest first: rows of similar length share a batch
        sized = sorted(((width, unit) for unit in units if (width := self._row_length(unit, requests))
                        <= (1 - MIN_SAVING) * sum(len(unit[0]) + len(requests[i][2]) - 1 for i in unit[1])),
                       key=lambda pair: -pair[0])
        packed = {i for _, (_, idx) in sized for i in idx}
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        rest = [i for i in range(len(requests)) if i not in packed]
        if rest:
            self._score_plain(requests, rest, results, disable_tqdm=disable_tqdm, override_bs=override_bs)
        batch = self.batch_size if isinstance(self.batch_size, int) else (override_bs or 16)
        # a batch holds at most `batch` rows and as many tokens as HFLM's batch of its longest request would
        chunks: list[tuple[int, list[Unit]]] = []  # (width: its first, widest row's length, rows)
        longest = 0  # the chunk's longest request, as HFLM would run it
        for width, unit in sized:
            own = max(len(unit[0]) + len(requests[i][2]) - 1 for i in unit[1])
            if chunks and len(chunks[-1][1]) < batch and (len(chunks[-1][1]) + 1) * chunks[-1][0] <= batch * max(longest, own):
                chunks[-1][1].append(unit)
                longest = max(longest, own)
            else:
                chunks.append((width, [unit]))
                longest = own
        with tqdm(total=len(packed), disable=disable_tqdm or self.rank != 0,
                  desc="Running loglikelihood requests (shared contexts)") as bar:
            for width, chunk in chunks:
                self._score_packed(chunk, width, requests, results)
                bar.update(sum(len(idx) for _, idx in chunk))
        for i in packed:
            if requests[i][0] is not None:
                self.cache_hook.add_partial("loglikelihood", requests[i][0], results[i])
        return results  # type: ignore[return-value]

    @staticmethod
    def _row_length(unit: Unit, requests: list[Request]) -> int:
        """The context, then each distinct beginning of its continuations (less their last token) once."""
        ctx, idx = unit
        return len(ctx) + len({tuple(requests[i][2][:k]) for i in idx for k in range(1, len(requests[i][2]))})

    def _units(self, ctx: tuple[int, ...], idx: list[int], requests: list[Request]) -> list[Unit]:
        """A context's requests in rows of at most ``max_length`` tokens (the context in each), with at most
        ``TAIL_TOKENS`` of continuations in a row unless one continuation is longer (attention grows with the
        square of a row: a context shared by a thousand sentences gets many rows)."""
        units: list[Unit] = [(ctx, [])]
        for i in idx:
            grown = self._row_length((ctx, units[-1][1] + [i]), requests)
            if units[-1][1] and (grown > self.max_length or grown - len(ctx) > TAIL_TOKENS):
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
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                                    enabled=self.mixed_precision_dtype is not None):
            return self.model(**kwargs)

    def _score_packed(self, chunk: list[Unit], width: int, requests: list[Request],
                      results: list[tuple[float, bool] | None]) -> None:
        """One batch of packed rows (the longest ``width`` tokens): the context, then its continuations but their
        last tokens (whose successor is never scored) as a tree, each token seeing the context and its own
        continuation's earlier tokens."""
        pad = 0  # as HFLM pads (a pad token lm-eval added may lie beyond the embedding table); never attended to
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
            # the continuations as a tree: a beginning two of them share is run once, and each token sees
            # the context and the tokens before it in its own continuation
            node: dict[tuple[int, int], int] = {}  # (position of the token before, token) -> its position
            for i in idx:
                where, parent = [n - 1], n - 1
                for k, token in enumerate(requests[i][2][:-1]):
                    pos = node.get((parent, token))
                    if pos is None:
                        pos, end = end, end + 1
                        node[(parent, token)] = pos
                        ids[b, pos], positions[b, pos] = token, n + k
                        allowed[b, pos] = allowed[b, parent]  # what the token before sees (the context, at first)
                        allowed[b, pos, pos] = True
                    where.append(pos)
                    parent = pos
                scored.append((b, i, where))
            allowed[b, end:, 0] = True  # padding attends somewhere (a query that sees nothing gives NaN)
        if self.model.config._attn_implementation == "eager":  # eager attention adds its mask to the scores
            dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
            mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        else:
            mask = allowed
        # the output layer only at the positions whose next token is scored (transformers' logits_to_keep as a
        # boolean mask: the logits of the True positions, in row order, flattened)
        wanted = torch.zeros((len(chunk), width), dtype=torch.bool)
        for b, _, where in scored:
            wanted[b, where] = True
        kept = int(wanted.sum())
        keep = {"logits_to_keep": wanted.to(self.device)} if self._keeps_logits() else {}
        inputs = {"input_ids": ids.to(self.device), "attention_mask": mask[:, None].to(self.device),
                  "position_ids": positions.to(self.device), "use_cache": False}
        out = self._forward(**inputs, **keep)
        if keep and tuple(out.logits.shape[:-1]) != (kept,):  # a model that slices its own way
            self._logits_to_keep, keep = False, {}
            out = self._forward(**inputs)
        logits = out.logits if keep else out.logits[wanted.to(self.device)]  # the wanted positions, flattened
        logp = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        at = torch.full(wanted.shape, -1, dtype=torch.long)  # each wanted (row, position)'s place in ``logp``
        at[wanted] = torch.arange(kept)
        at = at.to(self.device)
        for b, i, where in scored:
            target = torch.tensor(requests[i][2], device=self.device)
            rows = logp[at[b, where]]
            results[i] = (float(rows.gather(1, target.unsqueeze(1)).sum()), bool((rows.argmax(dim=-1) == target).all()))
