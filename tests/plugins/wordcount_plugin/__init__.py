"""A third-party stage, as a package outside the harness would write it: counts the words of the
prepared training chats. Registered through the 'harness.stages' entry point in its dist-info."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from harness.artifacts import atomic_write_json, read_jsonl
from harness.stage import Stage, StageContext, StageResult


class WordCountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(1, ge=1, description="Chats with fewer words are counted as short.")
    crash: bool = Field(False, description="Fail as a bug would (an unexpected exception), for the tests.")


def run(ctx: StageContext, cfg: WordCountConfig) -> StageResult:
    rows = read_jsonl(ctx.layout.data / "train.jsonl")
    if cfg.crash:
        raise ZeroDivisionError("division by zero")
    words = [sum(len(m["content"].split()) for m in row["messages"]) for row in rows]
    short = sum(1 for w in words if w < cfg.min_words)
    out = atomic_write_json(ctx.layout.stage("word_count") / "counts.json",
                            {"chats": len(words), "words": sum(words), "short": short, "min_words": cfg.min_words})
    return StageResult(summary=f"{sum(words)} words in {len(words)} chats ({short} short)",
                       metrics=json.loads(out.read_text()), artifacts=[str(out)])


STAGE = Stage(name="word_count", title="count the training words", order=15, needs=("data",),
              section="word_count", config=WordCountConfig, run=run)
