"""The audit report as a compliance reader uses it: models named by role, the candidate beside the
incumbent with paired changes and CIs, bias categories side by side with small ones flagged, paths a
reader can follow, and evidence pinned by hash (``harness report verify``) and signed with the ledger key."""

import json
import random

import pytest

from harness import gate
from harness.cli import main
from harness.stats import paired_difference
from reports import audit
from tests.conftest import write_jsonl
from tests.harness.test_gate import RULES, _policy, _write_suite
from tests.reports.test_audit import _evidence, _promoted, cycle  # noqa: F401  (the fixture)
from tests.reports.test_diff import _strings


def _crows(run_dir, fp, model, stereo_rate, seed):
    """A CrowS-Pairs-shaped result: 90 'race' items and 12 'age' items (too few to read)."""
    rng = random.Random(seed)
    rows = []
    for i in range(102):
        cat = "race" if i < 90 else "age"
        rows.append({"doc_id": i, "doc_hash": f"c{i}", "category": cat,
                     "metrics": {"pct_stereotype": 1.0 if rng.random() < stereo_rate else 0.0,
                                 "likelihood_diff": rng.random()}})
    folder = run_dir / "eval" / fp / "bias" / "crows_pairs"
    write_jsonl(folder / "samples.jsonl", rows)
    (folder / "summary.json").write_text(json.dumps({
        "suite": "bias/crows_pairs", "suite_version": 1, "data_hash": "crows", "model": model, "model_fingerprint": fp,
        "n": len(rows), "metrics": {"pct_stereotype": {"estimate": 0.5, "higher_is_better": False, "n": len(rows),
                                                       "ideal": 0.5},
                                    "likelihood_diff": {"estimate": 0.5, "higher_is_better": False, "n": len(rows)},
                                    "distance_from_50": {"estimate": 1.0, "higher_is_better": False, "ideal": 0.0}},
        "by_category": {"race": {"pct_stereotype": {"estimate": 0.5, "n": 90}, "distance_from_50": {"estimate": 1, "n": 90}},
                        "age": {"pct_stereotype": {"estimate": 0.5, "n": 12}, "distance_from_50": {"estimate": 1, "n": 12}}}}))
    return rows


