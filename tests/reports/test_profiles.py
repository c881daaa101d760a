"""Regulatory mapping profiles (reports/profiles): every shipped evidence path exists in the audit report's
model; a report written with --profile lists every item with its status (HTML, JSON, PDF); absent evidence is
"missing"; bad profile names and files are one clear error, exit code 2."""

from __future__ import annotations

import json
import types
import typing
from fnmatch import fnmatchcase
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from reports import audit, profiles
from reports.schema import AuditReport
from tests.reports.test_audit import _promoted, cycle  # noqa: F401  (the fixture)

ANNEX_IV = ["1", "2(a)", "2(b)", "2(c)", "2(d)", "2(e)", "2(f)", "2(g)", "2(h)", "3", "4", "5", "6", "7", "8", "9"]


def _shipped_paths() -> list[tuple[str, str, str]]:
    out = []
    for name in profiles.shipped():
        data = yaml.safe_load((profiles.HERE / f"{name}.yaml").read_text())
        out += [(name, item["id"], e["path"]) for item in data["items"] for e in item.get("evidence") or []]
    return out


def _model_path_problem(path: str) -> str | None:
    """Walk the pydantic models' fields (not the JSON schema the module checks with): a renamed field fails."""
    nodes: list = [AuditReport]
    for part in path.split("."):
        nxt = []
        for tp in nodes:  # Optional/Union members are appended and walked in the same pass
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            origin = typing.get_origin(tp)
            if origin in (typing.Union, types.UnionType):
                nodes.extend(args)
                continue
            if tp is typing.Any:
                return None
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                nxt += [f.annotation for k, f in tp.model_fields.items() if k == part or fnmatchcase(k, part)]
                if tp.model_config.get("extra") == "allow" and not nxt:
                    return None
            elif origin is list and (part == "*" or part.isdigit()):
                nxt.append(args[0])
            elif origin is dict:
                if args[1] is typing.Any:
                    return None
                nxt.append(args[1])
        if not nxt:
            return f"{path}: no field '{part}'"
        nodes = nxt
    return None


def test_shipped_profiles_cite_only_fields_the_report_has():
    cited = _shipped_paths()
    assert {name for name, _, _ in cited} == {"eu-ai-act", "nist-ai-600-1"}
    problems = [f"{name} {item}: {_model_path_problem(path)}" for name, item, path in cited if _model_path_problem(path)]
    assert problems == []
    for name in profiles.shipped():  # and the module's own check (on the generated JSON schema) agrees
        assert profiles.load(name).name == name
    # Both checks can fail: a renamed or misplaced field is caught.
    for bad in ("decision.polcy", "evaluation.suites", "lineage.stages.*.sha", "reviewers.agreements"):
        assert _model_path_problem(bad) and profiles.schema_problem(bad), bad


def test_shipped_profiles_cover_annex_iv_and_cite_real_nist_actions():
    eu = profiles.load("eu-ai-act")
    assert [i.id for i in eu.items] == ANNEX_IV
    missing = {i.id: i.note for i in eu.items if not i.evidence}
    assert set(missing) == {"7", "8", "9"} and all("provider" in note for note in missing.values())
    nist = profiles.load("nist-ai-600-1")
    ids = [i.id for i in nist.items]
    assert all(i.startswith(("MS-", "MG-", "MANAGE ")) for i in ids)
    assert {"MS-2.3-002", "MS-2.5-001", "MS-2.6-003", "MS-2.11-001", "MG-1.3-001", "MG-3.2-002"} <= set(ids)


def _cli_args(tmp_path):
    return ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", f"gate.candidate={tmp_path / 'candidate'}",
            "registry.model_name=audit-model"]


