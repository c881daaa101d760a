"""The kernel's own stages: data, eval, final_eval, gate, promote (registered through entry points
like any plugin's; see :mod:`harness.stage`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.artifacts import sha256_file
from harness.schemas import GateDecision, artifact_dict
from harness.stage import Stage, StageContext, StageResult, num

__all__ = ["DATA", "EVAL", "FINAL_EVAL", "GATE", "PROMOTE"]


# ---------------------------------------------------------------------------------------- data


def _data(ctx: StageContext, cfg: Any) -> StageResult:
    from harness import data

    r = data.run(ctx.config, force=ctx.force)
    n = r.counts
    return StageResult(summary=f"{n['train']} training and {n['validation']} validation chats ({n['dropped']} dropped, "
                               f"{n['replay_added']} replay" + (f", {n['augmented']} paraphrases" if n.get("augmented") else "")
                               + ")", metrics=dict(n), artifacts=[str(r.card_path)])


def _data_files(ctx: StageContext) -> dict[str, Any]:
    from harness.decontam import checked_suites

    d = ctx.config.data
    return {"files": {str(s.path): sha256_file(s.path) for s in [*d.sources, d.replay]
                      if s is not None and s.path is not None and Path(s.path).is_file()},
            "decontaminate_against": checked_suites(ctx.config)}  # a new eval suite re-checks the rows


DATA = Stage(name="data", title="prepare data", run=_data, order=10, section="data", inputs=_data_files)


# ------------------------------------------------------------------------------------ evaluation


def _scores(ctx: StageContext, models: list[str]) -> StageResult:
    from harness import evaluate

    refs = list(dict.fromkeys(models))
    # The result cache is keyed on model, suite, data and settings, so a changed config never reuses a
    # wrong result; only an explicit --from re-scores what is cached.
    cfg = ctx.with_(eval={"models": refs, **({"use_cache": False} if ctx.forced else {})})
    r = evaluate.run(cfg)
    headline = []
    for res in r.results:
        if res.suite.startswith("domain/") and res.model == refs[-1]:
            m = next(iter(res.summary["metrics"].items()), None)
            if m:
                headline.append(f"{res.suite.split('/')[1]} {m[0]} {num(m[1]['estimate'])}")
    cached = sum(1 for res in r.results if res.cached)
    return StageResult(summary=f"{len(r.results)} suite results for {len(refs)} model(s) ({cached} cached)"
                               + (f"; candidate: {', '.join(headline)}" if headline else ""),
                       artifacts=[str(res.folder / "summary.json") for res in r.results])


def _suites(ctx: StageContext) -> dict[str, Any]:
    from harness.suites import select_suites

    cfg = ctx.config.eval
    out = {"incumbent": ctx.incumbent, "suites": {s.id: s.version for s in select_suites(cfg.suites, cfg.suite_dirs)}}
    if cfg.rag is not None:  # RAG variants are scored too: a changed corpus or setting re-runs the stage
        from harness.rag import index_inputs

        out["rag"] = {**cfg.rag.model_dump(mode="json"), "index": index_inputs(cfg.rag)}
    return out


def _eval(ctx: StageContext, cfg: Any) -> StageResult:
    from harness.multi_adapter import is_multi_adapter

    if is_multi_adapter(ctx.model("sft")):  # sft.per_domain: each domain's adapter on its own suites
        from harness.domain_eval import score_domains

        return score_domains(ctx, ctx.model("sft"))
    return _scores(ctx, [ctx.config.model.base, ctx.incumbent, ctx.model("sft")])


EVAL = Stage(name="eval", title="evaluate base, incumbent, SFT candidate", order=30, needs=("sft",), section="eval",
             run=_eval, inputs=_suites)
FINAL_EVAL = Stage(name="final_eval", title="evaluate the final candidate", order=80,
                   needs=("sft", "dpo", "online", "eval"), section="eval",
                   run=lambda ctx, cfg: _scores(ctx, [ctx.incumbent, ctx.candidate]), inputs=_suites)


# ------------------------------------------------------------------------------------ gate, promote


def _gate(ctx: StageContext, cfg: Any) -> StageResult:
    from harness import gate

    r = gate.run(ctx.gate_config())
    d = r.decision
    return StageResult(summary=f"{d['decision_id']}: {d['outcome']} ({d['summary']})", artifacts=[str(r.decision_path)],
                       outputs={"decision_id": d["decision_id"], "passed": r.passed})


def _policy(ctx: StageContext) -> dict[str, Any]:
    from harness.gate import DEFAULT_POLICY

    policy = Path(ctx.config.gate.policy or DEFAULT_POLICY)
    return {"incumbent": ctx.incumbent, "policy": sha256_file(policy) if policy.is_file() else str(policy)}


GATE = Stage(name="gate", title="gate", order=100, needs=("final_eval", "eval", "review", "feedback"), section="gate",
             reads=("eval",), run=_gate, inputs=_policy)


def _promote(ctx: StageContext, cfg: Any) -> StageResult:
    from harness import registry

    decision_id = ctx.output("gate", "decision_id")
    if not ctx.output("gate", "passed"):
        return StageResult(summary=f"rejected: {decision_id} did not pass, the champion stays", status="rejected")
    if not ctx.config.cycle.promote:
        return StageResult(summary=f"{decision_id} passed; not promoted (cycle.promote is false)", status="not promoted")
    if registry.is_promoted(decision_id):
        return StageResult(summary=f"{decision_id} was already promoted")
    decision = artifact_dict(ctx.layout.decision(decision_id), GateDecision)
    current = registry.champion_fingerprint(ctx.config)
    if current is not None and current[1] != decision["incumbent"]["fingerprint"]:
        # E.g. this run promoted its earlier candidate, then a setting changed: the new candidate was gated
        # against the run's incumbent, not against today's champion, so it may not replace the champion.
        return StageResult(
            summary=f"{decision_id} passed but was gated against {decision['incumbent']['ref']}, and the champion is "
                    f"now {current[0]}: not promoted. To gate against the champion, run the cycle again with "
                    f"gate.incumbent={registry.champion_ref(ctx.config)} (SFT is not redone) or start a new run id",
            status="not promoted")
    approver = ctx.config.cycle.approver
    if decision.get("signoff_required") and not approver:
        return StageResult(summary=f"{decision_id} passed and needs a sign-off: harness promote {decision_id} --approver NAME",
                           status="awaiting sign-off")
    r = registry.promote(ctx.config, decision_id, approver)
    return StageResult(summary=f"{r.model} v{r.version} is the champion" + (f", signed off by {approver}" if approver else ""),
                       outputs={"version": r.version})


PROMOTE = Stage(name="promote", title="promotion", order=110, needs=("gate",), section="registry", run=_promote,
                inputs=lambda ctx: {"approver": ctx.config.cycle.approver, "promote": ctx.config.cycle.promote})
