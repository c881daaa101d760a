"""Promotion, rollback and crash repair against a real MLflow SQLite store and the real ledger."""

import json
from pathlib import Path

import pytest

from harness import ledger, registry
from harness.config import load_config
from harness.errors import HarnessError
from harness.cli import main

pytestmark = pytest.mark.integration


def _adapter(path, seed):
    import torch
    from peft import LoraConfig, get_peft_model

    from harness.models import load_model, load_tokenizer, resolve

    spec = resolve("builtin:tiny-random")
    torch.manual_seed(seed)
    model = get_peft_model(load_model(spec), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM",
                                                        init_lora_weights=False))
    model.save_pretrained(path)
    load_tokenizer(spec).save_pretrained(path)
    (path / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    return path


def _decision(run_dir, decision_id, candidate, passed=True, signoff=True):
    d = {"version": 1, "kind": "gate_decision", "decision_id": decision_id, "run_id": run_dir.name, "passed": passed,
         "outcome": "pass" if passed else "fail", "signoff_required": signoff,
         "policy": {"name": "test", "version": 1},
         "candidate": {"ref": str(candidate), "fingerprint": f"fp-{decision_id}"},
         "incumbent": {"ref": "builtin:tiny-random", "fingerprint": "fp-base"},
         "rules": [{"id": "domain", "passed": passed, "checks": [{"passed": passed, "estimate": 0.1}]}]}
    (run_dir / "gate").mkdir(parents=True, exist_ok=True)
    (run_dir / "gate" / f"{decision_id}.json").write_text(json.dumps(d))


@pytest.fixture
def store(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("HARNESS_LEDGER", str(tmp_path / "ledger.jsonl"))
    (tmp_path / "mlflow").mkdir()
    run_dir = tmp_path / "runs" / "r"
    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=r",
                             "registry.model_name=test-model"])
    return cfg, run_dir


def test_promote_rollback_and_refusals(store, tmp_path):
    cfg, run_dir = store
    _decision(run_dir, "dec-a", _adapter(tmp_path / "a", 0))
    _decision(run_dir, "dec-b", _adapter(tmp_path / "b", 1))
    _decision(run_dir, "dec-bad", _adapter(tmp_path / "c", 2), passed=False)
    with pytest.raises(HarnessError, match="did not pass"):
        registry.promote(cfg, "dec-bad", "ana")
    with pytest.raises(HarnessError, match="unknown decision"):
        registry.promote(cfg, "dec-nope", "ana")
    with pytest.raises(HarnessError, match="requires a sign-off"):
        registry.promote(cfg, "dec-a", None)
    assert registry.list_versions(cfg) == []  # nothing registered by the refusals

    first = registry.promote(cfg, "dec-a", "ana")
    assert (first.version, first.previous) == ("1", None)
    with pytest.raises(HarnessError, match="already promoted"):
        registry.promote(cfg, "dec-a", "ana")
    second = registry.promote(cfg, "dec-b", "ben")
    assert (second.version, second.previous) == ("2", "1")
    rows = registry.list_versions(cfg)
    assert [(r["version"], r["champion"], r["decision_id"], r["approver"]) for r in rows] == \
        [("1", False, "dec-a", "ana"), ("2", True, "dec-b", "ben")]
    # The adapter itself is a registered artifact (MLflow run artifacts), with its base reference.
    assert rows[1]["base"] == "builtin:tiny-random"
    from mlflow.artifacts import download_artifacts

    local = Path(download_artifacts(rows[1]["source"], dst_path=str(tmp_path / "dl")))
    assert (local / "adapter_model.safetensors").is_file() and (local / "harness_adapter.json").is_file()

    back = registry.rollback(cfg, "ana")
    assert (back.version, back.previous) == ("1", "2")
    assert [r["version"] for r in registry.list_versions(cfg) if r["champion"]] == ["1"]
    actions = [(e["action"], e["subject"].get("version")) for e in ledger.read_entries(tmp_path / "ledger.jsonl")]
    assert actions == [("sign_off", "1"), ("promote", "1"), ("sign_off", "2"), ("promote", "2"), ("rollback", "1")]
    assert ledger.verify(tmp_path / "ledger.jsonl").ok
    assert main(["registry", "list", "registry.model_name=test-model", f"run.root={tmp_path / 'runs'}"]) == 0


def test_crash_between_registry_and_ledger_is_repaired(store, tmp_path):
    cfg, run_dir = store
    _decision(run_dir, "dec-a", _adapter(tmp_path / "a", 0), signoff=False)
    _decision(run_dir, "dec-b", _adapter(tmp_path / "b", 1), signoff=False)
    registry.promote(cfg, "dec-a", None)
    registry.promote(cfg, "dec-b", None)
    # A crash after the alias moved but before the ledger entry: simulate by moving the alias by hand.
    client = registry._client()
    client.set_registered_model_alias("test-model", "champion", "1")
    registry.check_consistency(client, "test-model")
    last = ledger.read_entries(tmp_path / "ledger.jsonl")[-1]
    assert last["action"] == "repair" and last["subject"]["version"] == "1" and last["details"]["decision_id"] == "dec-a"
    registry.check_consistency(client, "test-model")  # consistent now: nothing more appended
    assert ledger.read_entries(tmp_path / "ledger.jsonl")[-1]["seq"] == last["seq"]


def test_tampered_ledger_blocks_promotion(store, tmp_path):
    cfg, run_dir = store
    _decision(run_dir, "dec-a", _adapter(tmp_path / "a", 0), signoff=False)
    _decision(run_dir, "dec-b", _adapter(tmp_path / "b", 1), signoff=False)
    registry.promote(cfg, "dec-a", None)
    path = tmp_path / "ledger.jsonl"
    path.write_text(path.read_text().replace("harness promote", "mallory"))
    with pytest.raises(HarnessError, match="ledger failed verification"):
        registry.promote(cfg, "dec-b", None)
    assert [r["version"] for r in registry.list_versions(cfg)] == ["1"]
