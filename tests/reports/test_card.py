"""The model card of a promoted version (reports/card.py): a Hugging Face README.md whose model-index holds
the candidate's results as audit.json has them, stored with the version in MLflow, written by
'harness card VERSION' and by the cycle's report stage when (and only when) the candidate was promoted."""

import json
import shutil

import pytest
from huggingface_hub import ModelCard

from harness import gate, registry
from harness.artifacts import sha256_file
from harness.errors import HarnessError
from harness.stage import StageContext
from reports import audit, card
from reports.stages import REPORT
from tests.harness.test_gate import RULES, _policy
from tests.reports import test_audit
from tests.reports.test_audit import _evidence, _promoted

cycle = test_audit.cycle  # the fixture: a run with evidence, a decision, a temporary MLflow store and ledger


def _candidate_results(doc):
    cand = next(m for m in doc["evaluation"] if m["role"] == "candidate")
    return sorted((card.TASK, suite, metric, m["estimate"])
                  for suite, s in cand["suites"].items() for metric, m in s["metrics"].items())


def _card_results(path):
    loaded = ModelCard.load(path)
    return loaded, sorted((r.task_type, r.dataset_type, r.metric_type, r.metric_value) for r in loaded.data.eval_results)


def test_card_of_a_promoted_version_parses_back_and_is_stored_with_the_version(cycle, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    decision, config = _promoted(cycle, tmp_path)
    run_dir = cycle[0]
    assert not (run_dir / "report" / "audit.json").exists()
    result = card.run(config(), "1")  # no audit report yet: the card writes it first

    audit_json = run_dir / "report" / "audit.json"
    doc = json.loads(audit_json.read_text())
    assert doc["decision"]["decision_id"] == decision["decision_id"]
    assert result.path == run_dir / "report" / "model_card" / "README.md"
    text = result.path.read_text()
    assert text.startswith("---\n") and "model-index:" in text
    loaded, results = _card_results(result.path)
    assert results == _candidate_results(doc) and len(results) == 2
    assert loaded.data.model_name == "audit-model v1" and loaded.data.pipeline_tag == "text-generation"
    assert loaded.data.base_model is None  # builtin:tiny-random is no Hub id
    meta = loaded.data.to_dict()["harness"]
    assert meta["decision_id"] == decision["decision_id"] and meta["approver"] == "Ana Lima"
    assert meta["simulated_reviews"] is True and meta["run_id"] == "audit"

    body = " ".join(loaded.text.split())
    assert decision["decision_id"] in body and "Policy: test v1" in body and "Approver: Ana Lima" in body
    assert "Win rate vs the incumbent: 0.700 (95% CI 0.600 to 0.800), n=60" in body
    assert "Unsafe rate: 0.000 (95% CI 0.000 to 0.050), n=60" in body
    assert "Reviews were simulated" in body and "Simulated reviews: yes" in body
    # Limitations come from the evidence: simulated reviews, 60 reviewed pairs, no bias suite, no data card.
    lims = card.limitations(doc)
    assert any(x.startswith("Reviews were simulated") for x in lims)
    assert any("Few reviewed pairs (n=60" in x for x in lims)
    assert any("No bias suite" in x for x in lims) and any("no data card" in x for x in lims)
    assert any("Agreement between reviewers was not measured" in x for x in lims)  # the fixture has none
    assert not any("Small evaluation samples" in x for x in lims)  # 300 items per suite
    assert not any("signed off" in x for x in lims)  # Ana Lima did
    for x in lims:
        assert x in body
    assert str(tmp_path) not in text  # no machine paths

    # Stored with the version: an artifact of its MLflow run, named by the version's tags.
    client = MlflowClient()
    version = client.get_model_version("audit-model", "1")
    assert version.tags[card.TAG] == result.artifact_uri == f"runs:/{version.run_id}/model_card/README.md"
    assert version.tags[f"{card.TAG}_sha256"] == sha256_file(result.path)
    back = mlflow.artifacts.download_artifacts(artifact_uri=result.artifact_uri, dst_path=str(tmp_path / "dl"))
    assert open(back, encoding="utf-8").read() == text


def test_card_rewrites_an_audit_report_that_still_calls_a_former_champion_promoted(cycle, tmp_path, capsys):
    from harness import ledger

    decision, config = _promoted(cycle, tmp_path)
    card.run(config(), "1")
    assert "writing the audit report of run 'audit' (there is none yet)" in " ".join(capsys.readouterr().err.split())
    ledger.append("promote", actor="x", subject={"decision_id": "dec-other", "model": "audit-model", "version": "9"})
    # The registry still calls v1 the champion: audit.json is taken as it is, silently.
    assert card._audit_doc(config(), decision["decision_id"], champion=True)[0]["decision"]["status"] == "promoted"
    assert "writing the audit report" not in capsys.readouterr().err
    doc, path = card._audit_doc(config(), decision["decision_id"], champion=False)
    err = " ".join(capsys.readouterr().err.split())
    assert "writing the audit report of run 'audit' (the one there calls the version the champion, which the " \
           "registry no longer does)" in err
    # A later promotion replaced v1: superseded, not rolled back.
    assert doc["decision"]["status"] == "promoted, later superseded"
    assert json.loads(path.read_text())["decision"]["status"] == "promoted, later superseded"
    lims = card.limitations(doc)
    assert any(x.startswith("Status: promoted, later superseded: a later promotion replaced") for x in lims)
    assert not any("rolled back" in x for x in lims)


def test_card_words_a_rollback_and_a_supersession_apart(cycle, tmp_path):
    decision, config = _promoted(cycle, tmp_path)
    doc = audit.build(config())
    assert not any(x.startswith("Status:") for x in card.limitations(doc))  # the champion
    doc["decision"]["status"] = "promoted, later rolled back"
    [status] = [x for x in card.limitations(doc) if x.startswith("Status:")]
    assert status == "Status: promoted, later rolled back: a rollback moved the champion away from this version."
    doc["decision"]["status"] = "promoted, later superseded"
    [status] = [x for x in card.limitations(doc) if x.startswith("Status:")]
    assert "later promotion replaced this version" in status and "rolled back" not in status


def _bias(estimate, low, high, ideal=None, hib=False):
    return {"estimate": estimate, "ci_low": low, "ci_high": high, "n": 400, "higher_is_better": hib, "ideal": ideal}


def test_card_flags_bias_against_each_metrics_ideal_on_its_own_scale(cycle, tmp_path):
    decision, config = _promoted(cycle, tmp_path)
    summary = next((cycle[0] / "eval" / cycle[1]).glob("*/*/summary.json"))
    written = json.loads(summary.read_text())
    written["metrics"]["acc"]["ideal"] = 0.25  # what harness eval records for a metric with an ideal
    summary.write_text(json.dumps(written))
    doc = audit.build(config())
    cand = next(m for m in doc["evaluation"] if m["role"] == "candidate")
    assert cand["suites"][written["suite"]]["metrics"]["acc"]["ideal"] == 0.25  # the audit report keeps it
    suites = {
        "bias/winobias": {"gap": _bias(0.12, 0.05, 0.19, 0.0), "distance_from_parity": _bias(12.0, 5.0, 19.0, 0.0),
                          "acc": _bias(0.7, 0.65, 0.75, hib=True)},
        "bias/stereoset": {"ss": _bias(58.0, 52.0, 64.0, 50.0), "lms": _bias(80.0, 75.0, 85.0, hib=True),
                           "ss_item": _bias(0.58, 0.52, 0.64, 0.5)},
        "bias/crows_pairs": {"pct_stereotype": _bias(0.52, 0.47, 0.57, 0.5),
                             "distance_from_50": _bias(0.6, 0.0, 0.95, 0.0)},
    }
    for suite, metrics in suites.items():
        cand["suites"][suite] = {"suite_version": 2, "n": 400, "metrics": metrics, "by_category": {}}
    lims = card.limitations(doc)
    flagged = sorted(x.split(" (95% CI")[0].removeprefix("Measured bias: ").rsplit(" ", 1)[0]
                     for x in lims if x.startswith("Measured bias"))
    # gap's CI excludes 0, ss's excludes 50, ss_item's 0.5; pct_stereotype's holds 0.5; distances are left out.
    assert flagged == ["bias/stereoset ss", "bias/stereoset ss_item", "bias/winobias gap"]
    assert "Measured bias: bias/stereoset ss 58.000 (95% CI 52.000 to 64.000), n=400 excludes 50 (no bias)." in lims
    # Intervals in points are judged on 0-100 (ss spans 12 points; the distance 0.95 points), not as 0-1 shares.
    assert not any(x.startswith("Wide 95% intervals") for x in lims)
    suites["bias/stereoset"]["ss"] = _bias(58.0, 40.0, 66.0, 50.0)
    suites["bias/crows_pairs"]["pct_stereotype"] = _bias(0.52, 0.35, 0.69, 0.5)
    assert "Wide 95% intervals (over 0.2 of a 0-1 scale, 20 points of a 0-100 one): bias/crows_pairs " \
           "pct_stereotype, bias/stereoset ss." in card.limitations(doc)


def test_card_of_a_version_whose_mlflow_run_is_gone_is_one_clear_error(cycle, tmp_path, capsys):
    import subprocess
    import sys

    from mlflow import MlflowClient

    from harness.cli import main

    _promoted(cycle, tmp_path)
    args = [f"run.root={tmp_path / 'runs'}", "model.base=builtin:tiny-random", "registry.model_name=audit-model"]
    client = MlflowClient()
    run_id = client.get_model_version("audit-model", "1").run_id
    client.delete_run(run_id)
    assert main(["card", "1", *args]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"its MLflow run {run_id} was deleted" in err and "'mlflow runs restore' with the run id" in err
    assert "Traceback" not in err
    # Removed for good ('mlflow gc'): MLflow's own error, as one HarnessError.
    uri = client.tracking_uri
    subprocess.run([sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", uri], check=True, capture_output=True)
    assert main(["card", "1", *args]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "audit-model v1: MLflow refused" in err and run_id in err and "Traceback" not in err


def test_card_shows_bias_and_derives_limitations_from_the_evidence(cycle, tmp_path):
    decision, config = _promoted(cycle, tmp_path)
    doc = audit.build(config())
    cand = next(m for m in doc["evaluation"] if m["role"] == "candidate")
    cand["suites"]["bias/bbq"] = {
        "suite_version": 2, "n": 60, "license": "CC BY 4.0", "source": None, "by_category": {
            "age": {"acc": {"estimate": 0.5}}, "gender": {"acc": {"estimate": 0.75}}},
        "metrics": {"acc": {"estimate": 0.6, "ci_low": 0.35, "ci_high": 0.85, "n": 60, "higher_is_better": True},
                    "disamb_bias_score": {"estimate": 0.2, "ci_low": 0.1, "ci_high": 0.28, "n": 60,
                                          "higher_is_better": False},
                    "amb_bias_score": {"estimate": float("nan"), "ci_low": None, "ci_high": None, "n": 60}}}
    doc["reward_model"] = {"quality": {"trusted": False, "why": "accuracy 0.52 does not beat the length baseline 0.55"},
                           "online_check": {"trusted": False, "overridden": True}}
    doc["decision"]["approver"] = None
    doc["reviewers"]["agreement"]["krippendorff_alpha_preference_nominal"] = 0.41
    doc["evaluation"].append({"role": "sft_candidate", "fingerprint": "f" * 16, "model": "sft/adapter", "suites": {
        "domain/handbook_mcq": {"metrics": {"acc": {"estimate": 0.5, "ci_low": 0.45, "ci_high": 0.55, "n": 300}}}}})
    lims = card.limitations(doc)
    assert "Small evaluation samples (under 100 items): bias/bbq (n=60)." in lims
    assert "Wide 95% intervals (over 0.2 of a 0-1 scale, 20 points of a 0-100 one): bias/bbq acc." in lims
    assert any(x.startswith("Measured bias: bias/bbq disamb_bias_score 0.200") for x in lims)
    assert not any("bbq amb_bias_score" in x for x in lims)  # undefined: no claim
    assert any("reward model was not trusted: accuracy 0.52" in x for x in lims)
    assert any("untrusted reward model" in x for x in lims) and "No named person signed off the promotion." in lims
    assert not any("No bias suite" in x for x in lims)
    assert "Reviewers agreed little (Krippendorff's alpha 0.41, under 0.667)." in lims

    path = tmp_path / "card" / "README.md"
    path.parent.mkdir()
    path.write_text(str(card.build_card(doc, "audit-model", "1", run_dir=cycle[0])))
    loaded, results = _card_results(path)
    # NaN estimates stay out of the model-index; every finite one is there.
    assert results == [r for r in _candidate_results(doc) if r[2] != "amb_bias_score"]
    body = " ".join(loaded.text.split())
    assert "| suite | metric | this version | incumbent | sft candidate |" in loaded.text
    assert "| domain/handbook_mcq | acc | 0.577" in loaded.text and "n=300 | 0.500 (95% CI 0.450 to 0.550), n=300 |" in loaded.text
    assert "**bias/bbq** (v2)" in body and "| gender | 0.750 |" in body and "amb_bias_score n/a" in body


def test_card_command_errors_and_output_folder(cycle, tmp_path, capsys):
    from harness.cli import main

    decision, config = _promoted(cycle, tmp_path)
    args = [f"run.root={tmp_path / 'runs'}", "model.base=builtin:tiny-random", "registry.model_name=audit-model"]
    assert main(["card", "99", *args]) == 2
    err = capsys.readouterr().err
    assert "audit-model has no version 99 (versions: 1)" in err and "Traceback" not in err

    out = tmp_path / "cards"
    assert main(["card", "1", "--output", str(out), *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["card"] == str(out / "README.md") and printed["version"] == "1"
    assert ModelCard.load(out / "README.md").data.model_name == "audit-model v1"

    shutil.rmtree(cycle[0])
    assert main(["card", "1", *args]) == 2
    err = capsys.readouterr().err
    assert "came from run 'audit'" in err and "is gone" in err
    with pytest.raises(HarnessError, match="no version 7"):
        card.run(config(), "7")


def _report_stage(config):
    cfg = config()
    ctx = StageContext(cfg, cfg.layout(), "builtin:tiny-random", ["gate", "promote", "report"], {})
    return REPORT.run(ctx, None)


def test_report_stage_writes_the_card_when_promoted(cycle, tmp_path):
    decision, config = _promoted(cycle, tmp_path)
    result = _report_stage(lambda: config("cycle.pdf=false"))
    path = cycle[0] / "report" / "model_card" / "README.md"
    assert result.outputs["model_card"] == str(path) and str(path) in result.artifacts
    doc = json.loads((cycle[0] / "report" / "audit.json").read_text())
    assert _card_results(path)[1] == _candidate_results(doc)
    assert registry.show_version(config(), "1")["decision_id"] == decision["decision_id"]


def test_report_stage_writes_no_card_when_rejected(cycle, tmp_path):
    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=False)
    assert not gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}")).decision["passed"]
    result = _report_stage(lambda: config("cycle.pdf=false"))
    assert (run_dir / "report" / "audit.json").is_file() and "model_card" not in result.outputs
    assert not (run_dir / "report" / "model_card").exists()
