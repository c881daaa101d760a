import json
import math
import shutil
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness import evaluate
from harness.config import load_config
from harness.models import load_model, load_tokenizer, resolve
from harness.prefix_lm import SharedPrefixHFLM

REPO = Path(__file__).resolve().parents[2]
SUITES = ["domain/handbook_mcq", "retention/general_knowledge", "bias/crows_pairs", "bias/winobias"]


class _Counting(SharedPrefixHFLM):
    shared_batches = 0

    def _score_packed(self, chunk, width, requests, results):
        _Counting.shared_batches += 1
        return super()._score_packed(chunk, width, requests, results)


def _requests(pairs):
    return [Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i) for i, pair in enumerate(pairs)]


def _tokens_seen(lm, pairs):
    seen = []
    handle = lm.model.register_forward_hook(lambda _m, args, kwargs, _out: seen.append(
        (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]).numel()), with_kwargs=True)
    try:
        answers = lm.loglikelihood(_requests(pairs), disable_tqdm=True)
    finally:
        handle.remove()
    return answers, sum(seen)


def _assert_scored_like_hflm(shared_class, pairs, *, batch_size, max_length, attention=None):
    """``shared_class`` gives HFLM's greedy flags and, within 1e-4, its log-likelihoods (float32 tiny model)."""
    spec = resolve("builtin:tiny-random")
    model, tok = load_model(spec, dtype="float32").eval(), load_tokenizer(spec)
    if attention:
        model.set_attn_implementation(attention)
    kw = {"pretrained": model, "tokenizer": tok, "batch_size": batch_size, "device": "cpu", "max_length": max_length}
    expected = HFLM(**kw).loglikelihood(_requests(pairs), disable_tqdm=True)
    got = shared_class(**kw).loglikelihood(_requests(pairs), disable_tqdm=True)
    assert [g for _, g in got] == [g for _, g in expected]
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in expected], abs=1e-4)


def _mcq_pairs(n):
    rows = [json.loads(line) for line in open(REPO / "examples/demo/domain_mcq.jsonl")][:n]
    return [(f"Question: {r['question']}\nAnswer:", f" {c}") for r in rows for c in r["choices"]]


def test_same_loglikelihoods_as_hflm_with_each_context_computed_once():
    spec = resolve("builtin:tiny-random")
    model, tok = load_model(spec, dtype="float32").eval(), load_tokenizer(spec)
    pairs = _mcq_pairs(10)
    pairs += [("The capital of France is", " Paris"),                 # a context no other request shares
              ("One token:", " yes"), ("One token:", " no"),           # single-token continuations
              ("", "A whole sentence scored from the start.")]       # no context (lm-eval scores it after EOS)
    pairs += [("", "Another sentence, also from the start.")]
    plain = HFLM(pretrained=model, tokenizer=tok, batch_size=8, device="cpu", max_length=512)
    shared = _Counting(pretrained=model, tokenizer=tok, batch_size=8, device="cpu", max_length=512)
    expected, plain_tokens = _tokens_seen(plain, pairs)
    got, shared_tokens = _tokens_seen(shared, pairs)
    assert len(got) == len(expected) == len(pairs)
    for (lp, greedy), (lp0, greedy0) in zip(got, expected, strict=True):
        assert math.isfinite(lp) and lp == pytest.approx(lp0, abs=1e-4)
        assert greedy == greedy0
    assert _Counting.shared_batches > 0
    # Each question's context is run once instead of four times.
    assert shared_tokens < 0.6 * plain_tokens, (shared_tokens, plain_tokens)


def test_too_long_requests_are_truncated_as_lm_eval_does():
    long_context = " ".join(["word"] * 40)
    pairs = [(long_context, " one two three"), (long_context, " four"), ("short", " a b"), ("short", " c d e")]
    _assert_scored_like_hflm(SharedPrefixHFLM, pairs, batch_size=4, max_length=20)


def test_a_context_whose_continuations_overflow_one_row_is_packed_into_several():
    context = "Question: which of these words comes first in the alphabet?\nAnswer:"
    pairs = [(context, f" {w} is the word, and more") for w in ("apple", "berry", "cherry", "damson", "elder", "fig")]
    _Counting.shared_batches = 0
    _assert_scored_like_hflm(_Counting, pairs, batch_size=1, max_length=32)
    assert _Counting.shared_batches >= 2  # one row per batch: the six continuations did not fit in one


def test_eval_results_match_lm_eval_on_the_demo_suites(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))  # a private eval cache
    shutil.copytree(tiny_model_dir.parent / "smollm2-tokenizer", tmp_path / "home/models/smollm2-tokenizer")
    outputs, metrics = {}, {}
    for shared in (True, False):
        cfg = load_config(None, [
            "model.base=builtin:tiny-random", f"run.root={tmp_path / str(shared)}", "run.id=e",
            "eval.suites=" + json.dumps(SUITES), "eval.limit=12", "eval.batch_size=8", "eval.dtype=float32",
            "eval.bootstrap_resamples=200", f"eval.shared_prefix={str(shared).lower()}",
        ])
        result = evaluate.run(cfg)
        assert not any(r.cached for r in result.results)  # the setting is part of the cache key
        samples = {r.suite: evaluate.load_samples(r.folder) for r in result.results}
        outputs[shared] = {suite: [s["outputs"] for s in rows] for suite, rows in samples.items()}
        metrics[shared] = {suite: [s["metrics"] for s in rows] for suite, rows in samples.items()}
    assert set(outputs[True]) == set(SUITES)
    assert metrics[True] == metrics[False]  # every per-sample choice and metric is the same
    for suite in SUITES:
        for doc, doc0 in zip(outputs[True][suite], outputs[False][suite], strict=True):
            assert [g for _, g in doc] == [g for _, g in doc0], suite
            assert [lp for lp, _ in doc] == pytest.approx([lp for lp, _ in doc0], abs=1e-4), suite


