"""The JSON of ``harness report diff`` (:class:`RunDiff`, ``diff-<RUN_A>.json``): what changed from run A
to run B. Built by :mod:`reports.diff`; every part refuses keys it does not know."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.schemas import Artifact

__all__ = ["RunDiff", "RunRef", "Change", "StageMethod", "MetricChange", "PolicyDiff", "DecisionSide", "DecisionDiff"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRef(_Part):
    run_id: str
    version: str | None = Field(None, description="The registry version this run produced (diff of --versions).")
    project: str | None = Field(description="The registered model name the run belongs to, where known.")
    decision_id: str | None
    read: list[str] = Field(description="Files the diff read, relative to the run folder.")


class Change(_Part):
    key: str = Field(description="Dotted key, e.g. dpo.beta or counts.train.")
    a: Any = Field(None, description="Value in run A (null: not set there).")
    b: Any = Field(None, description="Value in run B (null: not set there).")


class StageMethod(_Part):
    stage: str
    a: str | None = Field(description="The stage's method in run A (null: the stage did not run).")
    b: str | None
    changed: bool


class MetricChange(_Part):
    role: str = Field(description="candidate, sft_candidate, incumbent, base, or 'model <fingerprint>'.")
    suite: str
    metric: str
    a: float | None = Field(description="Run A's estimate (paired: its mean over the shared documents).")
    b: float | None
    change: float | None = Field(description="b - a.")
    ci_low: float | None
    ci_high: float | None
    level: float = 0.95
    n: int | None = Field(description="Paired: documents both runs scored; unpaired: the smaller sample.")
    comparison: Literal["paired", "unpaired", "only in one run"] = Field(
        description="paired: the same documents in both runs (a paired bootstrap); unpaired: two independent "
                    "estimates (other documents, data or suite version).")
    test: str | None = None
    same_model: bool | None = Field(description="Both runs evaluated the same model (fingerprint) in this role.")
    higher_is_better: bool | None = None
    note: str


class PolicyDiff(_Part):
    a: str | None = Field(description="Policy name and version of run A's gate decision.")
    b: str | None
    changes: list[str]


class DecisionSide(_Part):
    decision_id: str
    outcome: str
    failed_rules: list[str]
    promoted_version: str | None = Field(description="The registry version the ledger records for it, if promoted.")


class DecisionDiff(_Part):
    a: DecisionSide | None
    b: DecisionSide | None
    changes: list[str]


class RunDiff(Artifact):
    """``diff-<RUN_A>.json``: what changed from run A to run B."""

    KIND: ClassVar[str] = "run_diff"
    kind: Literal["run_diff"] = "run_diff"
    created: str
    a: RunRef
    b: RunRef
    no_changes: bool
    project_checked: bool = Field(description="Both runs were found to belong to the same project (registry model); "
                                              "false: one run's project could not be told (see notes), so unchecked.")
    summary: list[str] = Field(description="The changes in plain words, most important first.")
    config_source: Literal["config.yaml", "manifest.json"]
    config: list[Change] = Field(description="Changed config keys (run.id excluded).")
    data: list[Change] = Field(description="Changed fields of data/data_card.json.")
    base_model: Change
    methods: list[StageMethod]
    metrics: list[MetricChange]
    policy: PolicyDiff
    decision: DecisionDiff
    notes: list[str]
