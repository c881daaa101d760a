"""Cycle configuration: one YAML file, one section per stage, validated all at once.

``load_config`` reads YAML strictly (duplicate keys are an error), applies dotted ``key=value``
overrides, and validates with pydantic models that refuse unknown keys. Every problem is reported in
one :class:`~harness.errors.HarnessError`, each with its YAML path and, where known, its line.

Relative input paths (data sources, local models) are resolved against the config file's folder, so
a config works from any working directory. ``run.root`` (where runs are written) is relative to the
working directory.
"""

from __future__ import annotations

import functools
import os
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, create_model, model_validator,
)

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.layout import RunLayout

__all__ = [
    "CycleConfig", "RunConfig", "ModelConfig", "DataConfig", "DataSource", "ReplayConfig",
    "DedupeConfig", "SFTConfig", "VLLMOptions", "LoraOptions", "PrefixOptions", "FreezeOptions", "MergeConfig", "EvalConfig", "FeedbackConfig",
    "RewardConfig", "DPOConfig", "OnlineConfig", "RuleReward", "GateConfig", "RegistryConfig", "CycleOptions",
    "load_config", "parse_overrides", "config_from_dict", "config_model", "METHODS",
]

METHODS = ("full", "lora", "qlora", "dora", "prefix", "ia3", "freeze")


def _resolve_input_path(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    value = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


InputPath = Annotated[Path, AfterValidator(_resolve_input_path)]


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or os.sep in ref and Path(ref).exists()


def _resolve_model_ref(value: str, info: ValidationInfo) -> str:
    if value.startswith("builtin:") or not value.startswith((".", "~")):
        return value
    base = (info.context or {}).get("base_dir")
    p = Path(os.path.expanduser(value))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return str(p)


ModelRef = Annotated[str, AfterValidator(_resolve_model_ref)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunConfig(_Section):
    id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Run name; its artifacts go to <root>/<id>/. Default: a new timestamped id.",
    )
    root: Path = Field(Path("runs"), description="Folder holding all runs (relative to the working directory).")
    seed: int = Field(42, ge=0, description="Seed for data splits, sampling and training.")


class ModelConfig(_Section):
    base: ModelRef = Field(
        "builtin:smollm2-135m-instruct",
        description="Hub id, local folder, adapter folder, or builtin:smollm2-135m-instruct / builtin:tiny-random.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for hub ids.")
    trust_remote_code: bool = Field(
        False, description="Allow model repositories that ship their own Python code. Off: such models are refused.",
    )


class DataSource(_Section):
    path: InputPath | None = Field(None, description="A .jsonl, .json, .csv or .parquet file.")
    hub: str | None = Field(None, description="A hub dataset id (used instead of path).")
    subset: str | None = Field(None, description="Hub dataset configuration name.")
    split: str = Field("train", description="Hub dataset split.")
    format: Literal["auto", "messages", "prompt_completion", "alpaca", "text"] = Field(
        "auto", description="Record shape; auto detects it per record.",
    )
    domain: str = Field("default", min_length=1, description="Domain label, used for per-domain splits.")
    limit: int | None = Field(None, gt=0, description="Read at most this many records.")

    @model_validator(mode="after")
    def _one_location(self) -> DataSource:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of 'path' (a local file) or 'hub' (a hub dataset id)")
        return self


class ReplayConfig(DataSource):
    domain: str = Field("replay", min_length=1, description="Domain label given to replay records.")
    ratio: float = Field(
        0.1, gt=0, lt=1,
        description="Fraction of the final training set drawn from this general-purpose set (guards against forgetting).",
    )


class DedupeConfig(_Section):
    exact: bool = Field(True, description="Drop exact duplicates (after normalizing case and whitespace).")
    near: bool = Field(True, description="Drop near-duplicates found with MinHash LSH.")
    threshold: float = Field(0.9, gt=0, le=1, description="Jaccard similarity above which two records are near-duplicates.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
    shingle_words: int = Field(3, ge=1, le=10, description="Word n-gram size for MinHash shingles.")


class DataConfig(_Section):
    sources: list[DataSource] = Field(default_factory=list, description="Input datasets.")
    replay: ReplayConfig | None = Field(None, description="Optional general-purpose replay set mixed into training.")
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="Share of each domain held out for validation.")
    min_validation: int = Field(1, ge=1, description="At least this many validation records per domain.")
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    max_chars: int | None = Field(None, gt=0, description="Drop records whose text is longer than this.")
    output_dir: Path | None = Field(None, description="Where prepared data goes. Default: <run>/data.")


class LoraOptions(_Section):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear", description="Modules to adapt: 'all-linear' or a list of module names.",
    )


