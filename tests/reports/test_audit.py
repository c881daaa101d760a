"""The audit report of a promoted and of a rejected candidate: PDF text (WeasyPrint, no browser; Chromium where
installed), the HTML in Chromium, the JSON schema, and what happens when no PDF renderer is there."""

import json
import os
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from harness import gate, registry
from harness.config import load_config
from harness.models import fingerprint, resolve
from reports import audit
from tests.conftest import write_jsonl
from tests.harness.test_gate import RULES, _binary, _feedback, _policy, _write_suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _need_browser():
    if CHROMIUM is None:
        if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture
def cycle(tmp_path, monkeypatch, tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    from harness.models import load_model, load_tokenizer

    monkeypatch.setenv("HARNESS_LEDGER", str(tmp_path / "ledger.jsonl"))
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    cand = tmp_path / "candidate"
    spec = resolve("builtin:tiny-random")
    get_peft_model(load_model(spec), LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(cand)
    load_tokenizer(spec).save_pretrained(cand)
    (cand / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    run_dir = tmp_path / "runs" / "audit"
    cand_fp, inc_fp = fingerprint(resolve(str(cand))), fingerprint(spec)
    write_jsonl(run_dir / "sft" / "metrics.jsonl", [{"stage": "sft", "step": s, "loss": 3.0 / s} for s in range(1, 6)])

    def config(*extra):
        return load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=audit",
                                  f"gate.candidate={cand}", "registry.model_name=audit-model", *extra])
    return run_dir, cand_fp, inc_fp, config


def _evidence(run_dir, cand_fp, inc_fp, gain):
    base = _binary(0.4, 300, 0)
    better = [1.0 if v or (gain and i % 3 == 0) else 0.0 for i, v in enumerate(base)]
    _write_suite(run_dir / "eval", inc_fp, "builtin:tiny-random", "domain/handbook_mcq", base)
    _write_suite(run_dir / "eval", cand_fp, "candidate", "domain/handbook_mcq", better)
    gk = _binary(0.6, 300, 1)
    _write_suite(run_dir / "eval", inc_fp, "builtin:tiny-random", "retention/general_knowledge", gk)
    _write_suite(run_dir / "eval", cand_fp, "candidate", "retention/general_knowledge",
                 [1.0 - v if i in (3, 4, 7) else v for i, v in enumerate(gk)])  # a few answers change
    _feedback(run_dir, cand_fp, inc_fp)
    for path in (run_dir / "eval").glob("*/*/*/summary.json"):  # what harness eval adds: CIs per metric
        summary = json.loads(path.read_text())
        for m in summary["metrics"].values():
            m.update(ci_low=m["estimate"] - 0.05, ci_high=m["estimate"] + 0.05, n=summary["n"])
        path.write_text(json.dumps(summary))


def _promoted(cycle, tmp_path):
    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=True)
    policy = _policy(tmp_path, RULES, signoff=True)
    decision = gate.run(config(f"gate.policy={policy}")).decision
    assert decision["passed"]
    registry.promote(config(), decision["decision_id"], "Ana Lima")
    return decision, config


def _pdf_pages(path):
    from pypdf import PdfReader

    return [" ".join(page.extract_text().split()) for page in PdfReader(str(path)).pages]