def test_report_with_eu_ai_act_profile_lists_every_annex_iv_point(cycle, tmp_path, capsys):  # noqa: F811
    _promoted(cycle, tmp_path)
    assert main(["report", "write", "audit", "--profile", "eu-ai-act", *_cli_args(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    doc = json.loads(Path(out["json"]).read_text())
    jsonschema.validate(doc, json.loads(audit.SCHEMA_PATH.read_text()))
    [section] = doc["profiles"]
    assert section["name"] == "eu-ai-act" and section["shipped"] and len(section["sha256"]) == 64
    items = {i["id"]: i for i in section["items"]}
    assert list(items) == ANNEX_IV
    assert all(i["status"] in profiles.STATUSES for i in items.values())
    # 7-9 never have evidence in a run; 2(c) cites the manifest's hardware and stages, which this synthetic run lacks.
    assert {k for k, i in items.items() if i["status"] == "missing"} == {"2(c)", "7", "8", "9"}
    assert not any(e["present"] for e in items["2(c)"]["evidence"]) and items["2(c)"]["evidence"]
    # Point 6 (changes through the lifecycle): lineage, the promotion and the ledger are all in this run.
    assert items["6"]["status"] == "evidenced" and all(e["present"] for e in items["6"]["evidence"])
    assert next(e for e in items["6"]["evidence"] if e["path"] == "ledger")["value"].startswith("verifies")
    # 2(g) testing: evaluation and the approver are here; no bias suite ran, so that part is absent: partial.
    g = {e["path"]: e for e in items["2(g)"]["evidence"]}
    assert items["2(g)"]["status"] == "partial" and not g["bias_categories"]["present"]
    assert g["decision.approver"]["value"] == "Ana Lima" and g["evaluation"]["present"]
    assert section["counts"] == {s: sum(i["status"] == s for i in items.values()) for s in profiles.STATUSES}

    html = Path(out["html"]).read_text()
    assert "<caption>EU AI Act, Annex IV: technical documentation: evidence per item</caption>" in html
    for point in ANNEX_IV:
        assert f'<th scope="row">{point}</th>' in html, point
    assert html.count('class="fail">missing</td>') == 4 and "declaration of conformity" in html
    if doc["pdf"]["written"]:  # the PDF is printed from the same HTML
        from pypdf import PdfReader

        text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(out["pdf"]).pages)
        assert "Annex IV" in text and "EU declaration of conformity" in text


def test_an_item_whose_evidence_the_run_lacks_is_missing(cycle, tmp_path):  # noqa: F811
    run_dir, _, _, config = cycle
    _promoted(cycle, tmp_path)
    with_reviews = audit.build(config())
    assert with_reviews["reviewers"] is not None
    (run_dir / "feedback" / "summary.json").unlink()  # no review in this run: no reviewers section
    result = audit.run(config("cycle.pdf=false", "cycle.report_profiles=[nist-ai-600-1]"))
    doc = json.loads(result.json.read_text())
    assert doc["reviewers"] is None
    items = {i["id"]: i for i in doc["profiles"][0]["items"]}
    # MS-3.3-003 cites bias suites (none ran) and the reviewers (none now): nothing is there.
    assert items["MS-3.3-003"]["status"] == "missing"
    assert [e["present"] for e in items["MS-3.3-003"]["evidence"]] == [False, False]
    assert profiles.section(with_reviews, "nist-ai-600-1")["items"][
        [i["id"] for i in doc["profiles"][0]["items"]].index("MS-3.3-003")]["status"] == "partial"
    assert items["MG-4.1-002"]["status"] == "missing" and items["MG-4.1-002"]["evidence"] == []
    assert 'id="profile-nist-ai-600-1"' in result.html.read_text()


def _profile(tmp_path: Path, items: list[dict]) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump({"name": "team", "title": "Team checklist", "version": 1, "source": "ours",
                                    "items": items}, sort_keys=False))
    return path


def test_status_follows_what_the_document_holds(tmp_path):
    ev = [{"path": "reviewers.agreement", "shows": "agreement"}, {"path": "decision.approver", "shows": "who"}]
    team = profiles.load(str(_profile(tmp_path, [{"id": "a", "title": "both", "evidence": ev},
                                                 {"id": "b", "title": "some", "evidence": ev, "scope": "partial",
                                                  "note": "the rest is ours"}])))
    assert not team._shipped and team._file == "team.yaml"

    def status(doc):
        return [i["status"] for i in profiles.section(doc, team)["items"]]

    full = {"reviewers": {"agreement": {"fleiss_kappa": 0.41}}, "decision": {"approver": "Ana"}}
    assert status(full) == ["evidenced", "partial"]  # scope: partial caps the item
    assert status({"reviewers": {"agreement": {"fleiss_kappa": None}}, "decision": {"approver": "Ana"}}) == [
        "partial", "partial"]  # an agreement of nothing but empty values is no evidence
    assert status({"reviewers": None, "decision": {"approver": None}}) == ["missing", "missing"]
    s = profiles.section(full, team)
    assert s["items"][0]["evidence"][0]["value"] == "fleiss_kappa" and s["items"][0]["evidence"][1]["value"] == "Ana"
    # A pattern reaches every matching key.
    assert profiles.resolve({"evaluation": [{"suites": {"bias/a": 1, "domain/x": 2}}, {"suites": {"bias/b": 3}}]},
                            "evaluation.*.suites.bias/*") == [("evaluation.0.suites.bias/a", 1),
                                                               ("evaluation.1.suites.bias/b", 3)]


def test_a_no_a_failing_ledger_and_simulated_reviews_are_not_full_evidence(tmp_path):
    team = profiles.load(str(_profile(tmp_path, [
        {"id": "signoff", "title": "oversight", "evidence": [{"path": "decision.signoff_required", "shows": "policy"}]},
        {"id": "log", "title": "logging", "evidence": [{"path": "ledger", "shows": "the ledger"}], "note": "ours too"},
        {"id": "feedback", "title": "human feedback",
         "evidence": [{"path": "reviewers.summary", "shows": "reviews"}, {"path": "decision.approver", "shows": "who"}]},
    ])))

    def items(**doc):
        base = {"decision": {"signoff_required": True, "approver": "Ana", "simulated_reviews": False},
                "ledger": {"ok": True, "entries": 4, "message": "ok"},
                "reviewers": {"summary": {"tasks_reviewed": 60, "simulated": False}}}
        for key, value in doc.items():
            base[key] = {**base[key], **value}
        return {i["id"]: i for i in profiles.section(base, team)["items"]}

    good = items()
    assert [good[k]["status"] for k in ("signoff", "log", "feedback")] == ["evidenced"] * 3
    assert good["log"]["note"] == "ours too" and good["feedback"]["note"] is None
    # A flag that says "no" evidences nothing.
    no = items(decision={"signoff_required": False})["signoff"]
    assert no["status"] == "missing" and no["evidence"][0]["present"] is False
    # A ledger that fails verification is present, but no trustworthy record: partial, and the note says why.
    broken = items(ledger={"ok": False})["log"]
    assert broken["status"] == "partial" and broken["evidence"][0]["value"].startswith("FAILS verification")
    assert broken["note"].startswith("The ledger fails verification") and broken["note"].endswith("ours too")
    # Simulated reviewers are no human oversight: partial, with a note; the other items are untouched.
    simulated = items(decision={"simulated_reviews": True})
    assert simulated["feedback"]["status"] == "partial" and "Reviews were simulated" in simulated["feedback"]["note"]
    assert simulated["log"]["status"] == simulated["signoff"]["status"] == "evidenced"
    assert items(reviewers={"summary": {"tasks_reviewed": 60, "simulated": True}})["feedback"]["status"] == "partial"


def test_unknown_profile_exits_2_naming_the_shipped_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "write", "audit", "--profile", "eu-ai", f"run.root={tmp_path / 'runs'}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown profile 'eu-ai'" in err and "eu-ai-act" in err and "nist-ai-600-1" in err
    assert "Traceback" not in err


def test_malformed_profile_file_exits_2_naming_file_and_key(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _profile(tmp_path, [{"id": "a", "title": "t", "evidence": [{"path": "decision.polcy", "shows": "x"}]},
                               {"id": "b", "title": "t", "evdence": []}])
    assert main(["report", "write", "audit", "--profile", "team.yaml", f"run.root={tmp_path / 'runs'}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "team.yaml" in err and "items.0.evidence.0.path" in err and "no 'polcy' at decision" in err
    assert "items.1.evdence: unknown key" in err and "Traceback" not in err
    with pytest.raises(HarnessError, match=r"team\.yaml:\d+: items\.0\.evidence\.0\.path"):
        profiles.load(str(path))
    (tmp_path / "dup.yaml").write_text("name: a\nname: b\n")
    with pytest.raises(HarnessError, match="duplicate key 'name'"):
        profiles.load(str(tmp_path / "dup.yaml"))
    with pytest.raises(HarnessError, match="without evidence needs a note"):
        profiles.load(str(_profile(tmp_path, [{"id": "a", "title": "t"}])))


def test_config_profile_files_are_relative_to_the_config(tmp_path):
    (tmp_path / "conf").mkdir()
    cfg = tmp_path / "conf" / "cycle.yaml"
    cfg.write_text("cycle:\n  report_profiles: [eu-ai-act, mine/team.yaml]\n")
    assert load_config(cfg, []).cycle.report_profiles == ["eu-ai-act", str(tmp_path / "conf" / "mine" / "team.yaml")]
