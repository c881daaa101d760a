"""Typed, versioned artifacts: the JSON files stages hand to each other and to auditors.

Every JSON artifact a cycle leaves (data card, evaluation summaries, review summary, review pull record,
training results, gate decision, ``cycle.json``; the audit report's model is in ``reports``) is one of
these pydantic models, with ``kind`` and ``schema_version``. Writers build the model and call
:func:`write_artifact`; readers call :func:`read_artifact`, which refuses a file written by a newer
harness (a larger ``schema_version`` than this code knows) with a clear error instead of misreading it,
and names the file and key of anything malformed.

Files from before ``schema_version`` existed carry ``version``; they are read as that version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import HarnessError

__all__ = [
    "Artifact", "read_artifact", "write_artifact", "artifact_dict", "Estimate", "ModelRef", "PolicyRef",
    "DataCounts", "DataCard", "EvalSummary", "FeedbackSummary", "FeedbackAgreement", "FeedbackPull", "LabelingRounds", "PromptSplit", "TrainingResult",
    "RuleCheck", "RuleOutcome", "GateDecision", "StageRecord", "CycleState", "ARTIFACTS",
]

A = TypeVar("A", bound="Artifact")


class Artifact(BaseModel):
    """Base of every JSON artifact: ``kind`` names what it is, ``schema_version`` its shape."""

    model_config = ConfigDict(extra="forbid")
    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = ""

    schema_version: int = Field(1, ge=1, description="Shape of this file; readers refuse a newer one than they know.")
    kind: str

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "version" in data and "schema_version" not in data:
                data["schema_version"] = data.pop("version")
            data.setdefault("kind", cls.KIND)
        return data


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Estimate(_Part):
    """A rate or mean with its confidence interval."""

    estimate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(ge=0)
    definition: str | None = None
    flagged: int | None = Field(None, ge=0, description="For unsafe_rate: units where a reviewer flagged the candidate.")


class ModelRef(_Part):
    ref: str
    fingerprint: str


class PolicyRef(_Part):
    path: str
    name: str
    version: int
    sha256: str
    allow_simulated: bool = Field(False, description="Whether the policy let scripted reviews satisfy feedback rules.")


# ---------------------------------------------------------------- data


class DataCounts(_Part):
    read: int
    dropped: int
    train: int
    validation: int
    replay_added: int = 0
    contaminated: int = Field(0, description="Rows dropped because they hold an evaluation item (harness.decontam).")
    augmented: int = Field(0, description="Training rows added by data.augment (paraphrases), included in train.")
    per_domain: dict[str, dict[str, int]] = Field(default_factory=dict)


class DataCard(Artifact):
    """``<run>/data/data_card.json``: what was read, dropped (and why), kept and split."""

    KIND: ClassVar[str] = "data_card"
    kind: Literal["data_card"] = "data_card"
    status: Literal["complete"] = "complete"
    created: str
    fingerprint: str
    seed: int
    settings: dict[str, Any]
    inputs: list[dict[str, Any]]
    decontaminated_against: dict[str, int] = Field(
        default_factory=dict, description="Evaluation suites (id: version) rows were checked against; empty: not checked.")
    counts: DataCounts
    drop_summary: dict[str, int]
    drops: list[dict[str, Any]]
    lengths: dict[str, dict[str, Any]]
    notes: list[str] = Field(default_factory=list)
    augmentation: dict[str, Any] | None = Field(
        None, description="data.augment: method, n, model, generated, kept and dropped counts (harness.augment).")
    outputs: dict[str, str] = Field(default_factory=dict, description="sha256 of train.jsonl and validation.jsonl.")


# ---------------------------------------------------------------- evaluation


class EvalSummary(Artifact):
    """``<run>/eval/<model fingerprint>/<group>/<suite>/summary.json``: one model on one suite."""

    KIND: ClassVar[str] = "eval_summary"
    kind: Literal["eval_summary"] = "eval_summary"
    status: Literal["complete"] = "complete"
    created: str | None = None
    suite: str
    suite_version: int | str
    description: str | None = None
    source: str | None = None
    license: str | None = None
    citation: str | None = None
    model: str
    model_fingerprint: str
    data_hash: str
    cache_key: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(ge=0)
    metrics: dict[str, dict[str, Any]] = Field(description="Per metric: estimate, ci_low, ci_high, n, higher_is_better.")
    by_category: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str | None] = Field(default_factory=dict)
    seconds: float | None = None
    retrieval: dict[str, Any] | None = Field(
        None, description="RAG variants (<suite>+rag): retriever, k, corpus, index fingerprint, recall@k with CI.")


# ---------------------------------------------------------------- feedback


class FeedbackSummary(Artifact):
    """``<run>/feedback/summary.json`` (and ``review/``): what reviewers decided, with the gate's rates."""

    KIND: ClassVar[str] = "feedback_summary"
    kind: Literal["feedback_summary"] = "feedback_summary"
    created: str
    mode: Literal["pairwise", "rating"] = "pairwise"
    simulated: bool
    policy: str
    annotations: int
    tasks_reviewed: int
    resolved: dict[str, int]
    dropped: dict[str, int]
    win_rate: Estimate
    length_controlled_win_rate: dict[str, Any] | None = Field(
        None, description="The win rate at equal answer lengths (feedback.winrate): a gain that is only length shows here.")
    unsafe_rate: Estimate
    pairs: int
    aspects: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per rubric aspect (facts, safe, no_invented_numbers, concise): counts of "
                                          "candidate better / incumbent better / same and the aspect win rate with its CI.")
    agreement: dict[str, Any]
    unpaired: dict[str, Any] | None = None


