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

import base64
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.schemas import (
    Artifact, DataCard, EvalSummary, FeedbackAgreement, FeedbackSummary, LabelingRounds, GateDecision, PromptSplit, TrainingResult, artifact_dict, write_artifact,
)
from reports.schema import SCHEMA_PATH, AuditReport
from harness.artifacts import atomic_write_text, read_json, read_jsonl, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.layout import RunLayout

__all__ = ["ReportResult", "run", "build", "render_html", "SECTIONS", "SCHEMA_PATH"]

HERE = Path(__file__).resolve().parent
SECTIONS = ["Decision", "Model lineage", "Training data", "Evaluation", "Reviewers", "Reward model", "Training curves",
            "Gate rules and evidence", "Environment", "Dataset licenses", "Ledger"]


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


def _eval_models(eval_dir: Path) -> dict[str, dict[str, Any]]:
    """Per model fingerprint: model reference and its suites' summaries."""
    out: dict[str, dict[str, Any]] = {}
    for summary_path in sorted(eval_dir.glob("*/*/*/summary.json")):
        s = artifact_dict(summary_path, EvalSummary)
        entry = out.setdefault(s["model_fingerprint"], {"model": s["model"], "suites": {}})
        entry["suites"][s["suite"]] = {
            "suite_version": s.get("suite_version"), "n": s.get("n"), "license": s.get("license"),
            "source": s.get("source"), "metrics": {k: {kk: m.get(kk) for kk in ("estimate", "ci_low", "ci_high", "n", "higher_is_better")}
                                                   for k, m in s.get("metrics", {}).items()},
            "by_category": s.get("by_category") or {},
        }
    return out


def _disagreements(fb_dir: Path, limit: int = 5) -> list[dict[str, Any]]:
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


def _curves(layout: RunLayout) -> dict[str, list[dict[str, Any]]]:
    keys = ("loss", "eval_loss", "reward", "kl", "completions/mean_length", "rewards/margins", "accuracy")
    out = {}
    for stage in ("sft", "reward", "dpo", "online"):
        path = layout.metrics(stage)
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
    decision = _maybe(layout.decision(), GateDecision)
    if decision is None:
        raise HarnessError(f"{run_dir} has no gate decision (gate/decision.json)", hint="run 'harness gate' first")
    entries = ledger.read_entries(ledger.default_path())
    related = [e for e in entries if e["subject"].get("decision_id") == decision["decision_id"]]
    promoted = next((e for e in related if e["action"] in ("promote", "repair")), None)
    signoff = next((e for e in related if e["action"] == "sign_off"), None)
    status = "promoted" if promoted else ("rejected" if not decision["passed"] else "passed, not yet promoted")
    if promoted:
        from harness.registry import champion_stack

        model, version = promoted["subject"].get("model"), str(promoted["subject"].get("version"))
        stack = champion_stack(model)
        if not stack or stack[-1] != version:
            status = "promoted, later rolled back"
    failed = [r for r in decision["rules"] if not r["passed"]]
    if status.startswith("promoted"):
        plain = (f"The candidate was promoted to champion ({promoted['subject'].get('model')} "
                 f"v{promoted['subject'].get('version')}) on {promoted['time']}"
                 + (f", signed off by {signoff['actor']}" if signoff else "") + ". Every rule of the policy passed."
                 + (" It has since been rolled back and is no longer the champion." if status != "promoted" else ""))
    elif status == "rejected":
        plain = ("The candidate was rejected: " + "; ".join(f"{r['id']} ({r['checks'][0]['reason']})" for r in failed) + ".")
    else:
        plain = "Every rule of the policy passed; the candidate has not been promoted yet" + \
            (" (the policy requires a named approver)." if decision.get("signoff_required") else ".")
    manifest = _maybe(layout.manifest) or {"stages": {}}
    stage_results = {s: _maybe(layout.result(s), TrainingResult) for s in ("sft", "reward", "dpo", "online")}
    lineage = {
        "base": config.model.base,
        "candidate": decision["candidate"], "incumbent": decision["incumbent"],
        "stages": {s: {"model_path": r.get("model_path"), "model_sha256": r.get("model_sha256"),
                       "method": r.get("method") or r.get("objective") or r.get("algorithm"),
                       "started_from": (r.get("inputs") or {}).get("policy"), "finished": r.get("finished")}
                   for s, r in stage_results.items() if r},
    }
    card = _maybe(layout.data / "data_card.json", DataCard)
    eval_dir = Path(config.gate.eval_dir or config.eval.output_dir or layout.eval)
    models = _eval_models(eval_dir) if eval_dir.is_dir() else {}
    roles = {decision["candidate"]["fingerprint"]: "candidate", decision["incumbent"]["fingerprint"]: "incumbent"}
    from harness.models import fingerprint, resolve

    try:
        roles.setdefault(fingerprint(resolve(config.model.base)), "base")
    except HarnessError:
        pass
    evaluation = [{"role": roles.get(fp, "other"), "fingerprint": fp, **m} for fp, m in models.items()]
    fb_dir = Path(config.gate.feedback_dir or layout.feedback)
    fb_summary = _maybe(fb_dir / "summary.json", FeedbackSummary)
    agreement = _maybe(fb_dir / "agreement.json", FeedbackAgreement)
    reviewers = None
    if fb_summary:
        reviewers = {"summary": {k: fb_summary.get(k) for k in ("tasks_reviewed", "annotations", "resolved", "dropped",
                                                              "win_rate", "length_controlled_win_rate", "unsafe_rate",
                                                              "aspects", "simulated", "policy")},
                     "agreement": {k: (agreement or {}).get(k) for k in ("annotators", "krippendorff_alpha_preference_nominal",
                                                                         "krippendorff_alpha_rating_ordinal", "cohens_kappa_mean",
                                                                         "fleiss_kappa", "per_reviewer")},
                     "disagreements": _disagreements(fb_dir),
                     "alignment": _maybe(fb_dir / "alignment" / "summary.json", FeedbackSummary),
                     "rounds": _maybe(Path(getattr(getattr(config, "feedback", None), "output_dir", None) or layout.feedback)
                                       / "rounds.json", LabelingRounds)}
    licenses = {}
    for m in models.values():
        for suite, s in m["suites"].items():
            licenses[suite] = {"license": s.get("license"), "source": s.get("source")}
    check = ledger.verify()
    return {
        "schema_version": 1, "kind": "audit_report", "created": utc_now(), "run_id": config.run.id,
        "decision": {"status": status, "plain": plain, "decision_id": decision["decision_id"],
                     "decided": decision["created"], "outcome": decision["outcome"],
                     "policy": decision["policy"], "signoff_required": decision.get("signoff_required", False),
                     "approver": signoff["actor"] if signoff else None, "promoted": promoted,
                     "failed_rules": [r["id"] for r in failed],
                     "simulated_reviews": bool(decision.get("simulated_reviews") or (fb_summary or {}).get("simulated")
                                               or ((reviewers or {}).get("alignment") or {}).get("simulated"))},
        "lineage": lineage,
        "data_card": {k: (card or {}).get(k) for k in ("counts", "drops", "inputs", "outputs", "lengths")} if card else None,
        "evaluation": evaluation,
        "reviewers": reviewers,
        "prompt_split": _maybe(layout.prompt_split, PromptSplit),
        "reward_model": {"quality": stage_results["reward"]["metrics"].get("quality"),
                         "online_check": (stage_results["online"] or {}).get("metrics", {}).get("reward_model_check")}
        if stage_results.get("reward") else None,
        "curves": _curves(layout),
        "rules": decision["rules"],
        "environment": {"manifest": manifest.get("environment"), "seed": config.run.seed,
                        "stages": sorted(manifest.get("stages", {}))},
        "licenses": licenses,
        "ledger": check.as_dict(),
    }


