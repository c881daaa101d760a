"""Promotion, rollback and crash repair against a real MLflow SQLite store and the real ledger."""

import json
from pathlib import Path

import pytest

from harness import ledger, registry
from harness.artifacts import sha256_file
from harness.cli import main
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import fingerprint, resolve

pytestmark = pytest.mark.integration


def _adapter(path, seed):
    import torch
    from peft import LoraConfig, get_peft_model

    from harness.models import load_model, load_tokenizer

    spec = resolve("builtin:tiny-random")
    torch.manual_seed(seed)
    model = get_peft_model(load_model(spec), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM",
                                                        init_lora_weights=False))
    model.save_pretrained(path)
    load_tokenizer(spec).save_pretrained(path)
    (path / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    return path


def _decision(run_dir, decision_id, candidate, incumbent="builtin:tiny-random", passed=True, signoff=True, record=True):
    """A decision as 'harness gate' writes it, and (record=True) its ledger entry."""
    d = {"schema_version": 1, "kind": "gate_decision", "decision_id": decision_id, "run_id": run_dir.name,
         "passed": passed, "created": "2026-12-02T00:00:00+00:00", "summary": "test decision", "inputs": {},
         "outcome": "pass" if passed else "fail", "signoff_required": signoff,
         "policy": {"name": "test", "version": 1, "path": "policy.yaml", "sha256": "0" * 64},
         "candidate": {"ref": str(candidate), "fingerprint": fingerprint(resolve(str(candidate)))},
         "incumbent": {"ref": str(incumbent), "fingerprint": fingerprint(resolve(str(incumbent)))},
         "rules": [{"id": "domain (acc)", "kind": "compare", "requirement": "acc: improve", "passed": passed,
                    "checks": [{"passed": passed, "estimate": 0.1, "reason": "test", "evidence": []}]}]}
    path = run_dir / "gate" / f"{decision_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d))
    if record:
        ledger.append("decision" if passed else "reject", actor="harness gate",
                      subject={"decision_id": decision_id}, details={"decision_sha256": sha256_file(path)})
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("HARNESS_LEDGER", str(tmp_path / "ledger.jsonl"))
    (tmp_path / "mlflow").mkdir()
    run_dir = tmp_path / "runs" / "r"
    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=r",
                             "registry.model_name=test-model"])
    return cfg, run_dir



def _two_decisions(run_dir, tmp_path):
    """Passing, unsigned decisions: dec-a (adapter a over the base), then dec-b (adapter b over a)."""
    a, b = _adapter(tmp_path / "a", 0), _adapter(tmp_path / "b", 1)
    _decision(run_dir, "dec-a", a, signoff=False)
    _decision(run_dir, "dec-b", b, incumbent=a, signoff=False)
    return a, b