def _no_browser(monkeypatch, tmp_path):
    """No Chromium on PATH, as on a fresh machine."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("HARNESS_CHROMIUM", raising=False)


def test_report_of_a_promoted_candidate_has_a_pdf_without_a_browser(cycle, tmp_path, monkeypatch):
    decision, config = _promoted(cycle, tmp_path)
    _no_browser(monkeypatch, tmp_path)
    result = audit.run(config())

    doc = json.loads(result.json.read_text())
    jsonschema.validate(doc, json.loads(audit.SCHEMA_PATH.read_text()))
    assert doc["decision"]["status"] == "promoted" and doc["decision"]["approver"] == "Ana Lima"
    assert {m["role"] for m in doc["evaluation"]} == {"candidate", "incumbent"}
    assert doc["ledger"]["ok"] and doc["curves"]["sft"][0]["loss"] == 3.0
    assert doc["pdf"] == {"requested": True, "renderer": "weasyprint", "written": True, "skipped": None}
    assert result.pdf_renderer == "weasyprint" and result.warnings == ()
    html = result.html.read_text()
    assert "<link" not in html and 'src="http' not in html and "data:image/png;base64," in html  # opens offline

    pages = _pdf_pages(result.pdf)
    # The decision, in plain words, on the first page; every section somewhere.
    assert "Decision" in pages[0] and "Promoted." in pages[0] and decision["decision_id"] in pages[0]
    assert "signed off by Ana Lima" in pages[0] and "PDF printed by weasyprint" in pages[0]
    # The reviews were scripted: the first lines say so, before the decision.
    assert doc["decision"]["simulated_reviews"] and pages[0].index("Reviews were simulated") < pages[0].index("Promoted.")
    text = " ".join(pages)
    for section in audit.SECTIONS:
        assert section in text, section
    from pypdf import PdfReader

    reader = PdfReader(str(result.pdf))
    catalog = reader.trailer["/Root"]
    # a tagged PDF (PDF/UA-1): structure for screen readers, the document's language, its title shown
    assert "/StructTreeRoot" in catalog and catalog["/MarkInfo"]["/Marked"] and catalog["/Lang"] == "en"
    images = sum(len(page.images) for page in PdfReader(str(result.pdf)).pages)
    assert images >= 2  # the evaluation chart and the SFT curve
    # After a later promotion replaced it, the report says so.
    from harness import ledger

    ledger.append("promote", actor="x", subject={"decision_id": "dec-other", "model": "audit-model", "version": "9"})
    assert audit.build(config())["decision"]["status"] == "promoted, later superseded"


def test_report_page_in_chromium_and_its_chromium_pdf(cycle, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    decision, config = _promoted(cycle, tmp_path)
    result = audit.run(config("cycle.pdf_renderer=chromium"))
    assert result.pdf_renderer == "chromium"
    shot = tmp_path / "audit.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto(result.html.resolve().as_uri())
        for section in audit.SECTIONS:
            heading = page.get_by_role("heading", name=section, exact=True)
            heading.scroll_into_view_if_needed()
            assert heading.is_visible(), section
        assert page.get_by_text("Promoted.", exact=False).first.is_visible()
        for chart in ("Bar chart: each model's score", "Forest plot: the final candidate's change",
                      "Training curves of the sft stage"):
            assert page.locator(f'img[alt^="{chart}"]').evaluate("img => img.naturalWidth") > 100, chart
        # accessibility (axe-core in the browser): no serious or critical violation
        from axe_playwright_python.sync_playwright import Axe

        violations = Axe().run(page).response["violations"]
        serious = [f"{v['id']}: {v['help']} ({len(v['nodes'])}x)" for v in violations if v["impact"] in ("serious", "critical")]
        assert not serious, serious
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 50_000
    pages = _pdf_pages(result.pdf)
    assert "Promoted." in pages[0] and "PDF printed by chromium" in pages[0]
    text = " ".join(pages)
    for section in audit.SECTIONS:
        assert section in text, section
    assert "Ana Lima" in text and decision["decision_id"] in text
    # Identifiers and words copy out of the PDF as typed: no "ff"/"fi" ligature glyphs
    # (a decision id with "ff" in it must be searchable in the PDF an auditor holds).
    assert "signed off by Ana Lima" in pages[0]
    assert not re.search("[\ufb00-\ufb06]", text), "ligature glyphs in the PDF text"


def test_no_pdf_renderer_is_a_warning_and_the_report_says_what_was_skipped(cycle, tmp_path, monkeypatch):
    import sys

    decision, config = _promoted(cycle, tmp_path)
    out = tmp_path / "runs" / "audit" / "report"
    out.mkdir(parents=True)
    (out / "audit.pdf").write_bytes(b"%PDF-1.4 an older report")
    _no_browser(monkeypatch, tmp_path)
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # WeasyPrint not importable here
    for renderer in ("weasyprint", "chromium"):
        result = audit.run(config(f"cycle.pdf_renderer={renderer}"))
        assert result.pdf is None and not (out / "audit.pdf").exists()  # no stale PDF beside the new report
        assert len(result.warnings) == 1 and "WeasyPrint is not installed" in result.warnings[0]
        assert "Chromium is not installed" in result.warnings[0]
        doc = json.loads(result.json.read_text())
        assert doc["pdf"]["written"] is False and doc["pdf"]["skipped"] == result.warnings[0]
        html = result.html.read_text()
        assert "PDF skipped" in html and "WeasyPrint is not installed" in html and "Promoted." in html


def test_a_missing_pango_is_a_warning_from_the_cli(cycle, tmp_path):
    """WeasyPrint installed but the system's Pango missing (what cffi raises then): exit 0, HTML and JSON."""
    import os
    import subprocess
    import sys

    decision, config = _promoted(cycle, tmp_path)
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "weasyprint.py").write_text(
        "raise OSError(\"cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file\")\n")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "PATH": str(empty)}
    env.pop("HARNESS_CHROMIUM", None)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", "audit", f"run.root={tmp_path / 'runs'}",
                           "model.base=builtin:tiny-random", "registry.model_name=audit-model"],
                          env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "audit.pdf was not written" in proc.stderr
    assert "apt-get install libpango" in proc.stderr
    assert json.loads(proc.stdout[proc.stdout.index("{"):])["pdf"] is None
    doc = json.loads((tmp_path / "runs" / "audit" / "report" / "audit.json").read_text())
    assert "Pango" in doc["pdf"]["skipped"]