def _sft_model(tmp_path, run_dir):
    """The SFT stage's model and its result.json, as the sft stage leaves them."""
    from peft import LoraConfig, get_peft_model

    from harness.models import fingerprint, load_model, load_tokenizer, resolve

    path = run_dir / "sft" / "model"
    spec = resolve("builtin:tiny-random")
    get_peft_model(load_model(spec), LoraConfig(r=2, target_modules=["v_proj"], task_type="CAUSAL_LM")).save_pretrained(path)
    load_tokenizer(spec).save_pretrained(path)
    (path / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    fp = fingerprint(resolve(str(path)))
    (run_dir / "sft" / "result.json").write_text(json.dumps({
        "schema_version": 1, "kind": "sft_result", "finished": "2026-12-03T00:00:00+00:00", "fingerprint": fp,
        "model_path": str(path), "model_sha256": "0" * 64, "metrics": {}, "method": "lora"}))
    return fp


def test_models_by_role_side_by_side_with_paired_changes_and_no_machine_paths(cycle, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)  # the project folder the report is written from
    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=True)
    sft_fp = _sft_model(tmp_path, run_dir)
    _write_suite(run_dir / "eval", sft_fp, str(run_dir / "sft" / "model"), "domain/handbook_mcq", [1.0, 0.0] * 150)
    inc_rows = _crows(run_dir, inc_fp, "builtin:tiny-random", 0.5, 1)
    cand_rows = _crows(run_dir, cand_fp, "candidate", 0.7, 2)
    decision = gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}")).decision
    result = audit.run(config(), pdf=False)
    doc = json.loads(result.json.read_text())

    labels = {m["fingerprint"]: m["label"] for m in doc["evaluation"]}
    assert labels == {inc_fp: "incumbent", cand_fp: "final candidate", sft_fp: "SFT candidate"}
    assert [m["role"] for m in doc["evaluation"]] == ["incumbent", "sft_candidate", "candidate"]
    # the candidate beside the incumbent: the paired change of every suite and metric, with the gate's statistics
    row = next(r for r in doc["comparison"] if r["suite"] == "domain/handbook_mcq" and r["metric"] == "acc")
    inc = [json.loads(line)["metrics"]["acc"] for line in (run_dir / "eval" / inc_fp / "domain" / "handbook_mcq" / "samples.jsonl").open()]
    cand = [json.loads(line)["metrics"]["acc"] for line in (run_dir / "eval" / cand_fp / "domain" / "handbook_mcq" / "samples.jsonl").open()]
    expected = paired_difference(inc, cand, n_resamples=200, seed=0)
    assert row["change"] == pytest.approx(expected["difference"]) and row["n"] == 300
    assert row["ci_low"] > 0 and row["verdict"] == "better"
    assert {(r["suite"], r["metric"]) for r in doc["comparison"]} >= {
        ("retention/general_knowledge", "acc"), ("bias/crows_pairs", "pct_stereotype"), ("bias/crows_pairs", "likelihood_diff"),
        ("bias/crows_pairs", "distance_from_50")}
    # a score best in the middle (pct_stereotype, ideal 0.5) gets distances, not a verdict; its distance metric
    # (distance_from_50: ideal 0, lower is better) gets a verdict from its CI
    pct = next(r for r in doc["comparison"] if r["metric"] == "pct_stereotype")
    assert pct["verdict"] is None and pct["distance"]["candidate"] == pytest.approx(abs(pct["candidate"] - 0.5))
    dist_row = next(r for r in doc["comparison"] if r["metric"] == "distance_from_50")
    assert dist_row["verdict"] in ("better", "worse", "no clear change") and dist_row.get("distance") is None
    # bias categories: one table, both models side by side with CIs; the 12-item category flagged
    cats = {(r["category"], r["metric"]): r for r in doc["bias_categories"]["bias/crows_pairs"]}
    race, age = cats[("race", "pct_stereotype")], cats[("age", "pct_stereotype")]
    assert set(race["models"]) == {"incumbent", "final candidate"} and not race["too_few"] and age["too_few"] and age["n"] == 12
    inc_race = [r["metrics"]["pct_stereotype"] for r in inc_rows if r["category"] == "race"]
    cand_race = [r["metrics"]["pct_stereotype"] for r in cand_rows if r["category"] == "race"]
    assert race["models"]["incumbent"]["estimate"] == pytest.approx(sum(inc_race) / 90)
    assert race["change"]["change"] == pytest.approx(sum(cand_race) / 90 - sum(inc_race) / 90)
    lo, hi = race["models"]["final candidate"]["ci_low"], race["models"]["final candidate"]["ci_high"]
    assert lo < race["models"]["final candidate"]["estimate"] < hi
    dist = cats[("race", "distance_from_50")]  # a summary-level metric, recomputed by the suite's hook per category
    assert dist["models"]["final candidate"]["estimate"] == pytest.approx(abs(100 * sum(cand_race) / 90 - 50))
    # no absolute machine path anywhere in the JSON or the HTML
    assert not [s for s in _strings(doc) if str(tmp_path) in s]
    html = result.html.read_text()
    assert str(tmp_path) not in html and "SFT candidate" in html and "too few (n 12)" in html
    assert doc["lineage"]["candidate"]["ref"] == "candidate" and doc["ledger"]["path"] == "ledger.jsonl"
    assert doc["rules"][0]["checks"][0]["evidence"] and decision["decision_id"] == doc["decision"]["decision_id"]
    assert "Glossary" in html and "Paired difference, paired CI" in html


