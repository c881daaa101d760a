"""Shared fixtures: a persistent harness home (built-in models are built once), small chat data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# Built-in models are cached here across test sessions (gitignored); override with HARNESS_TEST_HOME.
TEST_HOME = Path(os.environ.get("HARNESS_TEST_HOME", REPO / ".pytest_cache" / "harness_home"))
os.environ["HARNESS_HOME"] = str(TEST_HOME)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def learnable_chats(n: int = 48, seed: int = 0) -> list[dict]:
    """Chats whose answers follow one fixed pattern: a model can learn them in a few steps."""
    rng = random.Random(seed)
    colors = ["red", "green", "blue", "amber", "violet", "teal"]
    rows = []
    for i in range(n):
        color = colors[i % len(colors)]
        extra = " ".join(rng.choice(["please", "quickly", "now", "kindly"]) for _ in range(rng.randint(0, 6)))
        rows.append({"messages": [
            {"role": "user", "content": f"Ticket {i}: which queue handles {color} items? {extra}".strip()},
            {"role": "assistant", "content": f"The {color} queue handles {color} items, ticket {i}."},
        ]})
    return rows


def random_adapter(out: Path, seed: int = 0, **lora: Any) -> Path:
    """A LoRA adapter on builtin:tiny-random with large random weights: a model that differs from its
    base, and (unlike the bare tiny model) answers with words rather than blank lines. ``lora``: other
    ``LoraConfig`` settings (``use_dora=True``, ``bias="all"``...)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from harness.models import load_model, load_tokenizer, resolve

    spec = resolve("builtin:tiny-random")
    torch.manual_seed(seed)
    model = get_peft_model(load_model(spec), LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                                        task_type="CAUSAL_LM", init_lora_weights=False, **lora))
    with torch.no_grad():  # make the adapter matter: its outputs move the log-probs by whole nats
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(50.0)
    model.save_pretrained(out)
    load_tokenizer(spec).save_pretrained(out)
    (out / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    return out


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "chats.jsonl", learnable_chats())


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from harness.models import prepare_builtin

    return prepare_builtin("tiny-random")


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory, tiny_model_dir) -> Path:
    """A prepared data folder (train/validation/card) shared by the training tests."""
    from harness import data
    from harness.config import load_config

    root = tmp_path_factory.mktemp("prepared")
    src = write_jsonl(root / "chats.jsonl", learnable_chats(48))
    cfg = load_config(None, [f"data.sources=[{{path: {src}, domain: tickets}}]", f"data.output_dir={root / 'data'}",
                             "data.dedupe.near=false"])
    return data.run(cfg).output_dir


@pytest.fixture(scope="session")
def ls_data_dir(tmp_path_factory) -> Path:
    """A real Label Studio server for the integration tests, started once per test session."""
    from feedback import server

    if not (server.default_venv() / "bin" / "label-studio").is_file():
        if os.environ.get("HARNESS_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(f"Label Studio is not installed in {server.default_venv()} (scripts/setup.sh installs it)")
        pytest.skip("Label Studio venv not installed (scripts/setup.sh installs it; CI requires it)")
    data_dir = tmp_path_factory.mktemp("labelstudio")
    server.serve(data_dir=data_dir, timeout=300)
    yield data_dir
    server.stop(data_dir)