# ----------------------------------------------------------------------------------- rendering


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _charts(doc: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = {}
    bars = []
    for model in doc["evaluation"]:
        for suite, s in sorted(model["suites"].items()):
            for name, m in s["metrics"].items():
                if m.get("estimate") is not None and m.get("ci_low") is not None and name in ("acc", "match"):
                    label = model["role"] if model["role"] != "other" else model["fingerprint"][:8]
                    bars.append((f"{suite}\n{name}", label, m["estimate"], m["ci_low"], m["ci_high"]))
    if bars:
        labels = sorted({b[0] for b in bars})
        order = {"base": 0, "incumbent": 1, "candidate": 2}
        roles = sorted({b[1] for b in bars}, key=lambda r: (order.get(r, 3), r))
        fig, ax = plt.subplots(figsize=(8, 3.2))
        width = 0.8 / len(roles)
        for i, role in enumerate(roles):
            xs, ys, err = [], [], [[], []]
            for j, label in enumerate(labels):
                b = next((b for b in bars if b[0] == label and b[1] == role), None)
                if b:
                    xs.append(j + i * width)
                    ys.append(b[2])
                    err[0].append(b[2] - b[3])
                    err[1].append(b[4] - b[2])
            ax.bar(xs, ys, width, yerr=err, capsize=3, label=role)
        ax.set_xticks([j + width * (len(roles) - 1) / 2 for j in range(len(labels))], labels, fontsize=7)
        ax.set_ylabel("score (95 % CI)")
        ax.legend(fontsize=7)
        charts["evaluation"] = _png(fig)
    for stage, rows in doc["curves"].items():
        series = [k for k in ("loss", "eval_loss", "reward", "kl", "completions/mean_length") if any(k in r for r in rows)]
        if not series:
            continue
        fig, axes = plt.subplots(1, len(series), figsize=(3 * len(series), 2.4), squeeze=False)
        for ax, key in zip(axes[0], series):
            pts = [(r["step"], r[key]) for r in rows if key in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".")
            ax.set_title(f"{stage}: {key}", fontsize=8)
            ax.set_xlabel("step", fontsize=7)
            ax.tick_params(labelsize=7)
        charts[f"curve_{stage}"] = _png(fig)
    return charts


def render_html(doc: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = lambda v, d=3: "—" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
    return env.get_template("audit.html.j2").render(doc=doc, charts=_charts(doc), sections=SECTIONS)


PDF_RENDERERS = ("weasyprint", "chromium")


def _chromium() -> str | None:
    for name in (os.environ.get("HARNESS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _weasyprint_problem() -> str | None:
    """Why WeasyPrint cannot print here (not installed, or the system's Pango is missing), or None."""
    try:
        import weasyprint  # noqa: F401  (loads Pango through cffi: fails here when the library is missing)
    except ImportError:
        return "WeasyPrint is not installed (pip install weasyprint)"
    except OSError as exc:
        return (f"WeasyPrint cannot load the system's Pango library ({str(exc).splitlines()[0][:160]}); "
                "install it with: apt-get install libpango-1.0-0 libpangoft2-1.0-0")
    return None


def pdf_renderer(preferred: str = "weasyprint") -> tuple[str | None, list[str]]:
    """The PDF renderer to use, ``preferred`` first, and a note for each one that is unavailable.

    WeasyPrint is a dependency of the harness (it needs the system's Pango); Chromium is optional and
    used where it is installed and asked for. None when neither can print here.
    """
    if preferred not in PDF_RENDERERS:
        raise HarnessError(f"unknown PDF renderer '{preferred}'", hint=f"use one of: {', '.join(PDF_RENDERERS)}")
    notes = []
    for name in (preferred, *[r for r in PDF_RENDERERS if r != preferred]):
        problem = _weasyprint_problem() if name == "weasyprint" else (
            None if _chromium() else "Chromium is not installed (apt-get install chromium, or set HARNESS_CHROMIUM)")
        if problem is None:
            return name, notes
        notes.append(problem)
    return None, notes


def _weasyprint_pdf(html: Path, tmp: Path) -> None:
    from weasyprint import HTML

    HTML(filename=str(html.resolve()), base_url=str(html.resolve().parent)).write_pdf(str(tmp))


def _chromium_pdf(html: Path, tmp: Path) -> None:
    browser = _chromium()
    if browser is None:
        raise HarnessError("writing audit.pdf with Chromium needs Chromium, which is not installed",
                           hint="apt-get install chromium (or set HARNESS_CHROMIUM), or use the weasyprint renderer")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                               f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180)
        if proc.returncode != 0 or not tmp.is_file():
            raise HarnessError(f"Chromium could not print {html} to PDF: {proc.stderr.strip()[-300:]}")


def write_pdf(html: Path, pdf: Path, renderer: str = "weasyprint") -> Path:
    """Print ``html`` to ``pdf`` (atomically) with ``renderer``: weasyprint or chromium."""
    if renderer not in PDF_RENDERERS:
        raise HarnessError(f"unknown PDF renderer '{renderer}'", hint=f"use one of: {', '.join(PDF_RENDERERS)}")
    tmp = pdf.with_name(f".{pdf.name}.tmp")
    try:
        (_weasyprint_pdf if renderer == "weasyprint" else _chromium_pdf)(html, tmp)
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf


def run(config: CycleConfig, *, pdf: bool | None = None, renderer: str | None = None) -> ReportResult:
    """Write audit.html, audit.json and (with ``pdf``, default ``cycle.pdf``) audit.pdf under
    ``<run>/report/``, printed by ``renderer`` (default ``cycle.pdf_renderer``).

    The PDF is optional output: when no renderer can print here, or printing fails, the HTML and
    JSON are still written, the report says the PDF was skipped and why, and the result carries a
    warning (the cycle shows it in its summary) instead of an error.
    """
    pdf = config.cycle.pdf if pdf is None else pdf
    renderer = renderer or config.cycle.pdf_renderer
    doc = build(config)
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

    def write() -> tuple[Path, Path]:
        report = AuditReport.model_validate(doc)  # the schema in reports/schema.py
        return (atomic_write_text(out / "audit.html", render_html(report.model_dump(mode="json"))),
                write_artifact(out / "audit.json", report))

    html, json_path = write()
    pdf_path = None
    if engine is not None:
        try:
            pdf_path = write_pdf(html, out / "audit.pdf", engine)
        except Exception as exc:  # an optional output: the report stands without it
            reason = exc.message if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            warnings.append(f"audit.pdf was not written: {engine} failed ({reason[:300]})")
            doc["pdf"].update(written=False, skipped=warnings[-1])
            html, json_path = write()
    if pdf_path is None:
        (out / "audit.pdf").unlink(missing_ok=True)  # never leave an older run's PDF beside a newer report
    for warning in warnings:
        _log.warn(warning)
    _log.done(f"audit report for run {config.run.id}: {doc['decision']['status']} — {html}"
              + (f", {pdf_path}" if pdf_path else "") + f", {json_path}")
    return ReportResult(html, pdf_path, json_path, engine if pdf_path else None, tuple(warnings))
