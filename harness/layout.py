"""Where everything of one run lives: the only code that knows the folders under ``runs/<id>/``.

Stages find each other's artifacts through a :class:`RunLayout` (``config.layout().adapter("sft")``),
never by building paths of their own, so the layout can change in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    """The folders and files of one run, rooted at ``<run.root>/<run.id>``."""

    dir: Path

    def stage(self, name: str) -> Path:
        """A stage's own folder (``sft/``, ``dpo/``, ``gate/`` ...)."""
        return self.dir / name

    def adapter(self, stage: str) -> Path:
        """The adapter a training stage wrote (sft, reward, dpo, online)."""
        return self.dir / stage / "adapter"

    def domain_run(self, stage: str, domain: str) -> Path:
        """One domain's training run of a stage that trains one adapter per domain (sft.per_domain):
        its adapter, checkpoints and result; the stage's own ``adapter`` folder is then the multi-adapter."""
        return self.dir / stage / "domains" / domain

    def domain_data(self, stage: str, domain: str) -> Path:
        """The prepared data one domain's run trains on: its rows of the run's data, plus its share of replay."""
        return self.dir / stage / "domain-data" / domain

    def result(self, stage: str) -> Path:
        return self.dir / stage / "result.json"

    def metrics(self, stage: str) -> Path:
        return self.dir / stage / "metrics.jsonl"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def eval(self) -> Path:
        return self.dir / "eval"

    @property
    def feedback(self) -> Path:
        """The first review round (the SFT candidate); its preference pairs train the preference stages."""
        return self.dir / "feedback"

    @property
    def review(self) -> Path:
        """The final review round (the final candidate): the gate's review evidence."""
        return self.dir / "review"

    @property
    def alignment_review(self) -> Path:
        """The final candidate vs the SFT-only candidate on held-out prompts: did the preference stages help."""
        return self.review / "alignment"

    @property
    def prompt_split(self) -> Path:
        """Which review prompts train the preference stages and which are held out for the final review."""
        return self.dir / "prompts" / "split.json"

    @property
    def preferences(self) -> Path:
        return self.feedback / "preferences.jsonl"

    @property
    def unpaired(self) -> Path:
        return self.feedback / "unpaired.jsonl"

    @property
    def responses(self) -> Path:
        """Generated responses, cached by model fingerprint."""
        return self.dir / "responses"

    @property
    def gate(self) -> Path:
        return self.dir / "gate"

    def decision(self, decision_id: str | None = None) -> Path:
        """The latest gate decision, or one by its id."""
        return self.gate / (f"{decision_id}.json" if decision_id else "decision.json")

    @property
    def report(self) -> Path:
        return self.dir / "report"

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def cycle_state(self) -> Path:
        return self.dir / "cycle.json"

    @property
    def resolved_config(self) -> Path:
        """The config the cycle last ran with, every section resolved (what ``harness config show`` prints)."""
        return self.dir / "config.yaml"

    def error_log(self, stage: str) -> Path:
        """The traceback of an unexpected error inside a stage."""
        return self.dir / f"{stage}-error.txt"
