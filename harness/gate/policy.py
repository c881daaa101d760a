"""Gate policies: the written rules a candidate must pass (YAML, validated, suites and metrics checked)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import HarnessError

__all__ = ["CompareRule", "FeedbackRule", "Rule", "GatePolicy", "load_policy", "DEFAULT_POLICY"]

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompareRule(_Strict):
    id: str = Field(min_length=1, description="Short name shown in the decision and the report.")
    kind: Literal["compare"]
    suites: list[str] = Field(min_length=1, description="Suites (group/name) or patterns such as domain/*.")
    metric: str = Field(min_length=1)
    require: Literal["improve", "no_regress", "within"]
    by: float = Field(ge=0, description="improve: least gain; no_regress: largest allowed loss; within: tolerance.")
    min_effect: float | None = Field(
        None, gt=0, description="improve: the smallest true gain this rule is meant to detect; "
                                "bench/gate_power.py measures the rule's power there (goal >= 90 %).")
    min_n: int = Field(30, ge=2, description="Fewest paired samples per suite the rule decides on; fewer, or "
                                             "differences that are all the same (a CI of no width), fail it.")
    description: str = ""


class FeedbackRule(_Strict):
    id: str = Field(min_length=1)
    kind: Literal["feedback"]
    metric: Literal["win_rate", "unsafe_rate"]
    against: Literal["incumbent", "sft"] = Field(
        "incumbent", description="incumbent: the final review against the incumbent; sft: against the SFT-only "
                                 "candidate on held-out prompts (did the preference stages help).")
    at_least: float | None = Field(None, ge=0, le=1)
    at_most: float | None = Field(None, ge=0, le=1)
    min_n: int = Field(20, ge=2, description="Fewest reviewed prompts the rule decides on; fewer, or outcomes that "
                                             "are all the same (a CI of no width), fail it.")
    description: str = ""

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of at_least or at_most")
        return self


Rule = Annotated[Union[CompareRule, FeedbackRule], Field(discriminator="kind")]


class GatePolicy(_Strict):
    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    description: str = ""
    signoff_required: bool = Field(False, description="A passing decision is promoted only with a named approver.")
    allow_simulated: bool = Field(
        False, description="Scripted (simulated) reviews may satisfy feedback rules. Off by default: only people's "
                           "labels count; a demo or a dry run opts in, and the decision and report say so.")
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self):
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rule ids must be unique, got {ids}")
        return self


def load_policy(path: Path, suite_dirs: tuple[Path, ...] = ()) -> GatePolicy:
    """Read and validate a policy, including that its suites and metrics exist."""
    from harness.yamlcheck import compose_checked, format_errors
    from harness.suites import available_suites

    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"gate policy {path} does not exist", hint=f"see {DEFAULT_POLICY} for the shipped policy")
    data, lines = compose_checked(path.read_text(encoding="utf-8"), str(path))
    try:
        policy = GatePolicy.model_validate(data or {})
    except ValidationError as exc:
        raise HarnessError(f"invalid gate policy:\n{format_errors(exc, str(path), lines)}",
                           hint=f"compare with {DEFAULT_POLICY}") from None
    known = available_suites(suite_dirs)
    for i, rule in enumerate(policy.rules):
        if not isinstance(rule, CompareRule):
            continue
        where = f"{path}:{lines.get(('rules', i), '?')}: rule '{rule.id}'"
        for pattern in rule.suites:
            # a suite's retrieval-augmented variant (harness.rag) is named <group>/<name>+rag
            matched = [s for sid, s in known.items() if fnmatch.fnmatch(sid, pattern) or fnmatch.fnmatch(sid + "+rag", pattern)]
            if not matched:
                raise HarnessError(f"{where}: no suite matches '{pattern}'",
                                   hint="known suites: " + ", ".join(sorted(known)))
            for suite in matched:
                spec = next((m for m in suite.spec.metrics if m.name == rule.metric), None)
                if spec is not None and spec.ideal is not None and rule.require != "within" \
                        and not rule.metric.startswith("distance"):
                    raise HarnessError(
                        f"{where}: {suite.id} {rule.metric} is best at {spec.ideal}, not at an extreme, so "
                        f"'{rule.require}' has no direction",
                        hint="use require: within, or the suite's distance metric (e.g. distance_from_50)")
            # A pattern covers the matched suites that have the metric; a plain name must have it.
            if not any(rule.metric in [m.name for m in suite.spec.metrics] for suite in matched):
                metrics = sorted({m.name for suite in matched for m in suite.spec.metrics})
                raise HarnessError(f"{where}: no suite matching '{pattern}' has a metric '{rule.metric}'",
                                   hint=f"their metrics: {', '.join(metrics)}")
    return policy
