"""Review settings for the Label Studio integration tests (the server itself: tests/conftest.py)."""

import pytest

from harness.config import load_config
from rlhf import sft
from tests.conftest import random_adapter, write_jsonl


@pytest.fixture
def review_config(tmp_path, ls_data_dir, prepared_data):
    cfg0 = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=fb",
                              f"sft.data_dir={prepared_data}", "sft.max_steps=2", "sft.learning_rate=5e-2",
                              "sft.warmup_ratio=0", "sft.eval_every=100"])
    adapter = sft.run(cfg0).model_path
    incumbent = random_adapter(tmp_path / "incumbent")  # answers with words: every pair is a usable training pair
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": f"p{i}", "prompt": f"Question number {i}: which queue handles red items?", "reference": "red queue",
         "unsafe_markers": ["zzz-never"]} for i in range(1, 5)])
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=fb",
        f"feedback.data_dir={ls_data_dir}", f"feedback.prompts={prompts}", f"feedback.candidate={adapter}",
        f"feedback.incumbent={incumbent}", "feedback.max_new_tokens=6", f"feedback.project=review {tmp_path.name}",
        "feedback.prompt_set=all",  # these tests are about Label Studio, not the held-out split
    ])
