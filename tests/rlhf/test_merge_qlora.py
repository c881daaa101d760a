"""Merging an adapter trained on a 4-bit base (QLoRA): the drift to the full-precision merge is measured,
warned about and recorded, never refused."""

import json

import pytest
import torch

from harness.models import load_tokenizer, resolve
from rlhf import merge
from tests.conftest import random_adapter


def _qlora_adapter(out):
    """A LoRA adapter made on the 4-bit NF4 base, saved as QLoRA training saves it (non-zero B, so the
    adapter changes the model)."""
    from peft import LoraConfig, get_peft_model

    from harness.models import load_model
    from rlhf.methods import four_bit_config

    spec = resolve("builtin:tiny-random")
    torch.manual_seed(0)
    base = load_model(spec, quantization_config=four_bit_config(), device_map="cpu")
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM",
                                            init_lora_weights=False))
    model.save_pretrained(out)
    load_tokenizer(spec).save_pretrained(out)
    (out / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random", "method": "qlora"}))
    return out


def _probe_logits(model, tokenizer):
    batch = tokenizer(list(merge.PROBE_TEXTS), return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.float(), batch["attention_mask"].bool()


def test_qlora_merge_warns_with_the_measured_drift_and_records_it(tmp_path, tiny_model_dir, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    adapter = _qlora_adapter(tmp_path / "adapter")
    result = merge.merge_adapter(adapter, tmp_path / "merged")
    err = capsys.readouterr().err
    assert result.max_abs_diff < 1e-4  # the merge itself is exact in full precision
    meta = json.loads((tmp_path / "merged" / "harness_merge.json").read_text())
    assert meta["trained_on_4bit"] is True and meta["four_bit_drift"] == result.four_bit_drift
    assert "4-bit (QLoRA) base" in err and f"{result.four_bit_drift:.2e}" in err
    assert "merged model written" in err and f"{result.max_abs_diff:.1e}" in err

    # Independently: 4-bit base + adapter (what QLoRA trained) against the merged folder.
    tok = load_tokenizer(resolve(str(adapter)))
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    four_bit = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, quantization_config=quant, device_map="cpu"), adapter).eval()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    (q_logits, mask), (m_logits, _) = _probe_logits(four_bit, tok), _probe_logits(merged, tok)
    expected = float((q_logits - m_logits).abs()[mask].max())
    assert expected > 1e-3  # 4-bit rounding of the base really moves the logits: the figure means something
    assert result.four_bit_drift == pytest.approx(expected, rel=1e-3)


def test_full_precision_lora_merge_measures_no_four_bit_drift(tmp_path, capsys):
    result = merge.merge_adapter(random_adapter(tmp_path / "adapter"), tmp_path / "merged")
    err = capsys.readouterr().err
    meta = json.loads((tmp_path / "merged" / "harness_merge.json").read_text())
    assert result.four_bit_drift is None and meta["four_bit_drift"] is None and meta["trained_on_4bit"] is False
    assert "4-bit" not in err and f"{result.max_abs_diff:.1e}" in err


def test_failed_merge_states_the_difference(tmp_path):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"differ from base\+adapter by up to \d\.\d+e[-+]\d+") as info:
        merge.merge_adapter(random_adapter(tmp_path / "adapter"), tmp_path / "merged", atol=1e-12)
    assert "nothing written" in str(info.value) and not (tmp_path / "merged").exists()
