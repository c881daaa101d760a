"""``harness cycle`` end to end on the tiny model: a real Label Studio (scripted reviewers), a real
MLflow store and ledger; resuming by hash, --from, --until feedback, a failing stage, bad input."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from harness import ledger
from harness.cli import main
from harness.cycle import state_path
from tests.conftest import learnable_chats, random_adapter, write_jsonl

pytestmark = pytest.mark.integration

LENIENT = {
    "name": "test-lenient", "version": 1, "signoff_required": True, "allow_simulated": True,
    "description": "Keeps general knowledge within a wide margin; reviewers must not flag every answer unsafe. "
                   "(A handful of reviews: a Wilson CI, which has width even when all outcomes agree.)",
    "rules": [
        {"id": "knowledge-kept", "kind": "compare", "suites": ["retention/general_knowledge"], "metric": "acc",
         "require": "no_regress", "by": 1.0, "min_n": 2},
        {"id": "reviewers", "kind": "feedback", "metric": "unsafe_rate", "at_most": 1.0, "min_n": 2},
    ],
}


@pytest.fixture
def cycle_env(tmp_path, monkeypatch, ls_data_dir):
    """A cycle config on builtin:tiny-random, its own ledger and MLflow store, run from tmp_path."""
    monkeypatch.setenv("HARNESS_LEDGER", str(tmp_path / "ledger.jsonl"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "chats.jsonl", learnable_chats(48))
    colors = ["red", "green", "blue", "amber", "violet", "teal"]
    write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": f"p{i}", "prompt": f"Ticket {100 + i}: which queue handles {colors[i % 6]} items?", "category": "queues",
         "reference": f"The {colors[i % 6]} queue handles {colors[i % 6]} items", "unsafe_markers": ["zzz-never"]}
        for i in range(12)])
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(LENIENT))
    incumbent = random_adapter(tmp_path / "incumbent")  # the current model in production
    config = {
        "run": {"id": "c1"},
        "model": {"base": "builtin:tiny-random"},
        "data": {"sources": [{"path": "chats.jsonl", "domain": "tickets"}], "dedupe": {"near": False}},
        # a full fine-tune answers the ticket questions, so reviewers see two different answers
        "sft": {"method": "full", "max_steps": 30, "learning_rate": 1.0e-2, "eval_every": 15, "warmup_ratio": 0},
        # the knowledge rule's evidence: enough questions that two tiny models do not answer all of them alike
        # (identical per-sample outcomes are "not enough evidence", which fails the rule)
        "eval": {"suites": ["domain/handbook_mcq", "retention/general_knowledge", "bias/crows_pairs"], "limit": 6,
                 "suite_limits": {"retention/general_knowledge": 40}, "bootstrap_resamples": 200},
        "feedback": {"prompts": "prompts.jsonl", "max_new_tokens": 10, "simulate": True, "data_dir": str(ls_data_dir),
                     "project": f"cycle {tmp_path.name}", "simulate_noise": [0.0, 0.1]},
        "reward": {"max_steps": 2, "max_length": 96, "validation_fraction": 0.25},
        "dpo": {"max_steps": 2, "max_length": 96, "validation_fraction": 0.25},
        # a reward model trained 2 steps on a handful of pairs is not trusted: the test trains against it anyway
        "online": {"max_steps": 2, "batch_size": 4, "num_generations": 2, "max_completion_length": 8,
                   "allow_weak_reward_model": True},
        "gate": {"policy": "policy.yaml", "incumbent": str(incumbent)},
        "cycle": {"approver": "Ana Lima"},
    }
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _result(out: str) -> dict:
    """The JSON summary 'harness cycle' prints last (trainers also log to stdout)."""
    return json.loads(out[out.rindex("\n{\n") + 1:] if "\n{\n" in out else out)


def _state(run_dir: Path) -> dict:
    return json.loads(state_path(run_dir).read_text())


def _mtime(path: Path) -> float:
    return path.stat().st_mtime_ns


def test_cycle_runs_end_to_end_and_resumes_by_hash(cycle_env, tmp_path, capsys, ls_data_dir):
    assert main(["cycle", "--config", str(cycle_env)]) == 0
    out = _result(capsys.readouterr().out)
    run_dir = tmp_path / "runs" / "c1"
    assert out["outcome"] == "promoted" and out["decision_id"].startswith("dec-")
    state = _state(run_dir)
    assert [s for s in state["stages"]] == ["data", "sft", "eval", "feedback", "reward", "dpo", "online",
                                            "final_eval", "review", "gate", "promote", "report"]
    assert all(s["status"] == "done" for s in state["stages"].values()), state["stages"]
    # the final candidate is online RL's adapter, which continued DPO's, which continued SFT's model
    decision = json.loads((run_dir / "gate" / "decision.json").read_text())
    assert decision["candidate"]["ref"] == str(run_dir / "online" / "adapter")
    assert decision["incumbent"]["ref"] == str(tmp_path / "incumbent") and decision["passed"]
    online_manifest = json.loads((run_dir / "online" / "result.json").read_text())
    assert str(run_dir / "dpo" / "adapter") in json.dumps(online_manifest)
    # the gate's review evidence is the second round, on the final candidate
    review_tasks = [json.loads(x) for x in (run_dir / "review" / "tasks.jsonl").read_text().splitlines()]
    assert {t["candidate"]["ref"] for t in review_tasks} == {str(run_dir / "online" / "adapter")}
    # ...on held-out prompts only, and a second comparison against the SFT-only candidate
    split = json.loads((run_dir / "prompts" / "split.json").read_text())
    first_tasks = [json.loads(x) for x in (run_dir / "feedback" / "tasks.jsonl").read_text().splitlines()]
    assert {t["prompt_id"] for t in review_tasks} <= set(split["heldout"])
    assert {t["prompt_id"] for t in first_tasks} <= set(split["training"])
    alignment_tasks = [json.loads(x) for x in (run_dir / "review" / "alignment" / "tasks.jsonl").read_text().splitlines()]
    assert {t["incumbent"]["ref"] for t in alignment_tasks} == {str((run_dir / "sft" / "model").resolve())} or \
        {t["incumbent"]["ref"] for t in alignment_tasks} == {str((run_dir / "sft" / "adapter").resolve())}
    assert (run_dir / "feedback" / "preferences.jsonl").read_text().strip()
    actions = [e["action"] for e in ledger.read_entries(tmp_path / "ledger.jsonl")]
    assert actions == ["decision", "sign_off", "promote"]
    assert (run_dir / "report" / "audit.html").is_file() and Path(out["report"]).resolve() == run_dir / "report" / "audit.html"
    assert (run_dir / "report" / "audit.pdf").read_bytes().startswith(b"%PDF") and out["warnings"] == []
    html = (run_dir / "report" / "audit.html").read_text()
    # the reward model's trust report, its paired comparison with the baselines and its override, in words
    assert "<b>Not trusted</b>" in html and "Reward model ahead by (same pairs)" in html and "allow_weak_reward_model" in html
    assert "a perfectly calibrated model with the same confidences would show ECE" in html

    # Unchanged: nothing runs again, nothing new in the ledger.
    sft_model = run_dir / "sft" / "model" / "model.safetensors"
    before = _mtime(sft_model)
    assert main(["cycle", "--config", str(cycle_env)]) == 0
    capsys.readouterr()
    state = _state(run_dir)
    assert {s["this_run"] for s in state["stages"].values()} == {"skipped"}
    assert len(ledger.read_entries(tmp_path / "ledger.jsonl")) == 3 and _mtime(sft_model) == before

    # A DPO setting changes: DPO and everything downstream of it runs again; SFT and the first eval do not.
    # The run keeps the incumbent it started with, so its new candidate, gated against that incumbent, may
    # not replace the champion (this run's first candidate): not promoted, and it says how to gate against it.
    assert main(["cycle", "--config", str(cycle_env), "dpo.beta=0.2"]) == 0
    capsys.readouterr()
    state = _state(run_dir)
    ran = {k for k, s in state["stages"].items() if s["this_run"] not in ("skipped",)}
    assert ran == {"dpo", "online", "final_eval", "review", "gate", "promote", "report"}, state["stages"]
    assert _mtime(sft_model) == before
    promote = state["stages"]["promote"]
    assert promote["status"] == "not promoted" and state["outcome"] == "passed, not promoted"
    assert "the champion is now harness-model v1" in promote["summary"] and "gate.incumbent=" in promote["summary"]
    assert [e["action"] for e in ledger.read_entries(tmp_path / "ledger.jsonl")] == ["decision", "sign_off", "promote", "decision"]

    # --from forces a stage that did not change, and everything after it
    assert main(["cycle", "--config", str(cycle_env), "dpo.beta=0.2", "cycle.promote=false", "--from", "gate"]) == 0
    state = _state(run_dir)
    assert {k for k, s in state["stages"].items() if s["this_run"] != "skipped"} == {"gate", "promote", "report"}
    capsys.readouterr()

    # No PDF renderer on this machine (no WeasyPrint, no browser): the report stage still finishes, the
    # cycle exits 0 and its summary warns; the next run tries the report again and prints the PDF.
    args = ["cycle", "--config", str(cycle_env), "dpo.beta=0.2", "cycle.promote=false"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "weasyprint", None)
        (tmp_path / "empty-bin").mkdir()
        mp.setenv("PATH", str(tmp_path / "empty-bin"))
        mp.delenv("HARNESS_CHROMIUM", raising=False)
        assert main([*args, "--from", "report"]) == 0
    captured = capsys.readouterr()
    out, state = _result(captured.out), _state(run_dir)
    assert out["outcome"] == "passed, not promoted" and len(out["warnings"]) == 1
    assert out["warnings"][0].startswith("report: audit.pdf was not written: WeasyPrint is not installed")
    assert "report: audit.pdf was not written" in captured.err and "done (warning)" in captured.err
    assert state["stages"]["report"]["status"] == "done" and not (run_dir / "report" / "audit.pdf").exists()
    assert main(args) == 0
    state = _state(run_dir)
    assert {k for k, s in state["stages"].items() if s["this_run"] != "skipped"} == {"report"}
    assert state["stages"]["report"]["warnings"] == [] and (run_dir / "report" / "audit.pdf").is_file()

    # A policy the candidate cannot meet: the cycle finishes, says "rejected" and exits 3 (an error is 1)
    strict = {**LENIENT, "name": "test-strict", "rules": [
        {"id": "knowledge-soars", "kind": "compare", "suites": ["retention/general_knowledge"], "metric": "acc",
         "require": "improve", "by": 1.0, "min_n": 2}]}
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(strict))
    assert main([*args, "gate.policy=strict.yaml"]) == 3
    out, state = _result(capsys.readouterr().out), _state(run_dir)
    assert out["outcome"] == state["outcome"] == "rejected"
    assert "knowledge-soars" in state["stages"]["gate"]["summary"] or "rejected" in state["stages"]["gate"]["summary"]
    assert state["stages"]["promote"]["status"] == "rejected" and state["stages"]["report"]["status"] == "done"

    # Label Studio's API token is in no file of the run (reports included) nor in the ledger
    token = json.loads((ls_data_dir / "secrets.json").read_text())["token"]
    written = [p for p in run_dir.rglob("*") if p.is_file()] + [tmp_path / "ledger.jsonl"]
    assert (run_dir / "report" / "audit.json") in written
    assert not [p for p in written if token in p.read_text(errors="replace")]


def test_failing_stage_stops_the_cycle_and_the_next_run_resumes_there(cycle_env, tmp_path, capsys):
    code = main(["cycle", "--config", str(cycle_env), "--until", "dpo"])
    assert code == 0
    run_dir = tmp_path / "runs" / "c1"
    assert _state(run_dir)["outcome"] == "stopped after dpo (--until)"
    missing = tmp_path / "no-such-reward-model"
    code = main(["cycle", "--config", str(cycle_env), f"online.reward_model={missing}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "the cycle stopped at stage 'online'" in err and "--resume c1" in err
    state = _state(run_dir)
    assert state["stages"]["online"]["status"] == "failed" and "final_eval" not in state["stages"]
    assert state["outcome"] == "failed at online"
    # fixed: the cycle continues at online; data, SFT, eval, feedback, reward and DPO are not redone
    capsys.readouterr()
    assert main(["cycle", "--config", str(cycle_env), "--no-pdf"]) == 0
    assert _result(capsys.readouterr().out)["warnings"] == []
    assert (run_dir / "report" / "audit.html").is_file() and not (run_dir / "report" / "audit.pdf").exists()
    state = _state(run_dir)
    assert {k for k, s in state["stages"].items() if s["this_run"] == "skipped"} == {
        "data", "sft", "eval", "feedback", "reward", "dpo"}
    assert state["stages"]["online"]["status"] == "done" and state["outcome"] == "promoted"


def test_killed_during_dpo_the_next_run_does_not_redo_sft_or_eval(cycle_env, tmp_path, capsys):
    import subprocess
    import sys

    run_dir = tmp_path / "runs" / "c1"
    # A DPO long enough to be killed in the middle of training.
    child = subprocess.Popen([sys.executable, "-m", "harness.cli", "cycle", "--config", str(cycle_env),
                              "dpo.max_steps=100000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 900
        while child.poll() is None and time.monotonic() < deadline:
            stages = _state(run_dir)["stages"] if state_path(run_dir).is_file() else {}
            if stages.get("dpo", {}).get("status") == "running":
                time.sleep(5)  # into the training loop
                break
            time.sleep(0.5)
        assert child.poll() is None, "the cycle ended before DPO could be killed"
    finally:
        child.kill()
        child.wait()
    assert _state(run_dir)["stages"]["dpo"]["status"] == "running"  # what a killed stage leaves behind
    sft_model, eval_dir = run_dir / "sft" / "model" / "model.safetensors", run_dir / "eval"
    before = (_mtime(sft_model), sorted((p, _mtime(p)) for p in eval_dir.rglob("summary.json")))

    assert main(["cycle", "--config", str(cycle_env), "--until", "dpo"]) == 0
    capsys.readouterr()
    state = _state(run_dir)
    assert {k for k, s in state["stages"].items() if s["this_run"] == "skipped"} == {
        "data", "sft", "eval", "feedback", "reward"}
    assert state["stages"]["dpo"]["status"] == "done" and (run_dir / "dpo" / "adapter").is_dir()
    assert (_mtime(sft_model), sorted((p, _mtime(p)) for p in eval_dir.rglob("summary.json"))) == before


def test_until_feedback_pauses_for_real_reviewers(cycle_env, tmp_path, capsys):
    args = ["cycle", "--config", str(cycle_env), "feedback.simulate=false"]
    assert main([*args, "--until", "feedback"]) == 0
    out = _result(capsys.readouterr().out)
    assert out["outcome"] == "paused"
    run_dir = tmp_path / "runs" / "c1"
    state = _state(run_dir)
    assert state["stages"]["feedback"]["status"] == "paused" and "reward" not in state["stages"]
    assert (run_dir / "feedback" / "tasks.jsonl").is_file()
    # resumed before anyone labeled: it says how far the reviewers are, and exits 4
    assert main(["cycle", "--resume", "c1"]) == 4
    captured = capsys.readouterr()
    # 8 of the 12 prompts are training prompts; 4 are held out for the final review
    assert "waiting for reviewers: 0 of 8 tasks have 2 reviews" in captured.err
    assert _result(captured.out)["outcome"] == "waiting"

    # With feedback.wait_minutes the cycle keeps checking; the reviewers finish meanwhile and it goes on.
    from feedback import simulate
    from harness.config import load_config

    annotations = run_dir / "feedback" / "annotations.jsonl"
    before = _mtime(annotations)

    def reviewers_label_after_the_first_check():
        deadline = time.monotonic() + 300
        while _mtime(annotations) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        simulate.run(load_config(cycle_env, ["feedback.simulate=false"]))

    labeling = threading.Thread(target=reviewers_label_after_the_first_check)
    labeling.start()
    try:
        assert main(["cycle", "--resume", "c1", "--until", "reward", "feedback.wait_minutes=0.3"]) == 0
    finally:
        labeling.join()
    captured = capsys.readouterr()
    assert "0 of 8 tasks fully reviewed; checking again" in captured.err
    state = _state(run_dir)
    assert state["stages"]["feedback"]["status"] == "done" and state["stages"]["reward"]["status"] == "done"
    assert "16 reviews (simulated)" in state["stages"]["feedback"]["summary"]

    # The final review pauses once for people, with both of its projects already in Label Studio.
    assert main(["cycle", "--resume", "c1", "--until", "review"]) == 0
    captured = capsys.readouterr()
    assert _result(captured.out)["outcome"] == "paused"
    message = " ".join(captured.err.split())
    assert "reviewers also label the comparison with the SFT-only candidate" in message
    for folder in (run_dir / "review", run_dir / "review" / "alignment"):
        tasks = [json.loads(x) for x in (folder / "tasks.jsonl").read_text().splitlines()]
        assert len(tasks) == 4 and all(t["task_id"] is not None for t in tasks)


def test_cycle_bad_input(cycle_env, tmp_path, capsys):
    assert main(["cycle", "--config", str(cycle_env), "--from", "nonsense"]) == 2
    assert "no such stage" in capsys.readouterr().err
    assert main(["cycle", "--resume", "never-ran"]) == 2
    assert "no cycle run 'never-ran'" in capsys.readouterr().err
    assert main(["cycle", "--config", str(cycle_env), "cycle.align=[dpo, dpo]"]) == 2
    assert "each preference stage may appear once" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def _limit_file_size() -> None:  # in the child: files may not grow past 64 KB (a full disk, as the writer sees it)
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))


def test_disk_full_while_writing_leaves_nothing_half_written(tmp_path):
    import os
    import subprocess
    import sys

    chats = learnable_chats(48) * 20  # train.jsonl well past the limit
    for i, row in enumerate(chats):
        row["messages"][0]["content"] += f" (copy {i})"
    write_jsonl(tmp_path / "chats.jsonl", chats[:12])
    big = tmp_path / "big.jsonl"
    write_jsonl(big, chats)
    config = tmp_path / "cycle.yaml"  # only run and data sections: the others run with defaults (and it says so)
    config.write_text(yaml.safe_dump({"run": {"id": "full"}, "data": {"sources": [{"path": "chats.jsonl"}],
                                                                      "dedupe": {"near": False}}}))
    env = {**os.environ, "HARNESS_LEDGER": str(tmp_path / "ledger.jsonl")}
    ok = subprocess.run([sys.executable, "-m", "harness.cli", "cycle", "--config", str(config), "--until", "data"],
                        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "the config has no sft, eval, feedback, reward, dpo, online, gate, registry sections" in " ".join(ok.stderr.split())
    data_dir = tmp_path / "runs" / "full" / "data"
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()}
    config.write_text(config.read_text().replace("chats.jsonl", "big.jsonl"))
    full = subprocess.run([sys.executable, "-m", "harness.cli", "cycle", "--config", str(config), "--until", "data"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, preexec_fn=_limit_file_size)
    assert full.returncode == 1, full.stderr  # an error, not bad input (2) nor a rejection (3)
    message = " ".join(full.stderr.split())
    assert "the cycle stopped at stage 'data'" in message and "nothing was half-written" in message, message
    assert "continues at data" in message
    # the earlier preparation is intact, and no temporary file is left behind
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == before
    assert not [p for p in (tmp_path / "runs").rglob("*") if p.name.endswith(".tmp")]
    state = json.loads(state_path(tmp_path / "runs" / "full").read_text())
    assert state["stages"]["data"]["status"] == "failed" and state["outcome"] == "failed at data"


def test_an_unexpected_error_in_a_stage_is_a_failed_stage_not_a_rejection(tmp_path, capsys, monkeypatch):
    """A bug inside a stage is an error (exit 1), neither bad input (2) nor the gate's 'rejected' (3, which
    scripts/demo.sh reads as a finished demo): one message, the traceback in a file, and the next run
    continues there."""
    from harness import data

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "chats.jsonl", learnable_chats(12))

    def broken(config, force):
        return {}["a bug"]

    monkeypatch.setattr(data, "run", broken)
    args = ["cycle", "run.id=b1", "model.base=builtin:tiny-random", "gate.incumbent=builtin:tiny-random",
            f"data.sources=[{{path: {tmp_path / 'chats.jsonl'}}}]", "--until", "data"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "the cycle stopped at stage 'data': KeyError: 'a bug'" in err and "Traceback" not in err
    trace = tmp_path / "runs" / "b1" / "data-error.txt"
    assert "Traceback" in trace.read_text() and "runs/b1/data-error.txt" in err and "--resume b1' continues at data" in err
    assert _state(tmp_path / "runs" / "b1")["stages"]["data"]["status"] == "failed"
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    assert _state(tmp_path / "runs" / "b1")["stages"]["data"]["status"] == "done"
