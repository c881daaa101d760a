"""The ``feedback`` config section (review tasks in Label Studio, reviewers, label resolution),
registered through the ``harness.sections`` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.sections import InputPath, ModelRef, Section

__all__ = ["FeedbackConfig"]


class FeedbackConfig(Section):
    url: str | None = Field(None, description="An existing Label Studio server. Default: the local one ('harness feedback serve').")
    token_env: str = Field("LABEL_STUDIO_API_KEY", description="Environment variable holding the token for feedback.url.")
    venv: InputPath | None = Field(None, description="Label Studio's own virtual env. Default: .venv-labelstudio or $HARNESS_LS_VENV.")
    data_dir: Path | None = Field(None, description="Local server's data folder. Default: $HARNESS_HOME/labelstudio.")
    port: int | None = Field(None, ge=1024, le=65535, description="Local server port. Default: a free one.")
    project: str | None = Field(None, max_length=50, description="Label Studio project title (at most 50 characters). Default: '<run.id> review'.")
    prompts: InputPath | None = Field(None, description="Review prompts (JSONL with 'prompt'; optional id, category, reference, unsafe_markers).")
    heldout_fraction: float = Field(
        0.3, ge=0, lt=1, description="Share of the review prompts (per category, seeded) held out from training: only the "
                                     "final review judges them. Ignored when heldout_prompts is set.")
    heldout_prompts: InputPath | None = Field(
        None, description="Held-out prompts from their own file instead of a split (no prompt may also be in 'prompts').")
    on_policy: bool = Field(
        False, description="First review round: several sampled answers of the policy per training prompt, paired with "
                           "each other and with the incumbent's answer (feedback.onpolicy).")
    samples: int = Field(4, ge=2, le=16, description="on_policy: answers sampled per training prompt (K).")
    temperature: float = Field(0.8, gt=0, le=2, description="on_policy: sampling temperature.")
    budget: int | None = Field(
        None, gt=0, description="on_policy: most review pairs sent to reviewers (a seeded random choice). Default: all.")
    select: Literal["random", "uncertainty", "disagreement"] = Field(
        "random", description="on_policy with rounds > 1: how later rounds choose pairs (feedback.active): random, the "
                              "pairs a reward-model ensemble is least sure of, or those its members disagree on most.")
    rounds: int = Field(1, ge=1, le=20, description="on_policy: labeling rounds the budget is split into (the first is random).")
    ensemble: int = Field(5, ge=2, le=20, description="select: members of the reward-model ensemble (bootstrap samples).")
    encoder: ModelRef = Field("builtin:minilm-l6", description="select: sentence encoder the ensemble's reward models "
                                                               "read answers with (frozen; any encoder, local or hub).")
    prompt_set: Literal["training", "heldout", "all"] = Field(
        "training", description="Which prompts a review round uses: training (the first round; its labels train the "
                                "preference stages), heldout (the final review), or all.")
    candidate: ModelRef | None = Field(None, description="Model under review. Default: <run>/sft/adapter.")
    incumbent: ModelRef | None = Field(
        None, description="Model it is compared with. Default: the registry's champion, or model.base before the first promotion.")
    template: Literal["pairwise", "rating"] = Field(
        "pairwise", description="pairwise: compare two responses; rating: rate each response alone (preferences from mean ratings).")
    overlap: int = Field(2, ge=1, le=10, description="Reviewers per task.")
    max_new_tokens: int = Field(96, gt=0, description="Longest generated response.")
    batch_size: int = Field(32, gt=0, description="Prompts generated at once (on 2 CPU cores 48 at once is 2.2x faster than 8).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="What models generate in: auto is bfloat16 where the hardware computes it natively (a GPU, "
                            "or a CPU with AMX / AVX-512 BF16: about 2x faster there), else float32.")
    limit: int | None = Field(None, gt=0, description="Use only the first N review prompts.")
    reviewers: int = Field(2, ge=1, le=10, description="Scripted reviewers for 'harness feedback simulate'.")
    simulate_noise: list[float] = Field(default_factory=lambda: [0.05, 0.2],
                                        description="Per scripted reviewer: chance of a random judgement.")
    resolution: Literal["majority", "drop_ties", "drop_low_agreement"] = Field(
        "majority", description="How one label is chosen per task from several reviewers.")
    min_agreement: float = Field(0.5, ge=0, le=1, description="For drop_low_agreement: least share agreeing with the majority.")
    output_dir: Path | None = Field(None, description="Where tasks, responses and reviews go. Default: <run>/feedback.")
    simulate: bool = Field(
        False, description="harness cycle: scripted reviewers label the tasks (unattended demos; marked simulated).")
    wait_minutes: float = Field(
        0, ge=0, description="harness cycle: how long to wait for reviewers to finish before pausing (0: pause at once; "
                             "continue later with harness cycle --resume RUN_ID).")

    @model_validator(mode="after")
    def _on_policy_pairwise(self) -> FeedbackConfig:
        if self.on_policy and self.template != "pairwise":
            raise ValueError("on_policy pairs need template: pairwise (a rating task shows one answer)")
        if (self.rounds > 1 or self.select != "random") and not (self.on_policy and self.budget):
            raise ValueError("labeling rounds and feedback.select choose among on-policy pairs under a budget: "
                             "set feedback.on_policy: true and feedback.budget")
        if self.select != "random" and self.rounds < 2:
            raise ValueError(f"feedback.select: {self.select} ranks pairs after a first, random round: "
                             "set feedback.rounds to 2 or more")
        if self.budget is not None and self.budget < self.rounds:
            raise ValueError(f"feedback.budget ({self.budget}) is smaller than feedback.rounds ({self.rounds})")
        return self
