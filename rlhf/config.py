"""Config sections of the training stages: sft, merge, reward, dpo, online (registered through the
``harness.sections`` entry points, so the kernel's config schema carries them without importing rlhf)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from harness.sections import InputPath, ModelRef, Section

__all__ = ["METHODS", "LoraOptions", "PrefixOptions", "FreezeOptions", "ReftOptions", "SFTConfig", "MergeConfig", "PreferenceTraining",
           "RewardConfig", "DPOConfig", "RuleReward", "OnlineConfig"]

METHODS = ("full", "lora", "qlora", "dora", "prefix", "ia3", "freeze", "reft")


class LoraOptions(Section):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list of module names.",
    )


class PrefixOptions(Section):
    num_virtual_tokens: int = Field(16, gt=0, description="Prefix length for prefix tuning.")


class FreezeOptions(Section):
    trainable_blocks: int = Field(2, gt=0, description="Train only the last N transformer blocks (and the final norm).")


class ReftOptions(Section):
    """LoReFT (harness.reft): h + R^T(W h + b - R h) on the residual stream after chosen blocks."""

    rank: int = Field(4, gt=0, description="Rank of the edited subspace (rows of R).")
    layers: Literal["all"] | list[int] = Field(
        "all", description="Blocks whose output is edited: 'all' or a list of block indices (0 = first block).")
    positions: str = Field(
        "all", pattern=r"^(all|first:[1-9][0-9]*)$",
        description="Tokens edited: 'all', or 'first:N' (the first N tokens of each sequence, i.e. of the prompt).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the edit while training.")

    @model_validator(mode="after")
    def _check_layers(self) -> ReftOptions:
        if isinstance(self.layers, list) and (not self.layers or min(self.layers) < 0 or len(set(self.layers)) != len(self.layers)):
            raise ValueError(f"layers must be 'all' or distinct block indices >= 0, got {self.layers}")
        return self


class SFTConfig(Section):
    method: Literal["full", "lora", "qlora", "dora", "prefix", "ia3", "freeze", "reft"] = Field(
        "lora", description="Tuning method: " + ", ".join(METHODS) + ".",
    )
    lora: LoraOptions = Field(default_factory=LoraOptions, description="Used by lora, qlora and dora.")
    prefix: PrefixOptions = Field(default_factory=PrefixOptions)
    freeze: FreezeOptions = Field(default_factory=FreezeOptions)
    reft: ReftOptions = Field(default_factory=ReftOptions, description="Used by reft.")
    data_dir: InputPath | None = Field(None, description="Prepared data folder. Default: <run>/data.")
    epochs: float = Field(3.0, gt=0)
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    learning_rate: float | None = Field(
        None, gt=0, description="Default: 2e-4 for adapters, 2e-5 for full/freeze, 1e-2 for prefix/ia3, 2e-3 for reft.",
    )
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(8, gt=0, description="Per-device batch size.")
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_length: int = Field(1024, gt=8, description="Truncate training sequences to this many tokens.")
    packing: Literal["padding_free", "bfd", "none"] = Field(
        "padding_free",
        description="padding_free: concatenate each batch without pad tokens; bfd: pack into max_length bins; none: pad.",
    )
    assistant_only_loss: bool = Field(True, description="Train only on assistant turns of chat data.")
    eval_every: Literal["epoch"] | int = Field("epoch", description="Validate each epoch, or every N steps.")
    early_stopping_patience: int | None = Field(
        2, ge=1, description="Stop after this many validations without improvement (null: never).",
    )
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept for --resume.")
    logging_steps: int = Field(5, gt=0)
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 where the hardware does it natively, else fp32.",
    )
    per_domain: bool = Field(
        False, description="Train one adapter per data domain (data.sources[].domain) on a shared base, each scored on "
                           "its eval.domain_suites; the result is a multi-adapter model (rlhf.per_domain).")

    @model_validator(mode="after")
    def _check(self) -> SFTConfig:
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (all epochs) or > 0, got {self.max_steps}")
        if isinstance(self.eval_every, int) and self.eval_every <= 0:
            raise ValueError(f"eval_every must be 'epoch' or a positive step count, got {self.eval_every}")
        if self.method == "reft" and self.weight_decay > 0:  # it would erase the signs torch keeps in R's parameter
            raise ValueError(f"weight_decay must be 0 for method reft (it breaks the orthonormal R), got {self.weight_decay}")
        return self


class MergeConfig(Section):
    adapter: InputPath | None = Field(None, description="Adapter folder. Default: <run>/sft/adapter.")
    output: Path | None = Field(None, description="Merged model folder. Default: <run>/merged.")
    atol: float = Field(1e-4, gt=0, description="Largest allowed logit difference between merged and base+adapter.")


class PreferenceTraining(Section):
    """Options shared by the preference stages (reward, dpo, online): all LoRA-efficient."""

    method: Literal["lora", "dora", "qlora"] = Field("lora", description="Adapter method (see sft.method).")
    lora: LoraOptions = Field(default_factory=LoraOptions)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    learning_rate: float | None = Field(None, gt=0, description="Default: a per-stage value suited to LoRA.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    batch_size: int = Field(8, gt=0, description="Per-device batch size.")
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_length: int = Field(512, gt=8, description="Longest prompt + response, in tokens; longer pairs are left out (and counted).")
    logging_steps: int = Field(5, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 where the hardware does it natively, else fp32.")
    merge: bool = Field(False, description="Also write a merged model (adapter folded into the base) beside the adapter.")
    seed: int | None = Field(
        None, ge=0, description="Seed of this stage's training and its held-out pair split. Default: run.seed. "
                                "Varying it alone re-runs only the preference stages (bench/alignment_effect.py).")

    @model_validator(mode="after")
    def _check_steps(self):
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (all epochs) or > 0, got {self.max_steps}")
        return self


class RewardConfig(PreferenceTraining):
    backbone: ModelRef | None = Field(
        None, description="Model under the reward head: a causal LM or an encoder (builtin:minilm-l6). Default: model.base.")
    preferences: InputPath | None = Field(None, description="Preference pairs (JSONL). Default: <run>/feedback/preferences.jsonl.")
    validation_fraction: float = Field(0.2, ge=0, lt=1, description="Share of prompts held out to measure pairwise accuracy.")
    cross_fit_folds: int = Field(
        0, ge=0, description="0: measure the reward model on one held-out share of the prompts (validation_fraction). "
                             "K >= 2: cross-fitting: the pairs are split by prompt into K folds, each fold is scored by a model "
                             "trained on the other K-1 (K extra trainings), so every pair counts in the trust report; the "
                             "saved model trains on all pairs and validation_fraction is not used.")
    center_rewards: float | None = Field(
        0.01, ge=0, description="Weight of TRL's reward-centering term (keeps scores near 0); null turns it off.")
    pad_token: str | None = Field(None, description="Padding token for a backbone whose tokenizer has none. Default: its eos token.")

    @model_validator(mode="after")
    def _check_folds(self) -> RewardConfig:
        if self.cross_fit_folds == 1:
            raise ValueError("cross_fit_folds must be 0 (one held-out split) or at least 2 folds, got 1")
        if self.cross_fit_folds >= 2 and "validation_fraction" in self.model_fields_set and self.validation_fraction > 0:
            raise ValueError(f"cross_fit_folds={self.cross_fit_folds} measures the reward model on every pair, so "
                             f"validation_fraction={self.validation_fraction} would go unused: set one of them only")
        return self


class DPOConfig(PreferenceTraining):
    objective: Literal["dpo", "kto"] = Field(
        "dpo", description="dpo: paired preferences; kto: unpaired thumbs-up/down (from ratings, or pairs split apart).")
    policy: ModelRef | None = Field(None, description="Adapter (or model) to start from. Default: <run>/sft/adapter.")
    preferences: InputPath | None = Field(None, description="Preference pairs (JSONL). Default: <run>/feedback/preferences.jsonl.")
    unpaired: InputPath | None = Field(
        None, description="For kto: rows with prompt, completion, label. Default: <run>/feedback/unpaired.jsonl when present.")
    validation_fraction: float = Field(0.2, ge=0, lt=1, description="Share of prompts held out to measure preference accuracy.")
    beta: float = Field(0.1, gt=0, description="Strength of the leash to the reference model (higher: stay closer).")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down"] = Field(
        "sigmoid", description="DPO loss (sigmoid is the original DPO).")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="Conservative DPO: assumed share of flipped labels.")
    desirable_weight: float = Field(1.0, gt=0, description="kto: weight of thumbs-up examples.")
    undesirable_weight: float = Field(1.0, gt=0, description="kto: weight of thumbs-down examples.")
    score_train_pairs: int | None = Field(
        64, ge=1, description="After training, how many training pairs (a seeded sample) are scored under the policy and "
                              "the reference for the training-margin figure; every held-out pair is always scored. "
                              "null scores them all (slower: two forward passes per pair and model).")


class RuleReward(Section):
    name: str = Field(..., min_length=1, description="Shown in logs.")
    pattern: str = Field(..., min_length=1, description="Python regular expression searched in the response.")
    kind: Literal["match", "fraction"] = Field(
        "match", description="match: 1 when the pattern occurs; fraction: share of response characters it matches.")
    weight: float = Field(1.0, description="Multiplier (negative to penalize).")

    @model_validator(mode="after")
    def _check_pattern(self):
        import re

        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern {self.pattern!r} is not a valid regular expression: {exc}") from None
        return self


class OnlineConfig(PreferenceTraining):
    algorithm: Literal["grpo", "rloo"] = Field(
        "grpo", description="grpo: clipped-ratio objective with a group baseline; rloo: leave-one-out baseline.")
    policy: ModelRef | None = Field(None, description="Adapter (or model) to start from. Default: <run>/sft/adapter.")
    reward_model: ModelRef | None = Field(
        None, description="Trained reward model adapter. Default: <run>/reward/adapter; 'none' to use only rule rewards.")
    reward_model_weight: float = Field(1.0, description="Multiplier of the reward model's score.")
    allow_weak_reward_model: bool = Field(
        False, description="Train against a reward model that does not beat the length-only and lexical baselines on its "
                           "held-out pairs (paired difference, CI above 0; refused otherwise); the override is recorded "
                           "in the result and report.")
    rules: list[RuleReward] = Field(default_factory=list, description="Extra rule-based rewards.")
    prompts: InputPath | None = Field(
        None, description="Prompts (JSONL with 'prompt': text or chat messages). Default: the prompts of the preference pairs.")
    preferences: InputPath | None = Field(None, description="Where default prompts come from. Default: <run>/feedback/preferences.jsonl.")
    kl_coef: float = Field(0.04, description="KL penalty to the starting policy (TRL beta); 0 turns it off.")
    kl_ceiling: float | None = Field(
        0.5, gt=0, description="Stop training when the measured KL to the starting policy exceeds this (reward-hacking guard).")
    num_generations: int = Field(4, ge=2, description="Responses sampled per prompt (the group).")
    max_completion_length: int = Field(48, gt=0, description="Longest sampled response, in tokens.")
    temperature: float = Field(1.0, gt=0)
    length_penalty: float = Field(0.0, ge=0, description="Reward subtracted per response token beyond length_target.")
    length_target: int = Field(32, ge=0, description="Responses up to this many tokens are not penalized.")
    max_steps: int = Field(20, description="Optimizer steps (-1: run all epochs over the prompts).")

    @model_validator(mode="after")
    def _check_online(self):
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0 (it is a penalty), got {self.kl_coef}")
        if self.kl_ceiling is not None and self.kl_coef == 0:
            raise ValueError("kl_ceiling needs kl_coef > 0: with kl_coef 0 the trainer does not measure KL. "
                             "Set kl_coef (e.g. 0.04) or kl_ceiling: null")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique (they name the logged rewards), got {names}")
        generation_batch = self.batch_size * self.gradient_accumulation_steps
        if generation_batch % self.num_generations:
            raise ValueError(f"num_generations ({self.num_generations}) must divide batch_size x gradient_accumulation_steps "
                             f"({generation_batch}): each batch holds whole groups of responses to one prompt")
        return self