def test_promote_rollback_and_refusals(store, tmp_path, capsys):
    cfg, run_dir = store
    a, b, c = _adapter(tmp_path / "a", 0), _adapter(tmp_path / "b", 1), _adapter(tmp_path / "c", 2)
    _decision(run_dir, "dec-a", a)
    _decision(run_dir, "dec-b", b, incumbent=a)
    _decision(run_dir, "dec-c", c, incumbent=b)
    _decision(run_dir, "dec-bad", c, passed=False)
    _decision(run_dir, "dec-stale", c, incumbent="builtin:tiny-random")
    with pytest.raises(HarnessError, match="did not pass"):
        registry.promote(cfg, "dec-bad", "ana")
    with pytest.raises(HarnessError, match="unknown decision"):
        registry.promote(cfg, "dec-nope", "ana")
    with pytest.raises(HarnessError, match="requires a sign-off"):
        registry.promote(cfg, "dec-a", None)
    # A rejected decision edited to "passed", and a decision the gate never recorded, are refused.
    bad = run_dir / "gate" / "dec-bad.json"
    bad.write_text(bad.read_text().replace('"passed": false', '"passed": true'))
    with pytest.raises(HarnessError, match="no passing gate decision"):
        registry.promote(cfg, "dec-bad", "ana")
    _decision(run_dir, "dec-forged", c, record=False)
    with pytest.raises(HarnessError, match="no passing gate decision"):
        registry.promote(cfg, "dec-forged", "ana")
    assert registry.list_versions(cfg) == []  # nothing registered by the refusals

    first = registry.promote(cfg, "dec-a", "ana")
    assert (first.version, first.previous) == ("1", None)
    with pytest.raises(HarnessError, match="already promoted"):
        registry.promote(cfg, "dec-a", "ana")
    with pytest.raises(HarnessError, match="the champion is test-model v1"):
        registry.promote(cfg, "dec-stale", "ana")  # gated against the base, not against the champion
    assert registry.promote(cfg, "dec-b", "ben").version == "2"
    assert registry.promote(cfg, "dec-c", "ana").version == "3"
    rows = registry.list_versions(cfg)
    assert [(r["version"], r["champion"], r["decision_id"], r["approver"]) for r in rows] == \
        [("1", False, "dec-a", "ana"), ("2", False, "dec-b", "ben"), ("3", True, "dec-c", "ana")]
    assert rows[1]["base"] == "builtin:tiny-random"
    from mlflow.artifacts import download_artifacts

    local = Path(download_artifacts(rows[1]["source"], dst_path=str(tmp_path / "dl")))
    assert (local / "adapter_model.safetensors").is_file() and (local / "harness_adapter.json").is_file()

    # Rollbacks walk back through earlier champions, never forward again.
    assert registry.rollback(cfg, "ana").version == "2"
    assert registry.rollback(cfg, "ana").version == "1"
    with pytest.raises(HarnessError, match="only champion left"):
        registry.rollback(cfg, "ana")
    assert [r["version"] for r in registry.list_versions(cfg) if r["champion"]] == ["1"]
    actions = [(e["action"], e["subject"].get("version")) for e in ledger.read_entries(tmp_path / "ledger.jsonl")
               if e["action"] in ("promote", "rollback")]
    assert actions == [("promote", "1"), ("promote", "2"), ("promote", "3"), ("rollback", "2"), ("rollback", "1")]
    assert ledger.verify(tmp_path / "ledger.jsonl").ok
    capsys.readouterr()
    assert main(["registry", "list", "registry.model_name=test-model", f"run.root={tmp_path / 'runs'}", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in listed if r["champion"]] == ["1"] and len(listed) == 3


def test_candidate_changed_after_the_gate_is_refused(store, tmp_path):
    cfg, run_dir = store
    a = _adapter(tmp_path / "a", 0)
    _decision(run_dir, "dec-a", a, signoff=False)
    _adapter(a, 5)  # retrained in place after the gate
    with pytest.raises(HarnessError, match="changed since decision dec-a"):
        registry.promote(cfg, "dec-a", None)


def test_interrupted_moves_are_repaired(store, tmp_path):
    cfg, run_dir = store
    a, b = _two_decisions(run_dir, tmp_path)
    registry.promote(cfg, "dec-a", None)
    registry.promote(cfg, "dec-b", None)
    client = registry._client()
    # A rollback that moved the alias but crashed before its ledger entry.
    client.set_registered_model_alias("test-model", "champion", "1")
    registry.check_consistency(client, "test-model")
    last = ledger.read_entries(tmp_path / "ledger.jsonl")[-1]
    assert last["action"] == "rollback" and last["subject"]["version"] == "1"
    # A promotion that moved the alias but crashed before its ledger entry.
    client.set_registered_model_alias("test-model", "champion", "2")
    registry.check_consistency(client, "test-model")
    last = ledger.read_entries(tmp_path / "ledger.jsonl")[-1]
    assert last["action"] == "repair" and last["subject"]["decision_id"] == "dec-b"
    registry.check_consistency(client, "test-model")  # consistent now: nothing more appended
    assert ledger.read_entries(tmp_path / "ledger.jsonl")[-1]["seq"] == last["seq"]
    with pytest.raises(HarnessError, match="already promoted"):
        registry.promote(cfg, "dec-b", None)


def test_tampered_or_lost_ledger_blocks_promotion(store, tmp_path):
    cfg, run_dir = store
    a, b = _two_decisions(run_dir, tmp_path)
    registry.promote(cfg, "dec-a", None)
    path = tmp_path / "ledger.jsonl"
    original = path.read_text()
    path.write_text(original.replace("harness promote", "mallory"))
    with pytest.raises(HarnessError, match="ledger failed verification"):
        registry.promote(cfg, "dec-b", None)
    path.unlink()
    (tmp_path / "ledger.jsonl.head").unlink()
    with pytest.raises(HarnessError, match="disagree"):
        registry.promote(cfg, "dec-b", None)
    assert [r["version"] for r in registry.list_versions(cfg)] == ["1"]


def test_gate_and_review_default_to_the_champion(store, tmp_path, monkeypatch):
    from feedback.push import models_under_review
    from harness.gate import default_incumbent

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    cfg, run_dir = store
    assert default_incumbent(cfg) == "builtin:tiny-random"  # nothing promoted yet: the base model
    a, _ = _two_decisions(run_dir, tmp_path)
    registry.promote(cfg, "dec-a", None)
    assert default_incumbent(cfg) == str(a)
    assert models_under_review(cfg) == (str(run_dir / "sft" / "adapter"), str(a))
    promoted_fp = fingerprint(resolve(str(a)))
    _adapter(a, 7)  # the run folder's adapter was retrained after the promotion: use the registry's copy
    copy = default_incumbent(cfg)
    assert copy == str(tmp_path / "home/registry/test-model/1") and fingerprint(resolve(copy)) == promoted_fp
    assert not list((tmp_path / "home/registry/test-model").glob(".*"))  # no download folder left behind
    registry.promote(cfg, "dec-b", None)
    assert default_incumbent(cfg) == str(tmp_path / "b")


_CHECKER = """
import sys
from pathlib import Path
from harness import registry
Path(sys.argv[1]).write_text("about to check")
registry.check_consistency(registry._client(), "test-model")
"""


def test_a_consistency_check_racing_a_promotion_waits_for_it(store, tmp_path):
    """A promotion moves the registry's alias, then writes the ledger. A consistency check from another
    process in between used to record the move as a 'repair' too, leaving the history ['1', '2', '2']."""
    import os
    import subprocess
    import sys
    import time

    cfg, run_dir = store
    a, b = _two_decisions(run_dir, tmp_path)
    registry.promote(cfg, "dec-a", None)
    client = registry._client()
    marker = tmp_path / "checker-started"
    with registry._registry_lock():  # a promotion of dec-b in flight, done by hand to hold its window open
        version = client.create_model_version("test-model", str(b), tags={
            "decision_id": "dec-b", "fingerprint": fingerprint(resolve(str(b))), "candidate": str(b)})
        client.set_registered_model_alias("test-model", "champion", version.version)
        checker = subprocess.Popen([sys.executable, "-c", _CHECKER, str(marker)], env=dict(os.environ),
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # the checker is inside check_consistency now, or waiting for the lock
        assert checker.poll() is None, checker.stderr.read()
        ledger.append("promote", actor="harness promote",
                      subject={"decision_id": "dec-b", "model": "test-model", "version": str(version.version)})
    assert checker.wait(timeout=120) == 0, checker.stderr.read()
    actions = [e["action"] for e in ledger.read_entries(tmp_path / "ledger.jsonl")]
    assert "repair" not in actions and registry.champion_stack("test-model") == ["1", "2"]
    registry.rollback(cfg, None)  # and the history still rolls back
    assert registry.champion_stack("test-model") == ["1"]


def test_a_held_registry_lock_names_its_holder(store, tmp_path):
    import os
    import subprocess
    import sys

    cfg, run_dir = store
    _two_decisions(run_dir, tmp_path)
    env = {**os.environ, "HARNESS_REGISTRY_LOCK_TIMEOUT": "0.5"}
    with registry._registry_lock():
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "promote", "dec-a", f"run.root={tmp_path / 'runs'}",
                               "run.id=r", "registry.model_name=test-model", "model.base=builtin:tiny-random"],
                              env=env, capture_output=True, text=True, timeout=300)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 1 and f"the model registry's lock is held by pid {os.getpid()}" in err, err
    assert "nothing was changed" in err and "promote" not in [e["action"] for e in ledger.read_entries(tmp_path / "ledger.jsonl")]


