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

from harness.config_sections import (  # re-exported: these sections lived here
    DataConfig, DataSource, DedupeConfig, EvalConfig, RagChunkConfig, RagConfig, ReplayConfig, VLLMOptions,
)
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
