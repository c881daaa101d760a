"""A real Label Studio server for the integration tests, started once per test session."""

import os
from pathlib import Path

import pytest

from feedback import server
from harness.config import load_config
from rlhf import sft
from tests.conftest import write_jsonl


@pytest.fixture(scope="session")
def ls_data_dir(tmp_path_factory) -> Path:
    if not (server.default_venv() / "bin" / "label-studio").is_file():
        if os.environ.get("HARNESS_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(f"Label Studio is not installed in {server.default_venv()} (scripts/setup.sh installs it)")
        pytest.skip("Label Studio venv not installed (scripts/setup.sh installs it; CI requires it)")
    data_dir = tmp_path_factory.mktemp("labelstudio")
    server.serve(data_dir=data_dir, timeout=300)
    yield data_dir
    server.stop(data_dir)


@pytest.fixture
def review_config(tmp_path, ls_data_dir, prepared_data):
    cfg0 = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=fb",
                              f"sft.data_dir={prepared_data}", "sft.max_steps=2", "sft.learning_rate=5e-2",
                              "sft.warmup_ratio=0", "sft.eval_every=100"])
    adapter = sft.run(cfg0).model_path
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": f"p{i}", "prompt": f"Question number {i}: which queue handles red items?", "reference": "red queue",
         "unsafe_markers": ["zzz-never"]} for i in range(1, 5)])
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=fb",
        f"feedback.data_dir={ls_data_dir}", f"feedback.prompts={prompts}", f"feedback.candidate={adapter}",
        "feedback.incumbent=builtin:tiny-random", "feedback.max_new_tokens=6", f"feedback.project=review {tmp_path.name}",
    ])
