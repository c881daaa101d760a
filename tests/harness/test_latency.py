import json

import pytest
import torch

from harness.errors import HarnessError
from harness.latency import load_ref, measure_generation, measure_ref
from harness.models import load_model, load_tokenizer, resolve
from tests.conftest import random_adapter

PROMPTS = ["Hi", "What is the refund window for a damaged item bought online last month?", "Name a colour.",
           "Explain, in two sentences, how to reset a password when the recovery e-mail is no longer read.", "2+2?"]


@pytest.fixture(scope="module")
def tiny():
    spec = resolve("builtin:tiny-random")
    return load_model(spec).eval(), load_tokenizer(spec)


def test_a_batch_of_prompts_is_timed_with_sane_positive_figures(tiny):
    model, tok = tiny
    r = measure_generation(model, tok, PROMPTS, max_new_tokens=5, batch_size=2, repeats=2, warmup=1)
    assert r["prompts"] == 5 and r["batch_size"] == 2 and r["new_tokens"] == 5 * 5
    assert len(r["ttft_runs_s"]) == 3 * 2 and len(r["seconds_runs"]) == 2  # 3 batches (2+2+1), 2 repeats
    assert 0 < r["ttft_s"] < r["seconds"] < 60
    assert r["tokens_per_s"] == pytest.approx(r["new_tokens"] / r["seconds"])
    assert r["seconds"] == pytest.approx(sum(r["seconds_runs"]) / 2)  # the median of two runs
    assert tok.padding_side == "left"


def test_every_model_generates_the_same_number_of_tokens_even_one_that_would_stop_at_once(tiny, tmp_path):
    """Tokens/s compares only if every model makes as many tokens: one whose first greedy token is its
    end-of-sequence would otherwise stop after one token and look fast."""
    model, tok = tiny
    adapted, _, _ = load_ref(str(random_adapter(tmp_path / "adapter")), merge=False)
    batch = tok.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True,
                                    return_tensors="pt", return_dict=True)
    with torch.no_grad():
        first = int(adapted(**batch).logits[0, -1].argmax())
    adapted.generation_config.eos_token_id = first  # greedy generation would end at its first token
    with torch.no_grad():
        unforced = adapted.generate(**batch, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert unforced.shape[1] - batch["input_ids"].shape[1] == 1  # so the check below can fail
    a = measure_generation(model, tok, PROMPTS[:1], max_new_tokens=6, repeats=1, warmup=0)
    b = measure_generation(adapted, tok, PROMPTS[:1], max_new_tokens=6, repeats=1, warmup=0)
    assert a["new_tokens"] == b["new_tokens"] == 6


def test_merged_lora_is_measured_merged(tmp_path):
    adapter = str(random_adapter(tmp_path / "adapter"))
    model, _, merged = load_ref(adapter, merge=True)
    assert merged and not any("lora" in name for name, _ in model.named_parameters())
    r = measure_ref(adapter, PROMPTS[:3], merge=True, max_new_tokens=3, batch_size=3, repeats=1)
    assert r["merged"] is True and r["new_tokens"] == 9 and r["tokens_per_s"] > 0
    plain = measure_ref("builtin:tiny-random", PROMPTS[:2], merge=True, max_new_tokens=2, repeats=1)
    assert plain["merged"] is False  # a plain model has nothing to merge


def test_a_prefix_adapter_cannot_be_merged_and_says_so(tmp_path):
    from peft import PrefixTuningConfig, get_peft_model

    spec = resolve("builtin:tiny-random")
    get_peft_model(load_model(spec), PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")).save_pretrained(
        tmp_path / "prefix")
    (tmp_path / "prefix" / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    with pytest.raises(HarnessError, match=r"PREFIX_TUNING\) cannot be merged into its base weights") as info:
        measure_ref(str(tmp_path / "prefix"), PROMPTS[:2], merge=True, max_new_tokens=2)
    assert "merge=False" in info.value.hint
    assert measure_ref(str(tmp_path / "prefix"), PROMPTS[:2], merge=False, max_new_tokens=2,
                       repeats=1)["new_tokens"] == 4


@pytest.mark.parametrize("bad", [{"prompts": []}, {"max_new_tokens": 0}, {"batch_size": 0}, {"repeats": 0},
                                 {"warmup": -1}])
def test_bad_settings_are_refused(tiny, bad):
    model, tok = tiny
    kw = {"max_new_tokens": 2, **bad}
    prompts = kw.pop("prompts", PROMPTS[:1])
    with pytest.raises(HarnessError, match="no prompts|must be an integer"):
        measure_generation(model, tok, prompts, **kw)