def test_report_of_a_rejected_candidate_without_pdf(cycle, tmp_path):
    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=False)
    decision = gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}")).decision
    assert not decision["passed"]
    result = audit.run(config(), pdf=False)
    doc = json.loads(result.json.read_text())
    assert result.pdf is None and doc["decision"]["status"] == "rejected"
    assert doc["decision"]["failed_rules"] == ["domain"] and "domain" in doc["decision"]["plain"]
    assert "Rejected." in result.html.read_text()


def test_report_needs_a_decision(tmp_path, capsys):
    from harness.cli import main

    (tmp_path / "r").mkdir()
    assert main(["report", "r", f"run.root={tmp_path}", "--no-pdf"]) == 2
    assert "no gate decision" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report").exists()


def test_report_breaks_reviews_down_by_aspect_and_shows_the_labeling_rounds(cycle, tmp_path):
    from harness.schemas import LabelingRounds, write_artifact

    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=False)
    summary_path = run_dir / "feedback" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["aspects"] = {"concise": {"candidate_better": 30, "incumbent_better": 5, "same": 25,
                                      "win_rate": {"estimate": 0.71, "ci_low": 0.62, "ci_high": 0.80, "n": 60}},
                          "facts": {"candidate_better": 9, "incumbent_better": 11, "same": 40,
                                    "win_rate": {"estimate": 0.48, "ci_low": 0.40, "ci_high": 0.57, "n": 60}}}
    summary_path.write_text(json.dumps(summary))
    write_artifact(run_dir / "feedback" / "rounds.json", LabelingRounds(
        created="2026-12-02T00:00:00+00:00", select="uncertainty", budget=60, pool_pairs=900, planned=[30, 30],
        ensemble=5, rounds=[{"round": 1, "strategy": "random (seed round)", "pairs_sent": 30, "labeled_pairs_before": 0},
                            {"round": 2, "strategy": "uncertainty", "pairs_sent": 30, "labeled_pairs_before": 21,
                             "picked_mean_p": 0.53, "picked_member_spread": 0.08}]))
    gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}"))
    result = audit.run(config(), pdf=False)
    doc = json.loads(result.json.read_text())
    jsonschema.validate(doc, json.loads(audit.SCHEMA_PATH.read_text()))
    assert doc["reviewers"]["summary"]["aspects"]["concise"]["win_rate"]["estimate"] == 0.71
    assert doc["reviewers"]["rounds"]["select"] == "uncertainty"
    html = " ".join(result.html.read_text().split())
    assert "by rubric aspect" in html and "<td>concise</td><td>30</td><td>5</td><td>25</td>" in html
    assert "chosen by <b>uncertainty</b>" in html and "<td>2</td><td>uncertainty</td><td>30</td><td>21</td>" in html


def test_report_says_how_the_reward_model_was_measured(cycle, tmp_path):
    """A cross-fitted trust report is labelled as such, with every pair counted; a held-out one as held-out."""
    from harness.schemas import TrainingResult, write_artifact
    from rlhf.reward_quality import quality_report
    from tests.rlhf.conftest import preference_rows

    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=False)
    gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}"))
    pairs = preference_rows(60)
    chosen, rejected = [1.0 if i % 4 else -1.0 for i in range(60)], [0.0] * 60
    for folds, header in ((5, "Pairs (60), cross-fitted over 5 folds of the prompts"), (0, "Held-out pairs (60)")):
        write_artifact(run_dir / "reward" / "result.json", TrainingResult(
            kind="reward_result", finished="2026-12-03T00:00:00+00:00", fingerprint="f", model_path="m", model_sha256="s",
            metrics={"quality": quality_report(pairs, chosen, rejected, folds=folds, n_resamples=200)}))
        result = audit.run(config(), pdf=False)
        doc = json.loads(result.json.read_text())
        jsonschema.validate(doc, json.loads(audit.SCHEMA_PATH.read_text()))
        assert doc["reward_model"]["quality"]["estimate"]["folds"] == folds
        html = " ".join(result.html.read_text().split())
        assert header in html
        assert ("cross-fitted (5 folds) accuracy 0.75" in html) == bool(folds)
