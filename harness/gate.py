"""The promotion gate: a written policy decides, from paired evidence, whether a candidate may replace
the incumbent.

A policy (YAML, validated; ``harness/policies/default.yaml`` ships with the project) holds rules:

* ``kind: compare`` — over evaluation suites (``domain/*`` matches every domain suite evaluated for
  the candidate; a plain name must be present) and one metric. ``require: improve`` (by at least
  ``by``), ``no_regress`` (by no more than ``by``) or ``within`` (``±by`` of the incumbent). Each is a
  one-sided decision on the 95 % CI of the paired difference from ``harness.compare`` (oriented so
  that positive is better), never on the point estimate: improve passes when the CI's lower bound
  is at least ``by``; no_regress when it is above ``-by``; within when the whole CI lies in ``±by``.
* ``kind: feedback`` — on the review summary (``win_rate`` or ``unsafe_rate``): ``at_least`` passes
  when the CI's lower bound reaches it, ``at_most`` when the CI's upper bound stays under it.

Missing evidence fails its rule, and so does evidence about another model (fingerprint) or from
another suite version than the current one. ``run(config) -> GateResult`` writes
``<run>/gate/decision.json`` (decision id, every rule with n, test, estimate, CI, threshold, pass/fail,
reason and evidence files, and the SHA-256 of every input) and appends the decision to the ledger.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness import log as _log
from harness.artifacts import read_jsonl, sha256_file, stable_hash, utc_now
from harness.config import CycleConfig
from harness.schemas import EvalSummary, FeedbackSummary, GateDecision, artifact_dict, write_artifact
from harness.errors import HarnessError

__all__ = ["GatePolicy", "GateResult", "load_policy", "run", "DEFAULT_POLICY", "decide_compare", "decide_feedback", "default_incumbent"]

DEFAULT_POLICY = Path(__file__).resolve().parent / "policies" / "default.yaml"


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
    description: str = ""


class FeedbackRule(_Strict):
    id: str = Field(min_length=1)
    kind: Literal["feedback"]
    metric: Literal["win_rate", "unsafe_rate"]
    at_least: float | None = Field(None, ge=0, le=1)
    at_most: float | None = Field(None, ge=0, le=1)
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
            matched = [s for sid, s in known.items() if fnmatch.fnmatch(sid, pattern)]
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


@dataclass(frozen=True)
class GateResult:
    decision_path: Path
    decision: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.decision["passed"]


def decide_compare(row: dict[str, Any], require: str, by: float) -> tuple[bool, str, dict[str, Any]]:
    """One comparison row against one requirement; positive oriented difference = better."""
    import math

    diff, lo, hi = row["difference"], row["ci_low"], row["ci_high"]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (diff, lo, hi)):
        return False, "no confidence interval could be computed for this difference", {}
    sign = 1.0 if row.get("higher_is_better", True) else -1.0
    est, o_lo, o_hi = sign * diff, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
    oriented = {"oriented_estimate": est, "oriented_ci": [o_lo, o_hi]}
    if require == "improve":  # strict: a zero-width CI at 0 (nothing changed) is no improvement
        ok = o_lo > by
        why = (f"the CI's lower bound of the gain, {o_lo:+.4f}, {'exceeds' if ok else 'does not exceed'} the required {by:+.4f}")
    elif require == "no_regress":
        ok = o_lo > -by
        why = (f"the CI's worst case, {o_lo:+.4f}, {'stays above' if ok else 'falls below'} the allowed loss {-by:+.4f}")
    else:
        ok = -by <= lo and hi <= by
        why = f"the CI [{lo:+.4f}, {hi:+.4f}] {'lies within' if ok else 'leaves'} ±{by:.4f}"
    return ok, why, oriented


def decide_feedback(stat: dict[str, Any], at_least: float | None, at_most: float | None) -> tuple[bool, str]:
    lo, hi = stat.get("ci_low"), stat.get("ci_high")
    if at_least is not None:
        if lo is None:
            return False, "no confidence interval (no resolved reviews)"
        ok = lo >= at_least
        return ok, f"the CI's lower bound {lo:.3f} {'reaches' if ok else 'is below'} {at_least:.3f}"
    if hi is None:
        return False, "no confidence interval (no reviews)"
    ok = hi <= at_most
    return ok, f"the CI's upper bound {hi:.3f} {'stays under' if ok else 'exceeds'} {at_most:.3f}"


def _model_dir(eval_dir: Path, ref: str) -> tuple[str, Path]:
    from harness.models import fingerprint, resolve

    fp = fingerprint(resolve(ref))
    return fp, eval_dir / fp


def _suites_with_results(folder: Path) -> dict[str, Path]:
    return {p.parent.parent.name + "/" + p.parent.name: p.parent for p in sorted(folder.glob("*/*/summary.json"))}


def _feedback_evidence(summary_path: Path, tasks_path: Path, cand_fp: str, inc_fp: str) -> tuple[dict | None, str | None]:
    """``(summary, None)``, or ``(None, why the review evidence cannot be used)``."""
    if not summary_path.is_file() or not tasks_path.is_file():
        return None, f"missing evidence: no review summary in {summary_path.parent} (run harness feedback export)"
    tasks = read_jsonl(tasks_path)
    wrong = {t["candidate"].get("fingerprint") for t in tasks} - {cand_fp} | \
        {t["incumbent"].get("fingerprint") for t in tasks} - {inc_fp}
    if wrong:
        return None, (f"the reviews compared other models (fingerprints {', '.join(sorted(map(str, wrong)))}), "
                      f"not candidate {cand_fp} vs incumbent {inc_fp}")
    return artifact_dict(summary_path, FeedbackSummary), None


def default_incumbent(config: CycleConfig) -> str:
    """The registry's champion when there is one, else ``model.base``."""
    from harness.registry import champion_ref

    return champion_ref(config) or config.model.base


