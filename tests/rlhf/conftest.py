"""Preference data and a starting adapter for the RLHF stage tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import write_jsonl

TOPICS = ["refund", "invoice", "password", "shipping", "warranty", "account", "delivery", "discount", "upgrade",
          "login", "billing", "contract", "support", "license", "backup", "printer", "laptop", "network", "email",
          "calendar"]


def preference_rows(n: int = 60, seed: int = 0) -> list[dict]:
    """A learnable preference: polite, helpful answers beat curt refusals, whatever the topic."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Question {i}: how do I handle a {topic} issue {rng.choice(['today', 'now', 'quickly'])}?"
        rows.append({
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": f"Happy to help with your {topic}. Thank you for asking, have a wonderful day!"}],
            "rejected": [{"role": "assistant", "content": f"{topic} no. Figure it out yourself. Go away."}],
            "provenance": {"prompt_id": f"q{i}", "simulated": True},
        })
    return rows


@pytest.fixture
def preferences_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "preferences.jsonl", preference_rows())


@pytest.fixture(scope="session")
def start_adapter(tmp_path_factory, tiny_model_dir) -> Path:
    """A LoRA adapter on builtin:tiny-random with non-zero weights, so it differs from its base: the
    preference stages must use it (not the bare base) as their reference."""
    from tests.conftest import random_adapter

    return random_adapter(tmp_path_factory.mktemp("start") / "adapter")
