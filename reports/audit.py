"""The compliance audit report of one run: ``audit.html`` (self-contained), ``audit.pdf``, ``audit.json``.

``run(config) -> ReportResult`` gathers what the run left behind — the gate decision and the
ledger's record of it, the manifest (lineage, environment, seeds), the data card, evaluation results
of base, incumbent and candidate, the review summary, the training curves of every stage — into one
document (``audit.json``, a :class:`reports.schema.AuditReport`; ``audit.schema.json`` is generated from it), renders it with Jinja2 and
matplotlib (charts inlined as PNG, CSS inline: the HTML opens offline), and prints the HTML to PDF
with WeasyPrint (a Python library; Chromium where it is installed and asked for) so both carry the
same sections. Plain words first, numbers after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.schemas import (
    Artifact, DataCard, EvalSummary, FeedbackAgreement, FeedbackSummary, LabelingRounds, GateDecision, PromptSplit, TrainingResult, artifact_dict, write_artifact,
)
from reports import evaluation as _evaluation
from reports import profiles as _profiles
from reports import retrieval as _retrieval
from reports.evidence import Cited, shown, shown_text, sign
from reports.render import SECTIONS, pdf_renderer, render_html, write_pdf
from reports.schema import SCHEMA_PATH, AuditReport
from harness.artifacts import atomic_write_text, read_json, read_jsonl, sha256_file, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.layout import RunLayout

__all__ = ["ReportResult", "run", "build", "SECTIONS", "SCHEMA_PATH"]


@dataclass(frozen=True)
class ReportResult:
    html: Path
    pdf: Path | None
    json: Path
    pdf_renderer: str | None = None
    warnings: tuple[str, ...] = ()


def _maybe(path: Path, model: type[Artifact] | None = None) -> Any:
    if not path.is_file():
        return None
    return artifact_dict(path, model) if model else read_json(path)


def _eval_models(eval_dir: Path, cited: Cited) -> dict[str, dict[str, Any]]:
    """Per model fingerprint: model reference and its suites' summaries."""
    out: dict[str, dict[str, Any]] = {}
    for summary_path in sorted(eval_dir.glob("*/*/*/summary.json")):
        cited.add(summary_path)
        cited.add(summary_path.with_name("samples.jsonl"))
        s = artifact_dict(summary_path, EvalSummary)
        entry = out.setdefault(s["model_fingerprint"], {"model": s["model"], "suites": {}})
        entry["suites"][s["suite"]] = {
            "suite_version": s.get("suite_version"), "n": s.get("n"), "license": s.get("license"),
            "source": s.get("source"), "metrics": {k: {kk: m.get(kk) for kk in ("estimate", "ci_low", "ci_high", "n", "higher_is_better", "ideal")}
                                                   for k, m in s.get("metrics", {}).items()},
            "by_category": s.get("by_category") or {},
        }
    return out


def _disagreements(fb_dir: Path, cited: Cited, limit: int = 5) -> list[dict[str, Any]]:
    cited.add(fb_dir / "annotations.jsonl")
    cited.add(fb_dir / "tasks.jsonl")
    rows = read_jsonl(fb_dir / "annotations.jsonl") if (fb_dir / "annotations.jsonl").is_file() else []
    tasks = {t["task_key"]: t for t in read_jsonl(fb_dir / "tasks.jsonl")} if (fb_dir / "tasks.jsonl").is_file() else {}
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("choice"):
            by_task.setdefault(r["task_key"], []).append(r)
    out = []
    for key, rs in sorted(by_task.items()):
        if len({r["choice"] for r in rs}) > 1:
            out.append({"prompt": tasks.get(key, {}).get("prompt", key),
                        "votes": [{"reviewer": r["annotator"], "choice": r["choice"], "rationale": r.get("rationale", "")} for r in rs]})
        if len(out) >= limit:
            break
    return out