def run(config: CycleConfig) -> GateResult:
    """Decide on ``gate.candidate`` vs ``gate.incumbent`` under ``gate.policy``; see the module docstring."""
    from harness import ledger
    from harness.compare import compare_suite
    from harness.suites import available_suites

    g = config.gate
    layout = config.layout()
    policy_path = Path(g.policy or DEFAULT_POLICY)
    policy = load_policy(policy_path, tuple(config.eval.suite_dirs))
    candidate = g.candidate or str(layout.adapter("sft"))
    incumbent = g.incumbent or default_incumbent(config)
    eval_dir = Path(g.eval_dir or config.eval.output_dir or layout.eval)
    cand_fp, cand_dir = _model_dir(eval_dir, candidate)
    inc_fp, inc_dir = _model_dir(eval_dir, incumbent)
    if cand_fp == inc_fp:
        raise HarnessError(f"the candidate and the incumbent are the same model (fingerprint {cand_fp})",
                           hint="set gate.candidate to the new adapter and gate.incumbent to the current champion")
    known = available_suites(tuple(config.eval.suite_dirs))
    cand_suites, inc_suites = _suites_with_results(cand_dir), _suites_with_results(inc_dir)
    inputs: dict[str, str] = {str(policy_path): sha256_file(policy_path)}
    seed = config.eval.seed if config.eval.seed is not None else config.run.seed
    rows_cache: dict[str, list[dict]] = {}
    results = []

    def evidence_problem(suite: str) -> str | None:
        for side, folder, fp, ref in (("candidate", cand_suites.get(suite), cand_fp, candidate),
                                      ("incumbent", inc_suites.get(suite), inc_fp, incumbent)):
            if folder is None:
                return f"no {suite} results for the {side} ({ref}, fingerprint {fp}) under {eval_dir}: run harness eval"
            summary = artifact_dict(folder / "summary.json", EvalSummary)
            if summary.get("model_fingerprint") != fp:
                return (f"{folder} holds results for model fingerprint {summary.get('model_fingerprint')}, "
                        f"not the {side}'s {fp}")
            if suite in known and summary.get("suite_version") != known[suite].version:
                return (f"{side} results for {suite} are from suite version {summary.get('suite_version')}; "
                        f"the current version is {known[suite].version}: re-run harness eval")
        return None

    fb_dir = Path(g.feedback_dir or layout.feedback)
    summary_path, tasks_path = fb_dir / "summary.json", fb_dir / "tasks.jsonl"
    feedback: tuple[dict | None, str | None] = (None, None)
    if any(isinstance(r, FeedbackRule) for r in policy.rules):  # read the review evidence once for all its rules
        feedback = _feedback_evidence(summary_path, tasks_path, cand_fp, inc_fp)

    for rule in policy.rules:
        if isinstance(rule, CompareRule):
            def has_metric(suite: str) -> bool:
                return suite not in known or rule.metric in [m.name for m in known[suite].spec.metrics]

            evaluated = sorted(set(cand_suites) | set(inc_suites))  # a suite either side has must be compared
            suites = sorted({s for pattern in rule.suites
                             for s in ([c for c in evaluated if has_metric(c)] if any(ch in pattern for ch in "*?[") else [pattern])
                             if fnmatch.fnmatch(s, pattern)})
            checks = []
            if not suites:
                checks.append({"suite": ", ".join(rule.suites), "metric": rule.metric, "passed": False,
                               "reason": f"missing evidence: no results for {', '.join(rule.suites)}",
                               "evidence": []})
            for suite in suites:
                problem = evidence_problem(suite)
                evidence = [str(d / f) for d in (inc_suites.get(suite), cand_suites.get(suite)) if d
                            for f in ("summary.json", "samples.jsonl")]
                if problem:
                    checks.append({"suite": suite, "metric": rule.metric, "passed": False,
                                   "reason": f"missing or unusable evidence: {problem}", "evidence": evidence})
                    continue
                for f in evidence:
                    inputs[f] = sha256_file(f)
                if suite not in rows_cache:
                    try:
                        rows_cache[suite] = compare_suite(inc_suites[suite], cand_suites[suite], seed=seed,
                                                          n_resamples=config.eval.bootstrap_resamples,
                                                          suite_dirs=tuple(config.eval.suite_dirs))
                    except HarnessError as exc:  # e.g. the two sides were scored on different data
                        rows_cache[suite] = []
                        checks.append({"suite": suite, "metric": rule.metric, "passed": False,
                                       "reason": f"unusable evidence: {exc.message}", "evidence": evidence})
                        continue
                row = next((r for r in rows_cache[suite] if r["metric"] == rule.metric), None)
                if row is None:
                    checks.append({"suite": suite, "metric": rule.metric, "passed": False,
                                   "reason": f"missing evidence: the results hold no {rule.metric}", "evidence": evidence})
                    continue
                ok, why, oriented = decide_compare(row, rule.require, rule.by)
                checks.append({"suite": suite, "metric": rule.metric, "passed": ok, "reason": why, "n": row.get("n"),
                               "test": row.get("test"), "estimate": row.get("difference"),
                               "ci": [row.get("ci_low"), row.get("ci_high")], "level": row.get("level", 0.95),
                               "p_value": row.get("p_value"), "incumbent_value": row.get("reference_mean"),
                               "candidate_value": row.get("candidate_mean"),
                               "higher_is_better": row.get("higher_is_better"), **oriented, "evidence": evidence})
            results.append({"id": rule.id, "kind": "compare", "description": rule.description,
                            "requirement": f"{rule.metric} on {', '.join(rule.suites)}: {rule.require.replace('_', ' ')} "
                                           f"by {'at least' if rule.require == 'improve' else 'at most' if rule.require == 'no_regress' else '±'} {rule.by:g}",
                            "passed": all(c["passed"] for c in checks), "checks": checks})
        else:
            summary, problem = feedback
            check: dict[str, Any] = {"metric": rule.metric, "evidence": [str(summary_path), str(tasks_path)]}
            bound = f"at least {rule.at_least:g}" if rule.at_least is not None else f"at most {rule.at_most:g}"
            if problem:
                check.update(passed=False, reason=problem)
            else:
                stat = summary[rule.metric]
                ok, why = decide_feedback(stat, rule.at_least, rule.at_most)
                check.update(passed=ok, reason=why, n=stat.get("n"), estimate=stat.get("estimate"),
                             ci=[stat.get("ci_low"), stat.get("ci_high")],
                             test="bootstrap CI" if rule.metric == "win_rate" else "Wilson CI",
                             simulated=summary.get("simulated"))
                inputs[str(summary_path)] = sha256_file(summary_path)
                inputs[str(tasks_path)] = sha256_file(tasks_path)
            results.append({"id": rule.id, "kind": "feedback", "description": rule.description,
                            "requirement": f"{rule.metric} {bound} (CI bound)", "passed": check["passed"], "checks": [check]})

    passed = all(r["passed"] for r in results)
    created = utc_now()
    decision_id = "dec-" + stable_hash({"inputs": inputs, "candidate": cand_fp, "incumbent": inc_fp,
                                        "policy": policy.model_dump(), "created": created})[:12]
    failed = [r["id"] for r in results if not r["passed"]]
    decision = {
        "schema_version": 1, "kind": "gate_decision", "decision_id": decision_id, "created": created,
        "run_id": config.run.id, "passed": passed, "outcome": "pass" if passed else "fail",
        "signoff_required": policy.signoff_required,
        "summary": ("every rule passed" + ("; promotion needs a named approver" if policy.signoff_required else "")
                    if passed else f"failed: {', '.join(failed)}"),
        "policy": {"path": str(policy_path), "name": policy.name, "version": policy.version,
                   "sha256": inputs[str(policy_path)]},
        "candidate": {"ref": candidate, "fingerprint": cand_fp}, "incumbent": {"ref": incumbent, "fingerprint": inc_fp},
        "rules": results, "inputs": inputs,
    }
    out = layout.decision()
    write_artifact(out, decision, GateDecision)
    write_artifact(layout.decision(decision_id), decision, GateDecision)
    ledger.append("decision" if passed else "reject", actor="harness gate",
                  subject={"decision_id": decision_id, "run_id": config.run.id, "candidate": cand_fp, "incumbent": inc_fp},
                  details={"outcome": decision["outcome"], "failed_rules": failed, "policy": policy.name,
                           "decision_sha256": sha256_file(out)})
    (_log.done if passed else _log.warn)(f"gate decision {decision_id}: {decision['summary']} ({out})")
    return GateResult(out, decision)
