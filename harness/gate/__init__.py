"""The promotion gate: a written policy decides, from paired evidence, whether a candidate may replace
the incumbent.

A policy (YAML, validated; ``harness/policies/default.yaml`` ships with the project) holds rules:

* ``kind: compare`` — over evaluation suites (``domain/*`` matches every domain suite evaluated for
  the candidate, not its ``+rag`` variants unless the pattern says ``+``; a plain name must be
  present) and one metric. ``require: improve`` (by at least
  ``by``), ``no_regress`` (by no more than ``by``) or ``within`` (``±by`` of the incumbent). Each is a
  one-sided decision on the 95 % CI of the paired difference from ``harness.compare`` (oriented so
  that positive is better), never on the point estimate: improve passes when the CI's lower bound
  is at least ``by``; no_regress when it is above ``-by``; within when the whole CI lies in ``±by``.
* ``kind: feedback`` — on the review summary (``win_rate`` or ``unsafe_rate``): ``at_least`` passes
  when the CI's lower bound reaches it, ``at_most`` when the CI's upper bound stays under it.
  ``against: incumbent`` (default) reads the final review against the incumbent; ``against: sft`` the
  review against the SFT-only candidate on held-out prompts (did the preference stages help; it passes
  by itself when the candidate *is* the SFT model).

Each rule kind has one evaluator (:mod:`harness.gate.rules`, ``EVALUATORS``) reading the evidence
through :class:`harness.gate.evidence.Evidence`, which checks and hashes every file it hands out.

Missing evidence fails its rule, and so does evidence about another model (fingerprint) or from
another suite version than the current one. ``run(config) -> GateResult`` writes
``<run>/gate/decision.json`` (decision id, every rule with n, test, estimate, CI, threshold, pass/fail,
reason and evidence files, and the SHA-256 of every input) and appends the decision to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import sha256_file, stable_hash, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.gate.evidence import Evidence
from harness.gate.policy import DEFAULT_POLICY, CompareRule, FeedbackRule, GatePolicy, load_policy
from harness.gate.rules import EVALUATORS, decide_compare, decide_feedback
from harness.schemas import GateDecision, write_artifact

__all__ = ["GatePolicy", "GateResult", "load_policy", "run", "DEFAULT_POLICY", "decide_compare", "decide_feedback",
           "default_incumbent", "CompareRule", "FeedbackRule", "EVALUATORS"]


@dataclass(frozen=True)
class GateResult:
    decision_path: Path
    decision: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.decision["passed"]


def default_incumbent(config: CycleConfig) -> str:
    """The registry's champion when there is one, else ``model.base``."""
    from harness.registry import champion_ref

    return champion_ref(config) or config.model.base


def run(config: CycleConfig) -> GateResult:
    """Decide on ``gate.candidate`` vs ``gate.incumbent`` under ``gate.policy``; see the module docstring."""
    from harness import ledger
    from harness.models import fingerprint, resolve
    from harness.suites import available_suites

    g, layout = config.gate, config.layout()
    ledger.require_writable()  # the decision is recorded there: refuse before writing it
    policy_path = Path(g.policy or DEFAULT_POLICY)
    policy = load_policy(policy_path, tuple(config.eval.suite_dirs))
    candidate = g.candidate or str(layout.adapter("sft"))
    incumbent = g.incumbent or default_incumbent(config)
    cand_fp, inc_fp = fingerprint(resolve(candidate)), fingerprint(resolve(incumbent))
    if cand_fp == inc_fp:
        raise HarnessError(f"the candidate and the incumbent are the same model (fingerprint {cand_fp})",
                           hint="set gate.candidate to the new adapter and gate.incumbent to the current champion")
    ev = Evidence(eval_dir=Path(g.eval_dir or config.eval.output_dir or layout.eval),
                  feedback_dir=Path(g.feedback_dir or layout.feedback), candidate=candidate, incumbent=incumbent,
                  cand_fp=cand_fp, inc_fp=inc_fp, known=available_suites(tuple(config.eval.suite_dirs)),
                  seed=config.eval.seed if config.eval.seed is not None else config.run.seed,
                  n_resamples=config.eval.bootstrap_resamples, suite_dirs=tuple(config.eval.suite_dirs),
                  allow_simulated=policy.allow_simulated)
    if any(getattr(r, "against", None) == "sft" for r in policy.rules):
        sft = g.sft or str(layout.adapter("sft"))
        try:
            ev.sft, ev.sft_fp = sft, fingerprint(resolve(sft))
        except HarnessError:  # no SFT model to compare with: the rule says so
            ev.sft, ev.sft_fp = sft, f"(no model at {sft})"
    ev.record(policy_path)
    results = [EVALUATORS[rule.kind](rule, ev) for rule in policy.rules]

    passed = all(r["passed"] for r in results)
    created = utc_now()
    decision_id = "dec-" + stable_hash({"inputs": ev.inputs, "candidate": cand_fp, "incumbent": inc_fp,
                                        "policy": policy.model_dump(), "created": created})[:12]
    failed = [r["id"] for r in results if not r["passed"]]
    decision = {
        "schema_version": 1, "kind": "gate_decision", "decision_id": decision_id, "created": created,
        "run_id": config.run.id, "passed": passed, "outcome": "pass" if passed else "fail",
        "signoff_required": policy.signoff_required,
        "summary": ("every rule passed" + ("; promotion needs a named approver" if policy.signoff_required else "")
                    if passed else f"failed: {', '.join(failed)}"),
        "policy": {"path": str(policy_path), "name": policy.name, "version": policy.version,
                   "sha256": ev.inputs[str(policy_path)], "allow_simulated": policy.allow_simulated},
        "simulated_reviews": any(c.get("simulated") for r in results for c in r["checks"]),
        "candidate": {"ref": candidate, "fingerprint": cand_fp}, "incumbent": {"ref": incumbent, "fingerprint": inc_fp},
        **({"sft_only": {"ref": ev.sft, "fingerprint": ev.sft_fp}} if ev.sft is not None else {}),
        "rules": results, "inputs": ev.inputs,
    }
    out = layout.decision()
    write_artifact(out, decision, GateDecision)
    write_artifact(layout.decision(decision_id), decision, GateDecision)
    ledger.append("decision" if passed else "reject", actor="harness gate",
                  subject={"decision_id": decision_id, "run_id": config.run.id, "candidate": cand_fp, "incumbent": inc_fp,
                           **({"sft_only": ev.sft_fp} if ev.sft is not None else {})},
                  details={"outcome": decision["outcome"], "failed_rules": failed, "policy": policy.name,
                           "simulated_reviews": decision["simulated_reviews"],
                           "decision_sha256": sha256_file(out)})
    (_log.done if passed else _log.warn)(f"gate decision {decision_id}: {decision['summary']} ({out})")
    return GateResult(out, decision)
