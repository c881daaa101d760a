"""The audit report's JSON (``<run>/report/audit.json``) as a pydantic model, and the JSON Schema file
generated from it (``reports/audit.schema.json``, for auditors' own tools).

Regenerate the file after changing a model here or in :mod:`harness.schemas`::

    python -m reports.schema

(a test fails while the file is stale).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.schemas import Artifact, DataCounts, ModelRef, PolicyRef, PromptSplit, RuleOutcome
from reports.profiles import ProfileSection

__all__ = ["AuditReport", "SCHEMA_PATH", "json_schema", "schema_text", "main"]

SCHEMA_PATH = Path(__file__).resolve().parent / "audit.schema.json"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Decision(_Part):
    status: Literal["promoted", "promoted, later rolled back", "promoted, later superseded", "rejected",
                    "passed, not yet promoted"] = Field(
        description="'later superseded': a later promotion replaced it; 'later rolled back': a rollback moved the "
                    "champion away from it.")
    plain: str = Field(description="The decision in plain words (the report's first line).")
    decision_id: str
    decided: str
    outcome: Literal["pass", "fail"]
    policy: PolicyRef
    signoff_required: bool
    approver: str | None = None
    promoted: dict[str, Any] | None = Field(None, description="The ledger entry of the promotion, when promoted.")
    failed_rules: list[str]
    simulated_reviews: bool = Field(False, description="Some reviews in this run came from scripted reviewers, not "
                                                       "people (the report says so in its first lines).")


class LineageStage(_Part):
    model_path: str | None = None
    model_sha256: str | None = None
    method: str | None = None
    started_from: str | None = None
    finished: str | None = None


class Lineage(_Part):
    base: str
    candidate: ModelRef
    incumbent: ModelRef
    stages: dict[str, LineageStage]


class DataCardExtract(_Part):
    counts: DataCounts | None = None
    drops: list[dict[str, Any]] | None = None
    inputs: list[dict[str, Any]] | None = None
    outputs: dict[str, str] | None = None
    lengths: dict[str, dict[str, Any]] | None = None


class EvaluatedModel(_Part):
    role: Literal["candidate", "incumbent", "base", "sft_candidate", "other"] = Field(
        description="candidate: the final candidate the gate decided on; sft_candidate: the SFT stage's model.")
    label: str = Field(description="The role in words, as the report names the model (e.g. 'SFT candidate').")
    fingerprint: str
    model: str
    suites: dict[str, dict[str, Any]] = Field(description="Per suite: version, n, license, source, metrics with CIs.")


class ComparisonRow(_Part):
    """The final candidate beside the incumbent on one suite and metric, on the same documents."""

    suite: str
    metric: str | None = Field(description="None when the suite has no paired change (see note).")
    n: int | None = None
    incumbent: float | None = None
    candidate: float | None = None
    change: float | None = Field(None, description="Candidate minus incumbent (paired, same documents).")
    ci_low: float | None = None
    ci_high: float | None = None
    test: str | None = None
    p_value: float | None = None
    higher_is_better: bool | None = None
    ideal: float | None = Field(None, description="For a bias score: the unbiased value (closer is better).")
    verdict: Literal["better", "worse", "no clear change"] | None = Field(
        None, description="None for a metric whose best value is in the middle (its ideal): see distance.")
    distance: dict[str, float] | None = Field(None, description="|value - ideal| of each model, for such a metric.")
    note: str | None = None


class CategoryRow(_Part):
    """One bias category and metric: every model side by side, each with a 95 % CI."""

    category: str
    metric: str
    models: dict[str, dict[str, Any]] = Field(description="Per model label (its role in words): estimate, ci_low, "
                                                          "ci_high, n.")
    n: int
    too_few: bool = Field(description="Fewer items than the report's minimum: shown, not to be read into.")
    change: dict[str, Any] | None = Field(None, description="Final candidate minus incumbent, paired, with its CI.")
    note: str | None = None


class CitedFile(_Part):
    path: str = Field(description="Relative to the run folder ('../../policy.yaml' for a file beside the runs).")
    root: Literal["run"]
    sha256: str
    bytes: int


class Evidence(_Part):
    """What the report was built from, pinned (``harness report verify`` re-hashes it)."""

    files: list[CitedFile]
    ledger_head: dict[str, Any] | None = Field(None, description="The ledger's entries and last hash when the report was written.")
    outputs: dict[str, str] = Field(default_factory=dict, description="SHA-256 of audit.html and audit.pdf.")


class Signature(_Part):
    algorithm: Literal["HMAC-SHA256"]
    key_env: str = Field(description="The environment variable that held the key.")
    value: str


class Reviewers(_Part):
    summary: dict[str, Any]
    alignment: dict[str, Any] | None = Field(
        None, description="The final candidate vs the SFT-only candidate on held-out prompts (win rate with CI).")
    agreement: dict[str, Any]
    disagreements: list[dict[str, Any]]
    rounds: dict[str, Any] | None = Field(
        None, description="Labeling rounds of the first review (feedback.rounds): pairs chosen per round and how.")


class Environment(_Part):
    manifest: dict[str, Any] | None = None
    seed: int
    stages: list[str]


class License(_Part):
    license: str | None = None
    source: str | None = None


class LedgerCheck(BaseModel):
    model_config = ConfigDict(extra="allow")  # harness.ledger may add details of a problem found

    path: str
    ok: bool
    entries: int
    problem: str | None = None
    line: int | None = None
    message: str


class RagRow(_Part):
    """One model on one domain suite and metric, without and with retrieved passages (harness.rag)."""

    model: str = Field(description="The model's role in words, as in the evaluation tables.")
    fingerprint: str
    suite: str = Field(description="The plain suite; its RAG results are <suite>+rag.")
    metric: str
    plain: dict[str, Any] | None = Field(description="Without RAG: estimate, ci_low, ci_high, n (None if not scored).")
    rag: dict[str, Any] = Field(description="With the retrieved passages: estimate, ci_low, ci_high, n.")
    recall: dict[str, Any] | None = Field(description="Retrieval recall@k of the gold sections: estimate, CI, n, k.")


class PdfStatus(_Part):
    """Whether audit.pdf was printed, by which renderer, or why it was skipped."""

    requested: bool
    renderer: Literal["weasyprint", "chromium"] | None
    written: bool
    skipped: str | None


class AuditReport(Artifact):
    """``<run>/report/audit.json``: everything the HTML and PDF report show, for machines."""

    KIND: ClassVar[str] = "audit_report"
    kind: Literal["audit_report"] = "audit_report"
    created: str
    run_id: str | None
    decision: Decision
    lineage: Lineage
    data_card: DataCardExtract | None = None
    evaluation: list[EvaluatedModel]
    comparison: list[ComparisonRow] = Field(default_factory=list, description="Final candidate vs incumbent, per suite and metric.")
    bias_categories: dict[str, list[CategoryRow]] = Field(default_factory=dict, description="Per bias suite.")
    rag: list[RagRow] | None = Field(None, description="With eval.rag: each model without and with retrieved passages.")
    reviewers: Reviewers | None = None
    prompt_split: PromptSplit | None = Field(None, description="Training vs held-out review prompts.")
    reward_model: dict[str, Any] | None = Field(
        None, description="The reward model's trust report (accuracy vs baselines, calibration, length correlation) "
                          "and whether online RL overrode a failed check.")
    curves: dict[str, list[dict[str, Any]]]
    rules: list[RuleOutcome]
    environment: Environment
    licenses: dict[str, License]
    ledger: LedgerCheck
    pdf: PdfStatus
    evidence: Evidence | None = None
    signature: Signature | None = Field(None, description="With $HARNESS_LEDGER_KEY set: HMAC-SHA256 of the JSON without it.")
    profiles: list[ProfileSection] | None = Field(
        None, description="Regulatory mapping profiles asked for (--profile, cycle.report_profiles): per item of the "
                          "regulation, where its evidence is in this report, or 'missing'.")


def json_schema() -> dict[str, Any]:
    schema = AuditReport.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "harness audit report",
            "$comment": "Generated from reports/schema.py by 'python -m reports.schema'; do not edit.", **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    from harness.artifacts import atomic_write_text

    atomic_write_text(SCHEMA_PATH, schema_text())
    print(f"wrote {SCHEMA_PATH}")


if __name__ == "__main__":
    main()
