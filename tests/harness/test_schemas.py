"""Typed artifacts: every JSON artifact is a versioned pydantic model, and readers refuse newer ones."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.schemas import ARTIFACTS, CycleState, GateDecision, artifact_dict, read_artifact, write_artifact


def test_every_artifact_model_has_a_kind_and_version():
    assert set(ARTIFACTS) == {"data_card", "eval_summary", "feedback_summary", "feedback_agreement", "feedback_pull", "labeling_rounds", "prompt_split", "training_result",
                              "gate_decision", "cycle_state"}
    for kind, model in ARTIFACTS.items():
        assert model.KIND == kind and model.SCHEMA_VERSION >= 1
        assert "schema_version" in model.model_json_schema()["properties"]


@pytest.mark.parametrize("model", list(ARTIFACTS.values()), ids=list(ARTIFACTS))
def test_a_newer_schema_version_is_refused_by_name(tmp_path, model):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"schema_version": model.SCHEMA_VERSION + 1, "kind": model.KIND, "whatever": 1}))
    with pytest.raises(HarnessError, match=rf"written by a newer harness .*schema_version {model.SCHEMA_VERSION + 1}; "
                                           rf"this one reads up to {model.SCHEMA_VERSION}") as err:
        read_artifact(path, model)
    assert str(path) in err.value.message and "upgrade the harness" in err.value.hint


def test_malformed_and_legacy_files(tmp_path):
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps({"version": 1, "kind": "cycle_state", "run_id": "r", "created": "t",
                                "stages": {"sft": {"status": "done", "key": "k", "summary": "s"}}}))
    state = read_artifact(path, CycleState)  # written before schema_version existed: read as version 1
    assert state.schema_version == 1 and state.stages["sft"].status == "done"
    path.write_text(json.dumps({"schema_version": 1, "kind": "cycle_state", "run_id": "r", "created": "t", "stagez": {}}))
    with pytest.raises(HarnessError, match="stagez: unknown key"):
        read_artifact(path, CycleState)
    path.write_text("{not json")
    with pytest.raises(HarnessError, match="not valid JSON"):
        read_artifact(path, CycleState)
    with pytest.raises(ValueError, match="does not match its schema"):  # a writer's bug never reaches the disk
        write_artifact(tmp_path / "d.json", {"decision_id": "dec-1"}, GateDecision)
    assert not (tmp_path / "d.json").exists()


def test_resume_refuses_a_cycle_written_by_a_newer_harness(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "cycle.json").write_text(json.dumps(
        {"schema_version": 7, "kind": "cycle_state", "run_id": "r1", "created": "t", "stages": {}}))
    assert main(["cycle", "--resume", "r1"]) == 2
    err = capsys.readouterr().err
    assert "written by a newer harness (cycle_state schema_version 7; this one reads up to 1)" in err


def test_artifact_dict_is_the_plain_json(tmp_path):
    path = tmp_path / "c.json"
    write_artifact(path, CycleState(run_id="r", created="t"))
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == 1 and on_disk["kind"] == "cycle_state"
    assert artifact_dict(path, CycleState) == on_disk
