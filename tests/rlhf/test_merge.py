import json

import pytest
import torch

from harness.config import load_config
from harness.errors import HarnessError
from harness.models import load_model, load_tokenizer, resolve
from rlhf import merge, sft


def _train(tmp_path, data_dir, method):
    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", f"run.id={method}",
                             f"sft.data_dir={data_dir}", "sft.max_steps=3", f"sft.method={method}",
                             "sft.learning_rate=2e-2", "sft.warmup_ratio=0", "sft.eval_every=100"])
    sft.run(cfg)
    return cfg


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_merged_model_matches_base_plus_adapter(tmp_path, prepared_data, method):
    cfg = _train(tmp_path, prepared_data, method)
    result = merge.run(cfg)
    assert result.max_abs_diff < 1e-4
    meta = json.loads((result.output / "harness_merge.json").read_text())
    assert meta["base"] == "builtin:tiny-random"
    # Independent check: the merged folder loads as a plain model and agrees with base + adapter,
    # and the adapter really changes the base's outputs (so the comparison means something).
    adapter = resolve(str(tmp_path / "runs" / method / "sft" / "adapter"))
    tok = load_tokenizer(adapter)
    batch = tok(["Which queue handles red items?"], return_tensors="pt")
    with torch.no_grad():
        merged_logits = load_model(resolve(str(result.output))).eval()(**batch).logits
        adapted_logits = load_model(adapter).eval()(**batch).logits
        base_logits = load_model(resolve("builtin:tiny-random")).eval()(**batch).logits
    assert torch.allclose(merged_logits, adapted_logits, atol=1e-4)
    assert not torch.allclose(base_logits, adapted_logits, atol=1e-4)


def test_prefix_adapter_cannot_merge(tmp_path, prepared_data):
    cfg = _train(tmp_path, prepared_data, "prefix")
    with pytest.raises(HarnessError, match="PREFIX_TUNING adapters cannot be merged"):
        merge.run(cfg)
    assert not (tmp_path / "runs" / "prefix" / "merged").exists()
