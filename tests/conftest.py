"""Shared fixtures: a persistent harness home (built-in models are built once), small chat data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

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