class LabelingRounds(Artifact):
    """``<run>/feedback/rounds.json``: how the labeling budget was spent, round by round (feedback.rounds)."""

    KIND: ClassVar[str] = "labeling_rounds"
    kind: Literal["labeling_rounds"] = "labeling_rounds"
    created: str
    select: str
    budget: int = Field(ge=1)
    pool_pairs: int = Field(ge=0, description="On-policy pairs reviewers could have been asked about.")
    planned: list[int] = Field(description="Pairs per round, as planned.")
    ensemble: int
    rounds: list[dict[str, Any]]


class FeedbackAgreement(Artifact):
    """``<run>/feedback/agreement.json``: how much the reviewers agreed (chance-corrected), per pair and reviewer."""

    KIND: ClassVar[str] = "feedback_agreement"
    kind: Literal["feedback_agreement"] = "feedback_agreement"
    annotators: list[str]
    tasks: int = Field(ge=0)
    annotations: int = Field(ge=0)
    krippendorff_alpha_preference_nominal: float | None = None
    krippendorff_alpha_rating_ordinal: float | None = None
    cohens_kappa_pairs: list[dict[str, Any]] = Field(default_factory=list)
    cohens_kappa_mean: float | None = None
    fleiss_kappa: float | None = None
    per_reviewer: dict[str, dict[str, Any]] = Field(default_factory=dict)


class FeedbackPull(Artifact):
    """``<run>/feedback/pull.json``: when labels were pulled from Label Studio, and how many."""

    KIND: ClassVar[str] = "feedback_pull"
    kind: Literal["feedback_pull"] = "feedback_pull"
    pulled: str
    project_id: int | str
    annotations: int = Field(ge=0)
    new: int = Field(ge=0)
    counts: dict[str, int] = Field(default_factory=dict, description="Annotations read, and those skipped (why).")


class PromptSplit(Artifact):
    """``<run>/prompts/split.json``: which review prompts train the preference stages and which only the
    final review sees; no normalized prompt is on both sides (checked when written)."""

    KIND: ClassVar[str] = "prompt_split"
    kind: Literal["prompt_split"] = "prompt_split"
    created: str
    seed: int
    method: str
    heldout_fraction: float
    source: dict[str, str]
    heldout_source: dict[str, str] | None = None
    training: list[str] = Field(description="Prompt ids whose labels train reward, DPO and online RL.")
    heldout: list[str] = Field(description="Prompt ids only the final review uses.")
    by_category: dict[str, dict[str, int]]
    overlap_checked: bool
    contaminated: list[dict[str, str]] = Field(
        default_factory=list, description="Training prompts left out because they hold an evaluation item (id, why).")


# ---------------------------------------------------------------- training


class TrainingResult(Artifact):
    """``<run>/<stage>/result.json`` of a training stage (sft, reward, dpo, online); written last, so its
    presence means the stage completed. The reward model's held-out accuracy is in ``metrics.heldout``."""

    KIND: ClassVar[str] = "training_result"
    kind: str = Field(pattern=r"^[a-z_]+_result$")
    status: Literal["complete"] = "complete"
    finished: str
    fingerprint: str
    model_path: str
    model_sha256: str
    metrics: dict[str, Any]
    inputs: dict[str, Any] = Field(default_factory=dict)
    method: str | None = None
    precision: str | None = None
    learning_rate: float | None = None
    base_model: str | None = None
    base_location: str | None = None
    model_kind: str | None = None
    data_dir: str | None = None
    backbone: str | None = None
    objective: str | None = None
    beta: float | None = None
    loss_type: str | None = None
    algorithm: str | None = None
    reward_functions: dict[str, float] | None = None
    merged_path: str | None = None