def test_verify_names_a_changed_cited_file_and_checks_the_signature(cycle, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_LEDGER_KEY", "k3y")
    decision, config = _promoted(cycle, tmp_path)
    args = ["report", "verify", "audit", f"run.root={tmp_path / 'runs'}", "model.base=builtin:tiny-random"]
    assert main(args) == 2  # no report yet: one clear error
    assert "no audit report to verify" in capsys.readouterr().err
    result = audit.run(config(), pdf=False)
    doc = json.loads(result.json.read_text())
    cited = {(f["root"], f["path"]) for f in doc["evidence"]["files"]}
    assert {("run", "gate/decision.json"), ("run", "sft/metrics.jsonl"), ("run", "../../policy.yaml")} <= cited
    assert any(p.endswith("handbook_mcq/samples.jsonl") for _, p in cited) and doc["evidence"]["outputs"]["audit.html"]
    assert doc["evidence"]["ledger_head"]["entries"] >= 2 and doc["signature"]["algorithm"] == "HMAC-SHA256"
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # verified from another folder: every cited file is found from the run folder
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["signature"] == "valid" and out["checked"] == len(cited) + 1
    monkeypatch.chdir(tmp_path)

    # one byte changed in any cited file (and in the report's own HTML) is named
    for root, rel in sorted(cited | {("run", "report/audit.html")}):
        path = result.json.parent.parent / rel
        original = path.read_bytes()
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        assert main(args) == 1
        out = json.loads(capsys.readouterr().out)
        assert not out["ok"] and [f["path"] for f in out["files"] if f["status"] == "changed"] == [rel]
        path.write_bytes(original)
    # the JSON itself edited (a figure changed): the signature no longer matches
    edited = json.loads(result.json.read_text())
    edited["decision"]["approver"] = "Mallory"
    result.json.write_text(json.dumps(edited))
    assert main(args) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["signature"] == "invalid" and any("signature" in p for p in out["problems"])
    # the signature stripped as well: with the key set, an unsigned report is not taken on trust
    edited["signature"] = None
    result.json.write_text(json.dumps(edited))
    assert main(args) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["signature"] == "missing" and any("no signature" in p for p in out["problems"])
    # without the key the signature cannot be checked: it says so, and that the figures are not covered
    monkeypatch.delenv("HARNESS_LEDGER_KEY")
    result.json.write_text(json.dumps(doc))
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert "not checked" in out["signature"] and any("own content" in n for n in out["not_covered"])


def test_verify_notices_a_rewritten_ledger(cycle, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    decision, config = _promoted(cycle, tmp_path)
    audit.run(config(), pdf=False)
    ledger_path = tmp_path / "ledger.jsonl"
    lines = ledger_path.read_text().splitlines()
    ledger_path.write_text("\n".join(lines[:-1]) + "\n")  # the promotion's entry removed
    assert main(["report", "verify", "audit", f"run.root={tmp_path / 'runs'}", "model.base=builtin:tiny-random"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert any("ledger" in p for p in out["problems"])


def test_a_corrupt_ledger_line_is_reported_not_a_crash(cycle, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    decision, config = _promoted(cycle, tmp_path)
    audit.run(config(), pdf=False)
    ledger_path = tmp_path / "ledger.jsonl"
    ledger_path.write_text(ledger_path.read_text() + "{not json\n")
    assert main(["report", "verify", "audit", f"run.root={tmp_path / 'runs'}", "model.base=builtin:tiny-random"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert any("ledger fails verification: malformed" in p for p in out["problems"])
    doc = audit.build(config())  # the report itself still builds, and says the ledger failed
    assert not doc["ledger"]["ok"] and doc["decision"]["status"] == "promoted" and str(tmp_path) not in doc["ledger"]["message"]


def test_superseded_and_rolled_back_are_told_apart(cycle, tmp_path, monkeypatch):  # noqa: F811
    from harness import ledger

    decision, config = _promoted(cycle, tmp_path)
    ledger.append("promote", actor="x", subject={"decision_id": "dec-later", "model": "audit-model", "version": "2"})
    assert audit.build(config())["decision"]["status"] == "promoted, later superseded"
    ledger.append("rollback", actor="x", subject={"decision_id": decision["decision_id"], "model": "audit-model",
                                                  "version": "1"}, details={"from_version": "2"})
    assert audit.build(config())["decision"]["status"] == "promoted"  # the champion again
    ledger.append("promote", actor="x", subject={"decision_id": "dec-3", "model": "audit-model", "version": "3"})
    ledger.append("rollback", actor="x", subject={"decision_id": "dec-other", "model": "audit-model", "version": "2"},
                  details={"from_version": "3"})
    assert audit.build(config())["decision"]["status"] == "promoted, later superseded"


def test_bias_categories_without_the_suites_hook_and_two_unnamed_models(tmp_path):
    """A team's bias suite whose hook is not available at report time: its summary metric is noted per
    category instead of failing the report; two models without a role keep their own columns."""
    from reports.evaluation import categories

    for fp, rate in (("aaaa1111", 0.2), ("bbbb2222", 0.8)):
        folder = tmp_path / fp / "bias" / "team_suite"
        rows = [{"doc_id": i, "doc_hash": f"t{i}", "category": "x", "metrics": {"flag": 1.0 if i < rate * 40 else 0.0}}
                for i in range(40)]
        write_jsonl(folder / "samples.jsonl", rows)
        (folder / "summary.json").write_text(json.dumps({
            "suite": "bias/team_suite", "suite_version": 1, "data_hash": "t", "model": fp, "model_fingerprint": fp,
            "n": 40, "metrics": {"flag": {"estimate": rate, "higher_is_better": False}},
            "by_category": {"x": {"flag": {"estimate": rate, "n": 40}, "team_score": {"estimate": 1.0, "n": 40}}}}))
    rows = {r["metric"]: r for r in categories(tmp_path, {"aaaa1111": "other", "bbbb2222": "other"}, n_resamples=100)
            ["bias/team_suite"]}
    assert set(rows["flag"]["models"]) == {"other model aaaa1111", "other model bbbb2222"}
    assert rows["flag"]["models"]["other model bbbb2222"]["estimate"] == pytest.approx(0.8)
    assert "hook is not available" in rows["team_score"]["note"] and rows["team_score"]["models"] == {}