def test_eager_attention_takes_the_block_mask_as_scores_to_add():
    _Counting.shared_batches = 0
    _assert_scored_like_hflm(_Counting, _mcq_pairs(8), batch_size=4, max_length=512, attention="eager")
    assert _Counting.shared_batches > 0


class _Windowed(_Counting):
    """A model whose sliding window is shorter than a row may be: a block mask would drop the window."""

    def _packs(self):
        self.model.config.sliding_window = 16
        return super()._packs()


class _LocalAttention(_Counting):
    """An architecture whose local attention windows come from a token's place in the row (GPT-Neo)."""

    def _packs(self):
        self.model.config.model_type = "gpt_neo"
        return super()._packs()


@pytest.mark.parametrize("cls", [_Windowed, _LocalAttention], ids=["short sliding window", "unlisted architecture"])
def test_a_model_that_cannot_take_a_block_mask_is_scored_by_hflm(cls):
    _Counting.shared_batches = 0
    _assert_scored_like_hflm(cls, _mcq_pairs(6), batch_size=4, max_length=512)
    assert _Counting.shared_batches == 0


class _Drifting(SharedPrefixHFLM):
    """A scorer whose shared-prefix log-likelihoods are off by 1e-3: beyond the parity tolerance."""

    def _score_packed(self, chunk, width, requests, results):
        super()._score_packed(chunk, width, requests, results)
        for i, r in enumerate(results):
            if r is not None and not isinstance(r, _Off):
                results[i] = _Off((r[0] - 1e-3, r[1]))


class _Off(tuple):
    pass


def test_a_scorer_that_drifts_from_lm_eval_fails_the_parity_check_loudly():
    with pytest.raises(AssertionError, match="approx"):
        _assert_scored_like_hflm(_Drifting, _mcq_pairs(6), batch_size=4, max_length=512)


def test_continuations_that_begin_alike_run_their_common_beginning_once():
    # CrowS-Pairs' shape: an empty context (lm-eval scores after the end-of-text token) and two sentences
    # that differ in one word; their common beginning is run once
    pairs = [("", "The new neighbours were loud and kept the whole street awake at night."),
             ("", "The old neighbours were loud and kept the whole street awake at night."),
             ("", "My manager said that the engineers from the north office always finish late."),
             ("", "My manager said that the engineers from the south office always finish late.")]
    _Counting.shared_batches = 0
    _assert_scored_like_hflm(_Counting, pairs, batch_size=4, max_length=512)
    spec = resolve("builtin:tiny-random")
    model, tok = load_model(spec, dtype="float32").eval(), load_tokenizer(spec)
    plain = HFLM(pretrained=model, tokenizer=tok, batch_size=4, device="cpu", max_length=512)
    shared = _Counting(pretrained=model, tokenizer=tok, batch_size=4, device="cpu", max_length=512)
    _, plain_tokens = _tokens_seen(plain, pairs[2:])
    _, shared_tokens = _tokens_seen(shared, pairs[2:])
    assert _Counting.shared_batches > 0
    common = len(tok("My manager said that the engineers from the")["input_ids"])
    assert shared_tokens <= plain_tokens - common + 1, (shared_tokens, plain_tokens, common)


def test_the_output_layer_runs_only_where_a_next_token_is_scored():
    spec = resolve("builtin:tiny-random")
    model, tok = load_model(spec, dtype="float32").eval(), load_tokenizer(spec)
    pairs = _mcq_pairs(6)
    rows = []
    handle = model.get_output_embeddings().register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[:-1].numel()))
    try:
        _Counting(pretrained=model, tokenizer=tok, batch_size=4, device="cpu", max_length=512).loglikelihood(
            _requests(pairs), disable_tqdm=True)
    finally:
        handle.remove()
    # per question: the context's last position (each choice's first token), then each distinct beginning of
    # its choices but their last token
    expected = 0
    for context in dict.fromkeys(c for c, _ in pairs):
        ctx = tok(context)["input_ids"]
        conts = [tok(context + choice)["input_ids"][len(ctx):] for c, choice in pairs if c == context]
        expected += 1 + len({tuple(t[:k]) for t in conts for k in range(1, len(t))})
    assert sum(rows) == expected


class _IgnoresKeep(_Counting):
    """A model whose forward takes logits_to_keep but returns every position's logits anyway."""

    def _forward(self, **kwargs):
        kwargs.pop("logits_to_keep", None)
        return super()._forward(**kwargs)


def test_a_model_that_returns_every_positions_logits_is_still_scored_right():
    _Counting.shared_batches = 0
    _assert_scored_like_hflm(_IgnoresKeep, _mcq_pairs(6), batch_size=4, max_length=512)
    assert _Counting.shared_batches > 0