def test_promotions_and_a_consistency_check_in_parallel_processes_leave_one_history(store, tmp_path):
    """Two promotions and a registry listing started at once, as separate processes, on a store none of them
    has opened yet: each either happens whole or is refused, and the champion history, the ledger, a
    consistency check and a rollback agree afterwards."""
    import os
    import subprocess
    import sys

    cfg, run_dir = store
    _two_decisions(run_dir, tmp_path)
    common = [f"run.root={tmp_path / 'runs'}", "run.id=r", "registry.model_name=test-model", "model.base=builtin:tiny-random"]
    commands = [["promote", "dec-a", *common], ["promote", "dec-b", *common], ["registry", "list", *common]]
    logs = [tmp_path / f"proc{i}.log" for i in range(len(commands))]  # files, not pipes: a full pipe would stall it
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", *c], env=dict(os.environ), stdout=subprocess.DEVNULL,
                              stderr=log.open("w")) for c, log in zip(commands, logs)]
    codes = [p.wait(timeout=600) for p in procs]
    errors = [" ".join(log.read_text().split()) for log in logs]
    assert codes[1] == 0 and codes[2] == 0, errors
    # dec-b (against a) goes through either way: after dec-a, or first into an empty registry; dec-a (against
    # the base) goes through only if it runs first, and is otherwise refused because the champion moved
    order = ["dec-a", "dec-b"] if codes[0] == 0 else ["dec-b"]
    if codes[0] != 0:
        assert "champion" in errors[0], errors[0]
    stack = registry.champion_stack("test-model")
    assert stack == ["1", "2"][:len(order)]
    entries = ledger.read_entries(tmp_path / "ledger.jsonl")
    assert "repair" not in [e["action"] for e in entries]
    assert [e["subject"]["decision_id"] for e in entries if e["action"] == "promote"] == order
    registry.check_consistency(registry._client(), "test-model")  # nothing to repair
    assert "repair" not in [e["action"] for e in ledger.read_entries(tmp_path / "ledger.jsonl")]
    if len(order) == 2:
        registry.rollback(cfg, None)
        assert registry.champion_stack("test-model") == ["1"]