class PrefixOptions(_Section):
    num_virtual_tokens: int = Field(16, gt=0, description="Prefix length for prefix tuning.")


class FreezeOptions(_Section):
    trainable_blocks: int = Field(2, gt=0, description="Train only the last N transformer blocks (and the final norm).")


class SFTConfig(_Section):
    method: Literal["full", "lora", "qlora", "dora", "prefix", "ia3", "freeze"] = Field(
        "lora", description="Tuning method: " + ", ".join(METHODS) + ".",
    )
    lora: LoraOptions = Field(default_factory=LoraOptions, description="Used by lora, qlora and dora.")
    prefix: PrefixOptions = Field(default_factory=PrefixOptions)
    freeze: FreezeOptions = Field(default_factory=FreezeOptions)
    data_dir: InputPath | None = Field(None, description="Prepared data folder. Default: <run>/data.")
    epochs: float = Field(3.0, gt=0)
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    learning_rate: float | None = Field(
        None, gt=0, description="Default: 2e-4 for adapters, 2e-5 for full/freeze, 1e-2 for prefix/ia3.",
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

    @model_validator(mode="after")
    def _check(self) -> SFTConfig:
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (all epochs) or > 0, got {self.max_steps}")
        if isinstance(self.eval_every, int) and self.eval_every <= 0:
            raise ValueError(f"eval_every must be 'epoch' or a positive step count, got {self.eval_every}")
        return self


class MergeConfig(_Section):
    adapter: InputPath | None = Field(None, description="Adapter folder. Default: <run>/sft/adapter.")
    output: Path | None = Field(None, description="Merged model folder. Default: <run>/merged.")
    atol: float = Field(1e-4, gt=0, description="Largest allowed logit difference between merged and base+adapter.")


class VLLMOptions(_Section):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_lora_rank: int | None = Field(None, gt=0, description="Largest LoRA rank to serve. Default: the adapter's own rank.")


class EvalConfig(_Section):
    models: list[ModelRef] = Field(default_factory=list, description="Models to score. Default: model.base.")
    suites: list[str] = Field(
        default_factory=lambda: ["domain", "retention", "bias"],
        description="Suites by name (group/name or name) or whole groups (domain, retention, bias).",
    )
    limit: int | None = Field(None, gt=0, description="Score only the first N documents of each suite (quick runs).")
    suite_limits: dict[str, Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Per suite (group/name or name) or group: score only its first N documents; overrides 'limit'.")
    seed: int | None = Field(None, ge=0, description="Seed for sampling and bootstrap. Default: run.seed.")
    batch_size: int = Field(16, gt=0)
    max_length: int = Field(
        1024, gt=16, description="Longest context scored at once; long documents are scored in rolling windows.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    backend: Literal["hf", "vllm"] = Field(
        "hf", description="hf: transformers in this process; vllm: lm-eval's vLLM model (GPU; adapters served as LoRA).")
    vllm: VLLMOptions = Field(default_factory=VLLMOptions, description="Used with backend: vllm.")
    reference_model: ModelRef | None = Field(None, description="Base model for the KL-drift suite. Default: model.base.")
    retention_data_dir: InputPath | None = Field(
        None, description="Local copies of standard benchmarks (arc/, mmlu/, wikitext-2-raw/) for offline runs.")
    suite_dirs: list[InputPath] = Field(default_factory=list, description="Extra folders with your own suites.")
    output_dir: Path | None = Field(None, description="Where results go. Default: <run>/eval.")
    bootstrap_resamples: int = Field(2000, ge=100, description="Bootstrap resamples for confidence intervals.")
    use_cache: bool = Field(True, description="Reuse results of an unchanged model, suite, data and settings.")


class FeedbackConfig(_Section):
    url: str | None = Field(None, description="An existing Label Studio server. Default: the local one ('harness feedback serve').")
    token_env: str = Field("LABEL_STUDIO_API_KEY", description="Environment variable holding the token for feedback.url.")
    venv: InputPath | None = Field(None, description="Label Studio's own virtual env. Default: .venv-labelstudio or $HARNESS_LS_VENV.")
    data_dir: Path | None = Field(None, description="Local server's data folder. Default: $HARNESS_HOME/labelstudio.")
    port: int | None = Field(None, ge=1024, le=65535, description="Local server port. Default: a free one.")
    project: str | None = Field(None, max_length=50, description="Label Studio project title (at most 50 characters). Default: '<run.id> review'.")
    prompts: InputPath | None = Field(None, description="Review prompts (JSONL with 'prompt'; optional id, category, reference, unsafe_markers).")
    candidate: ModelRef | None = Field(None, description="Model under review. Default: <run>/sft/adapter.")
    incumbent: ModelRef | None = Field(
        None, description="Model it is compared with. Default: the registry's champion, or model.base before the first promotion.")
    template: Literal["pairwise", "rating"] = Field(
        "pairwise", description="pairwise: compare two responses; rating: rate each response alone (preferences from mean ratings).")
    overlap: int = Field(2, ge=1, le=10, description="Reviewers per task.")
    max_new_tokens: int = Field(96, gt=0, description="Longest generated response.")
    batch_size: int = Field(8, gt=0, description="Prompts generated at once.")
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


class _PreferenceTraining(_Section):
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

    @model_validator(mode="after")
    def _check_steps(self):
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be -1 (all epochs) or > 0, got {self.max_steps}")
        return self


class RewardConfig(_PreferenceTraining):
    backbone: ModelRef | None = Field(
        None, description="Model under the reward head: a causal LM or an encoder (builtin:minilm-l6). Default: model.base.")
    preferences: InputPath | None = Field(None, description="Preference pairs (JSONL). Default: <run>/feedback/preferences.jsonl.")
    validation_fraction: float = Field(0.2, ge=0, lt=1, description="Share of prompts held out to measure pairwise accuracy.")
    center_rewards: float | None = Field(
        0.01, ge=0, description="Weight of TRL's reward-centering term (keeps scores near 0); null turns it off.")
    pad_token: str | None = Field(None, description="Padding token for a backbone whose tokenizer has none. Default: its eos token.")


class DPOConfig(_PreferenceTraining):
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


class RuleReward(_Section):
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


class OnlineConfig(_PreferenceTraining):
    algorithm: Literal["grpo", "rloo"] = Field(
        "grpo", description="grpo: clipped-ratio objective with a group baseline; rloo: leave-one-out baseline.")
    policy: ModelRef | None = Field(None, description="Adapter (or model) to start from. Default: <run>/sft/adapter.")
    reward_model: ModelRef | None = Field(
        None, description="Trained reward model adapter. Default: <run>/reward/adapter; 'none' to use only rule rewards.")
    reward_model_weight: float = Field(1.0, description="Multiplier of the reward model's score.")
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


class GateConfig(_Section):
    policy: InputPath | None = Field(None, description="Gate policy YAML. Default: the shipped harness/policies/default.yaml.")
    candidate: ModelRef | None = Field(None, description="Model to promote. Default: <run>/sft/adapter.")
    incumbent: ModelRef | None = Field(
        None, description="Current champion it must beat. Default: the registry's champion, or model.base before the first promotion.")
    eval_dir: InputPath | None = Field(None, description="Evaluation results (<fingerprint>/<group>/<suite>). Default: eval.output_dir or <run>/eval.")
    feedback_dir: InputPath | None = Field(None, description="Review results (summary.json, tasks.jsonl). Default: <run>/feedback.")


class RegistryConfig(_Section):
    model_name: str = Field("harness-model", min_length=1, description="Registered model name in MLflow.")
    experiment: str = Field("harness", min_length=1, description="MLflow experiment holding promotion runs.")


class CycleOptions(_Section):
    """What ``harness cycle`` runs beyond the stages' own sections."""

    align: list[Literal["dpo", "online"]] = Field(
        default_factory=lambda: ["dpo", "online"],
        description="Preference stages that run (DPO always before online RL, which then continues DPO's adapter). "
                    "Empty: the SFT adapter is the candidate. online needs the reward model, which the cycle trains first.")
    review_final: bool = Field(
        True, description="Reviewers also compare the final candidate with the incumbent (the gate's review evidence).")
    approver: str | None = Field(
        None, description="Who signs off a passing decision. Without one (and a policy that needs a sign-off) the cycle "
                          "stops before promotion: run harness promote DECISION --approver NAME.")
    promote: bool = Field(True, description="Promote a passing candidate (false: stop after the gate).")
    pdf: bool = Field(True, description="Also print the audit report as PDF. Where no renderer can print, the report "
                                        "is HTML and JSON only and the cycle's summary warns (it does not fail).")
    pdf_renderer: Literal["weasyprint", "chromium"] = Field(
        "weasyprint", description="What prints the PDF: weasyprint (installed with the harness; needs the system's "
                                  "Pango) or chromium (headless, where installed). The other one is tried when the "
                                  "chosen one is unavailable.")

    @model_validator(mode="after")
    def _check_align(self):
        if len(set(self.align)) != len(self.align):
            raise ValueError(f"each preference stage may appear once in align, got {self.align}")
        return self


class CycleConfig(_Section):
    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    merge: MergeConfig = Field(default_factory=MergeConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    dpo: DPOConfig = Field(default_factory=DPOConfig)
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    cycle: CycleOptions = Field(default_factory=CycleOptions)

    def run_dir(self) -> Path:
        if self.run.id is None:
            raise HarnessError("run.id is not set", hint="set run.id in the config or pass run.id=NAME")
        return self.run.root / self.run.id

    def layout(self) -> "RunLayout":
        """Where this run's artifacts live (the only code that knows the folders)."""
        from harness.layout import RunLayout

        return RunLayout(self.run_dir())


# ---------------------------------------------------------------- YAML loading with line numbers


class _StrictLoader(yaml.SafeLoader):
    pass


def _compose_checked(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, refuse duplicate keys, and map each key path to its line number."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        lines: dict[tuple, int] = {}
        dupes: list[str] = []

        def walk(n: yaml.Node, path: tuple) -> None:
            if isinstance(n, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for k, v in n.value:
                    key = loader.construct_object(k, deep=True)
                    line = k.start_mark.line + 1
                    if key in seen:
                        dotted = ".".join(str(p) for p in (*path, key))
                        dupes.append(f"{source}:{line}: duplicate key '{dotted}' (first at line {seen[key]})")
                    seen[key] = line
                    lines[(*path, key)] = line
                    walk(v, (*path, key))
            elif isinstance(n, yaml.SequenceNode):
                for i, item in enumerate(n.value):
                    lines[(*path, i)] = item.start_mark.line + 1
                    walk(item, (*path, i))

        walk(node, ())
        if dupes:
            raise HarnessError("\n".join(dupes), hint="each key may appear once per section")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise HarnessError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where,
                           hint="check indentation and quoting near that line") from None
    finally:
        loader.dispose()
    return data, lines


def _target(parts: list[str]) -> Any:
    """The annotation of the config field at ``parts`` (None where no field is there)."""
    model: Any = config_model()
    annotation = None
    for part in parts:
        if model is None or part not in getattr(model, "model_fields", {}):
            return None
        annotation = model.model_fields[part].annotation
        model = next((a for a in (annotation, *typing.get_args(annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return annotation


def _is_text(annotation: Any) -> tuple[bool, bool]:
    """(the field holds text: a string, path or choice of strings; it may be null)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else [annotation]
    optional = len(args) < len(typing.get_args(annotation) or [annotation])

    def text(a: Any) -> bool:
        if typing.get_origin(a) is Annotated:
            return text(typing.get_args(a)[0])
        if typing.get_origin(a) is Literal:
            return all(isinstance(v, str) for v in typing.get_args(a))
        return a in (str, Path)

    return bool(args) and all(text(a) for a in args), optional


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["sft.max_steps=2", "model.base=builtin:tiny-random"]`` -> nested dict.

    Values are typed by the field they set: a text field (a string, a path, a choice of words) keeps
    the value as written (``model.base=null`` is a model named "null"; ``null`` only unsets a field
    that may be empty); other fields read it as YAML (``eval.suites=[domain, bias]``, ``sft.learning_rate=1e-3``),
    and pydantic checks the result.
    """
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise HarnessError(f"override '{item}' is not of the form key.path=value",
                               hint="for example: sft.max_steps=2")
        text, optional = _is_text(_target(key.split(".")))
        if text and not (optional and raw.strip() in ("null", "~")):
            value: Any = raw
        else:
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise HarnessError(f"override '{item}' sets a key below a value", hint="check the key path")
        node[parts[-1]] = value
    return out


def _deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _format_errors(exc: ValidationError, source: str, lines: dict[tuple, int]) -> str:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = None
        for cut in range(len(loc), 0, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        where = f"{source}:{line}" if line else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] not in ("missing",) and "input" in err and not isinstance(err["input"], dict):
            msg += f", got {err['input']!r}"
        out.append(f"{where}: {dotted}: {msg}")
    return "\n".join(dict.fromkeys(out))


@functools.lru_cache(maxsize=None)
def config_model() -> type[CycleConfig]:
    """The config schema: the kernel's sections plus those that plugin stages bring (entry points)."""
    from harness.plugins import plugin_sections

    extra = plugin_sections(set(CycleConfig.model_fields))
    if not extra:
        return CycleConfig
    return create_model("CycleConfig", __base__=CycleConfig,
                        **{name: (model, Field(default_factory=model)) for name, model in extra.items()})


def config_from_dict(data: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None,
                     lines: dict[tuple, int] | None = None) -> CycleConfig:
    if not isinstance(data, dict):
        raise HarnessError("the config must be a mapping of sections (run, model, data, sft, ...)", where=source)
    try:
        return config_model().model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise HarnessError(
            "invalid configuration:\n" + _format_errors(exc, source, lines or {}),
            hint="see the field descriptions with 'harness config schema', or examples/demo/cycle.yaml",
        ) from None


def load_config(path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = (),
                defaults: dict[str, Any] | None = None) -> CycleConfig:
    """Read ``path`` (may be None for defaults only), apply ``defaults`` then ``overrides``, validate."""
    data: dict[str, Any] = {}
    lines: dict[tuple, int] = {}
    source = "<command line>"
    base_dir = Path.cwd()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise HarnessError(f"config file {path} does not exist", hint="pass --config with an existing YAML file")
        source = str(path)
        base_dir = path.resolve().parent
        data, lines = _compose_checked(path.read_text(encoding="utf-8"), source)
        if data is None:
            data = {}
    if defaults:
        data = _deep_merge(defaults, data) if isinstance(data, dict) else data
    if overrides:
        if not isinstance(data, dict):
            data = {}
        data = _deep_merge(data, parse_overrides(overrides))
    return config_from_dict(data, source=source, base_dir=base_dir, lines=lines)