# ---------------------------------------------------------------- gate


class RuleCheck(BaseModel):
    """One piece of evidence judged by a rule: pass/fail, the reason in words, the files it read."""

    model_config = ConfigDict(extra="allow")  # the statistics differ per rule kind (see harness.gate)

    passed: bool
    reason: str
    evidence: list[str]


class RuleOutcome(_Part):
    id: str
    kind: str
    description: str = ""
    requirement: str
    passed: bool
    checks: list[RuleCheck]


class GateDecision(Artifact):
    """``<run>/gate/decision.json`` and ``<run>/gate/<decision id>.json``."""

    KIND: ClassVar[str] = "gate_decision"
    kind: Literal["gate_decision"] = "gate_decision"
    decision_id: str = Field(pattern=r"^dec-[0-9A-Za-z-]+$")
    created: str
    run_id: str | None
    passed: bool
    outcome: Literal["pass", "fail"]
    signoff_required: bool
    summary: str
    policy: PolicyRef
    candidate: ModelRef
    incumbent: ModelRef
    sft_only: ModelRef | None = Field(None, description="The SFT-only model an `against: sft` rule compared the "
                                                        "candidate with (the alignment effect), when the policy has one.")
    rules: list[RuleOutcome]
    simulated_reviews: bool = Field(False, description="A feedback rule was decided on scripted (simulated) reviews.")
    inputs: dict[str, str] = Field(description="sha256 of every file the decision read.")


# ---------------------------------------------------------------- cycle


class StageRecord(BaseModel):
    """One stage's entry in ``cycle.json``: the runner's bookkeeping plus the stage's StageResult."""

    model_config = ConfigDict(extra="allow")  # a plugin stage's outputs may carry its own keys

    status: str | None = None
    key: str | None = None
    this_run: str | None = None


class CycleState(Artifact):
    """``<run>/cycle.json``: where a cycle stands, stage by stage (what ``--resume`` reads)."""

    KIND: ClassVar[str] = "cycle_state"
    kind: Literal["cycle_state"] = "cycle_state"
    run_id: str | None
    created: str
    updated: str | None = None
    config_file: str | None = None
    overrides: list[str] = Field(default_factory=list)
    incumbent: str | None = None
    outcome: str | None = None
    stages: dict[str, StageRecord] = Field(default_factory=dict)


ARTIFACTS: dict[str, type[Artifact]] = {m.KIND: m for m in (
    DataCard, EvalSummary, FeedbackSummary, FeedbackAgreement, FeedbackPull, LabelingRounds, PromptSplit, TrainingResult, GateDecision,
    CycleState)}


def read_artifact(path: str | os.PathLike, model: type[A]) -> A:
    """Read and check one artifact: a newer ``schema_version`` than ``model`` knows, the wrong ``kind``,
    or a malformed field is a :class:`HarnessError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist", hint="run the stage that writes it first") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})",
                           hint="it was damaged or edited by hand; re-run the stage that writes it") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path} does not hold a JSON object", hint="re-run the stage that writes it")
    version = data.get("schema_version", data.get("version", 1))
    if isinstance(version, int) and version > model.SCHEMA_VERSION:
        raise HarnessError(
            f"{path} was written by a newer harness ({data.get('kind', model.KIND)} schema_version {version}; "
            f"this one reads up to {model.SCHEMA_VERSION})",
            hint="upgrade the harness (pip install -U alignment-harness), or re-run the stage that wrote it with this one")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
                             f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}" for e in exc.errors()[:5])
        raise HarnessError(f"{path} is not a valid {model.KIND or model.__name__} artifact: {problems}",
                           hint="re-run the stage that writes it") from None


def artifact_dict(path: str | os.PathLike, model: type[Artifact]) -> dict[str, Any]:
    """:func:`read_artifact`, as the plain JSON dict (for code that reads it by key)."""
    return read_artifact(path, model).model_dump(mode="json", exclude_none=False)


def write_artifact(path: str | os.PathLike, artifact: Artifact | dict[str, Any], model: type[Artifact] | None = None) -> Path:
    """Validate (a dict against ``model``) and write atomically."""
    from harness.artifacts import atomic_write_json

    if not isinstance(artifact, Artifact):
        if model is None:
            raise TypeError("write_artifact needs the model for a dict")
        try:
            artifact = model.model_validate(artifact)
        except ValidationError as exc:  # a bug in the writer, not the user's input: say exactly what
            raise ValueError(f"{path}: the {model.KIND} artifact does not match its schema:\n{exc}") from None
    return atomic_write_json(path, artifact.model_dump(mode="json"))