def _curves(layout: RunLayout, cited: Cited) -> dict[str, list[dict[str, Any]]]:
    keys = ("loss", "eval_loss", "reward", "kl", "completions/mean_length", "rewards/margins", "accuracy")
    out = {}
    for stage in ("sft", "reward", "dpo", "online"):
        path = cited.add(layout.metrics(stage))
        if path.is_file():
            out[stage] = [{"step": r["step"], **{k: r[k] for k in keys if isinstance(r.get(k), (int, float))}}
                          for r in read_jsonl(path)]
    return out


def build(config: CycleConfig) -> dict[str, Any]:
    """The report's content as one JSON-serializable document."""
    from harness import ledger

    layout = config.layout()
    run_dir = layout.dir
    if not run_dir.is_dir():
        raise HarnessError(f"run folder {run_dir} does not exist", hint="check run.id and run.root")
    cited = Cited(run_dir)

    def maybe(path: Path, model: type[Artifact] | None = None) -> Any:
        return _maybe(cited.add(path), model)

    def here(path: Any) -> str | None:
        return shown(path, run_dir)
    decision = maybe(layout.decision(), GateDecision)
    if decision is None:
        raise HarnessError(f"{run_dir} has no gate decision (gate/decision.json)", hint="run 'harness gate' first")
    check = ledger.verify()
    entries = ledger.read_entries(ledger.default_path(), skip_malformed=True)  # the check above reports them
    related = [e for e in entries if e["subject"].get("decision_id") == decision["decision_id"]]
    promoted = next((e for e in related if e["action"] in ("promote", "repair")), None)
    signoff = next((e for e in related if e["action"] == "sign_off"), None)
    status = "promoted" if promoted else ("rejected" if not decision["passed"] else "passed, not yet promoted")
    if promoted:
        from harness.registry import champion_stack

        model, version = promoted["subject"].get("model"), str(promoted["subject"].get("version"))
        stack = champion_stack(model, entries)
        if not stack or stack[-1] != version:
            # what moved the champion away from this version first: a rollback, or a later promotion
            after = [e for e in entries if e.get("seq", 0) > promoted.get("seq", 0)
                     and (e.get("subject") or {}).get("model") == model and e.get("action") in ("promote", "rollback")]
            status = "promoted, later rolled back" if after and after[0]["action"] == "rollback" else "promoted, later superseded"
    cited.add(Path(decision["policy"]["path"]))  # the policy file the gate read (its hash is in the decision too)
    failed = [r for r in decision["rules"] if not r["passed"]]
    if status.startswith("promoted"):
        plain = (f"The candidate was promoted to champion ({promoted['subject'].get('model')} "
                 f"v{promoted['subject'].get('version')}) on {promoted['time']}"
                 + (f", signed off by {signoff['actor']}" if signoff else "") + ". Every rule of the policy passed."
                 + {"promoted, later rolled back": " It has since been rolled back and is no longer the champion.",
                    "promoted, later superseded": " A later promotion has since replaced it as the champion."}.get(status, ""))
    elif status == "rejected":
        plain = ("The candidate was rejected: " + "; ".join(f"{r['id']} ({r['checks'][0]['reason']})" for r in failed) + ".")
    else:
        plain = "Every rule of the policy passed; the candidate has not been promoted yet" + \
            (" (the policy requires a named approver)." if decision.get("signoff_required") else ".")
    manifest = maybe(layout.manifest) or {"stages": {}}
    stage_results = {s: maybe(layout.result(s), TrainingResult) for s in ("sft", "reward", "dpo", "online")}
    lineage = {
        "base": here(config.model.base),
        "candidate": {**decision["candidate"], "ref": here(decision["candidate"]["ref"])},
        "incumbent": {**decision["incumbent"], "ref": here(decision["incumbent"]["ref"])},
        "stages": {s: {"model_path": here(r.get("model_path")), "model_sha256": r.get("model_sha256"),
                       "method": r.get("method") or r.get("objective") or r.get("algorithm"),
                       "started_from": here((r.get("inputs") or {}).get("policy")), "finished": r.get("finished")}
                   for s, r in stage_results.items() if r},
    }
    card = maybe(layout.data / "data_card.json", DataCard)
    eval_dir = Path(config.gate.eval_dir or config.eval.output_dir or layout.eval)
    models = _eval_models(eval_dir, cited) if eval_dir.is_dir() else {}
    roles = _evaluation.roles(decision, _evaluation.fingerprint_or_none(config.model.base),
                              _evaluation.fingerprint_or_none((stage_results.get("sft") or {}).get("model_path")))
    evaluation = sorted(({"role": roles.get(fp, "other"), "label": _evaluation.label(roles.get(fp, "other"), fp),
                          "fingerprint": fp, **m, "model": here(m["model"])} for fp, m in models.items()),
                        key=lambda e: (_evaluation.ROLE_ORDER.index(e["role"]), e["fingerprint"]))
    seen = {fp: roles.get(fp, "other") for fp in models}
    suite_dirs = tuple(config.eval.suite_dirs)
    resamples = config.eval.bootstrap_resamples
    comparison = _evaluation.comparison(eval_dir, decision["incumbent"]["fingerprint"], decision["candidate"]["fingerprint"],
                                        suite_dirs=suite_dirs, n_resamples=resamples, seed=config.run.seed) \
        if {decision["incumbent"]["fingerprint"], decision["candidate"]["fingerprint"]} <= set(models) else []
    bias_categories = _evaluation.categories(eval_dir, seen, suite_dirs=suite_dirs, n_resamples=max(200, resamples // 5),
                                             seed=config.run.seed) if models else {}
    fb_dir = Path(config.gate.feedback_dir or layout.feedback)
    fb_summary = maybe(fb_dir / "summary.json", FeedbackSummary)
    agreement = maybe(fb_dir / "agreement.json", FeedbackAgreement)
    reviewers = None
    if fb_summary:
        reviewers = {"summary": {k: fb_summary.get(k) for k in ("tasks_reviewed", "annotations", "resolved", "dropped",
                                                              "win_rate", "length_controlled_win_rate", "unsafe_rate",
                                                              "aspects", "simulated", "policy")},
                     "agreement": {k: (agreement or {}).get(k) for k in ("annotators", "krippendorff_alpha_preference_nominal",
                                                                         "krippendorff_alpha_rating_ordinal", "cohens_kappa_mean",
                                                                         "fleiss_kappa", "per_reviewer")},
                     "disagreements": _disagreements(fb_dir, cited),
                     "alignment": maybe(fb_dir / "alignment" / "summary.json", FeedbackSummary),
                     "rounds": maybe(Path(getattr(getattr(config, "feedback", None), "output_dir", None) or layout.feedback)
                                       / "rounds.json", LabelingRounds)}
    licenses = {}
    for m in models.values():
        for suite, s in m["suites"].items():
            licenses[suite] = {"license": s.get("license"), "source": s.get("source")}
    return {
        "schema_version": 1, "kind": "audit_report", "created": utc_now(), "run_id": config.run.id,
        "decision": {"status": status, "plain": plain, "decision_id": decision["decision_id"],
                     "decided": decision["created"], "outcome": decision["outcome"],
                     "policy": {**decision["policy"], "path": here(decision["policy"]["path"])},
                     "signoff_required": decision.get("signoff_required", False),
                     "approver": signoff["actor"] if signoff else None, "promoted": promoted,
                     "failed_rules": [r["id"] for r in failed],
                     "simulated_reviews": bool(decision.get("simulated_reviews") or (fb_summary or {}).get("simulated")
                                               or ((reviewers or {}).get("alignment") or {}).get("simulated"))},
        "lineage": lineage,
        "data_card": {k: (card or {}).get(k) for k in ("counts", "drops", "inputs", "outputs", "lengths")} if card else None,
        "evaluation": evaluation,
        "comparison": comparison,
        "bias_categories": bias_categories,
        "rag": (_retrieval.rows(eval_dir, {e["fingerprint"]: e["label"] for e in evaluation}) or None) if models else None,
        "reviewers": reviewers,
        "prompt_split": maybe(layout.prompt_split, PromptSplit),
        "reward_model": {"quality": stage_results["reward"]["metrics"].get("quality"),
                         "online_check": (stage_results["online"] or {}).get("metrics", {}).get("reward_model_check")}
        if stage_results.get("reward") else None,
        "curves": _curves(layout, cited),
        "rules": [{**r, "checks": [{**c, "evidence": [here(e) for e in c.get("evidence") or []]} for c in r["checks"]]}
                  for r in decision["rules"]],
        "environment": {"manifest": manifest.get("environment"), "seed": config.run.seed,
                        "stages": sorted(manifest.get("stages", {}))},
        "licenses": licenses,
        "ledger": {**check.as_dict(), "path": here(check.path),
                   "message": shown_text(check.message, [check.path, Path(f"{check.path}.head")], run_dir)},
        "evidence": {"files": cited.entries(),
                     "ledger_head": {"entries": check.entries, "last_hash": check.details.get("last_hash")}
                     if check.ok and check.entries else None, "outputs": {}},
    }


def run(config: CycleConfig, *, pdf: bool | None = None, renderer: str | None = None) -> ReportResult:
    """Write audit.html, audit.json and (with ``pdf``, default ``cycle.pdf``) audit.pdf under
    ``<run>/report/``, printed by ``renderer`` (default ``cycle.pdf_renderer``).

    The PDF is optional output: when no renderer can print here, or printing fails, the HTML and
    JSON are still written, the report says the PDF was skipped and why, and the result carries a
    warning (the cycle shows it in its summary) instead of an error.
    """
    pdf = config.cycle.pdf if pdf is None else pdf
    renderer = renderer or config.cycle.pdf_renderer
    profiles = [_profiles.load(ref) for ref in config.cycle.report_profiles]  # a bad profile stops before any work
    doc = build(config)
    doc["profiles"] = [_profiles.section(doc, p) for p in profiles] or None
    warnings: list[str] = []
    engine = None
    if pdf:
        engine, notes = pdf_renderer(renderer)
        if engine is None:
            warnings.append("audit.pdf was not written: " + "; ".join(notes))
        elif notes:
            _log.info(f"printing the PDF with {engine}: {notes[0]}")
    # What the PDF will say of itself; rewritten below if printing fails.
    doc["pdf"] = {"requested": pdf, "renderer": engine, "written": engine is not None,
                  "skipped": (warnings or [None])[0] if pdf else "not requested (--no-pdf, or cycle.pdf: false)"}
    out = config.layout().report
    out.mkdir(parents=True, exist_ok=True)

    def write() -> Path:
        report = AuditReport.model_validate(doc)  # the schema in reports/schema.py
        return atomic_write_text(out / "audit.html", render_html(report.model_dump(mode="json")))

    # audit.json is written last, signed; until then no JSON stands beside an HTML it does not pin
    # (a crash midway leaves no report to verify rather than an older or unsigned one).
    (out / "audit.json").unlink(missing_ok=True)
    html = write()
    pdf_path = None
    if engine is not None:
        try:
            pdf_path = write_pdf(html, out / "audit.pdf", engine)
        except Exception as exc:  # an optional output: the report stands without it
            reason = exc.message if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            warnings.append(f"audit.pdf was not written: {engine} failed ({reason[:300]})")
            doc["pdf"].update(written=False, skipped=warnings[-1])
            html = write()
    if pdf_path is None:
        (out / "audit.pdf").unlink(missing_ok=True)  # never leave an older run's PDF beside a newer report
    # The JSON last: it pins the HTML and PDF just written, and is signed when $HARNESS_LEDGER_KEY is set.
    doc["evidence"]["outputs"] = {p.name: sha256_file(p) for p in (html, pdf_path) if p is not None}
    doc["signature"] = None
    doc["signature"] = sign(AuditReport.model_validate(doc).model_dump(mode="json"))
    json_path = write_artifact(out / "audit.json", AuditReport.model_validate(doc))
    for warning in warnings:
        _log.warn(warning)
    _log.done(f"audit report for run {config.run.id}: {doc['decision']['status']} — {html}"
              + (f", {pdf_path}" if pdf_path else "") + f", {json_path}")
    return ReportResult(html, pdf_path, json_path, engine if pdf_path else None, tuple(warnings))
