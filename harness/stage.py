"""The stage contract: one shape for every stage of a cycle, kernel or plugin.

A stage is a :class:`Stage` object that a package exposes through an entry point, the way pytest and
lm-eval find plugins::

    [project.entry-points."harness.stages"]
    dpo = "rlhf.stages:DPO"

It declares its name, the stages it needs, the config section it reads (``section``; a third-party
stage brings its own pydantic model as ``config``), where it sits in a cycle (``order``) and
``run(ctx, cfg) -> StageResult``. Stages never import each other: they meet through artifacts, found
with ``ctx.layout`` and the outputs earlier stages recorded (``ctx.output("gate", "decision_id")``).
The runner (:mod:`harness.cycle`) decides from fingerprints which stages run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import EXIT_REJECTED, EXIT_WAITING  # 3: rejected by the gate; 4: paused for reviewers

if TYPE_CHECKING:
    from harness.config import CycleConfig
    from harness.layout import RunLayout

__all__ = ["Stage", "StageContext", "StageResult", "Pause", "COMPLETE", "EXIT_REJECTED", "EXIT_WAITING", "num"]

COMPLETE = ("done", "rejected", "awaiting sign-off", "not promoted")


def num(value: Any, spec: str = ".3f") -> str:
    """A metric for a stage's one-line summary; 'n/a' where a short run logged none."""
    return "n/a" if value is None else format(value, spec)


class StageResult(BaseModel):
    """What a stage reports back; the runner records it in ``cycle.json``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    status: Literal["done", "rejected", "awaiting sign-off", "not promoted"] = "done"
    summary: str = Field(description="One line, in plain words, for the cycle's summary table.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Headline numbers.")
    artifacts: list[str] = Field(default_factory=list, description="Files it wrote; all must exist for a skip.")
    outputs: dict[str, Any] = Field(default_factory=dict, description="Values later stages read (e.g. model).")
    fingerprint: str | None = Field(None, description="The key of its inputs (set by the runner).")
    warnings: list[str] = Field(default_factory=list, description="Optional work skipped; the stage still finished.")


class Pause(Exception):
    """A stage stops the cycle without failing (waiting for reviewers, or --until)."""

    def __init__(self, message: str, status: str, exit_code: int):
        super().__init__(message)
        self.status, self.exit_code = status, exit_code


@dataclass(frozen=True)
class Stage:
    """One stage of a cycle; see the module docstring."""

    name: str
    title: str
    run: Callable[["StageContext", Any], StageResult]
    order: float
    needs: tuple[str, ...] = ()  # stages whose results it reads (those in the cycle's plan)
    section: str | None = None   # the config section passed to run() as cfg
    reads: tuple[str, ...] = ()  # other config sections that change its result (hashed into its key)
    config: type[BaseModel] | None = None  # a plugin's own section model, added to the config as `section`
    enabled: Callable[["CycleConfig"], bool] | None = None  # in the plan? (default: always)
    inputs: Callable[["StageContext"], dict[str, Any]] | None = None  # more of its key: input files, versions
    prepare: Callable[["StageContext"], None] | None = None  # at cycle start, when it will run

    @property
    def sections(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(([self.section] if self.section else []) + list(self.reads)))


@dataclass
class StageContext:
    """What a stage knows of the cycle it runs in."""

    config: "CycleConfig"
    layout: "RunLayout"
    incumbent: str  # fixed for the run when it starts
    plan: list[str]
    records: dict[str, dict[str, Any]]  # cycle.json's per-stage records (earlier stages' outputs)
    force: bool = False  # replace earlier output (inputs changed, or --from)
    forced: bool = False  # --from: re-score what is cached, too
    until: str | None = None
    shared: dict[str, Any] = field(default_factory=dict)  # objects a plugin keeps for the whole cycle

    def output(self, stage: str, key: str, default: Any = None) -> Any:
        return self.records.get(stage, {}).get("outputs", {}).get(key, default)

    def model(self, stage: str) -> str:
        """The model a training stage produced (its adapter folder; a full model for sft.method full/freeze)."""
        return str(Path(self.output(stage, "model") or self.layout.adapter(stage)).resolve())

    @property
    def final_stage(self) -> str:
        """The training stage whose model is the candidate."""
        return next((s for s in ("online", "dpo") if s in self.plan), "sft")

    @property
    def candidate(self) -> str:
        return self.model(self.final_stage)

    def with_(self, **sections: dict[str, Any]) -> "CycleConfig":
        """The config with some fields of some sections replaced."""
        cfg = self.config
        return cfg.model_copy(update={name: getattr(cfg, name).model_copy(update=values)
                                      for name, values in sections.items()})

    def gate_config(self) -> "CycleConfig":
        """The config the gate (and the report) read: this run's candidate, incumbent and review evidence."""
        feedback_dir = self.layout.review if "review" in self.plan else self.layout.feedback
        return self.with_(gate={"candidate": self.candidate, "incumbent": self.incumbent,
                                "feedback_dir": self.config.gate.feedback_dir or feedback_dir,
                                **({"sft": self.config.gate.sft or self.model("sft")} if "sft" in self.plan else {})})
