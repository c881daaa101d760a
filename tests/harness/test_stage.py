"""The stage contract and the runner's planning: which stages a config runs, which re-run after a change
of which key, and a third-party stage (a package under tests/plugins, found through its entry point)
running inside a cycle with its own config section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cycle, plugins
from harness.cli import main
from harness.config import config_model, load_config
from harness.errors import HarnessError
from harness.stage import Stage, StageContext, StageResult

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo" / "cycle.yaml"
PLUGIN_DIR = REPO / "tests" / "plugins"
ALL = ["data", "sft", "eval", "feedback", "reward", "dpo", "online", "final_eval", "review", "gate", "promote", "report"]


def test_every_shipped_stage_has_the_one_shape():
    found = plugins.stages()
    assert list(found) == ALL
    for name, stage in found.items():
        assert isinstance(stage, Stage) and stage.name == name and callable(stage.run) and stage.title
        assert all(need in found and ALL.index(need) < ALL.index(name) for need in stage.needs)
        assert stage.section is None or stage.section in config_model().model_fields
    result = StageResult(summary="ok")
    assert result.schema_version == 1 and result.status == "done"
    with pytest.raises(Exception):
        StageResult(summary="x", surprise=1)  # typed: no stray fields


@pytest.mark.parametrize("overrides, left_out", [
    ([], []),
    (["cycle.align=[]"], ["reward", "dpo", "online"]),
    (["cycle.align=[dpo]"], ["reward", "online"]),
    (["cycle.align=[online]"], ["dpo"]),
    (["cycle.review_final=false"], ["review"]),
])
def test_plan_follows_the_config(overrides, left_out):
    assert [s.name for s in cycle.plan(load_config(DEMO, overrides))] == [s for s in ALL if s not in left_out]


def _completed(tmp_path, overrides=()):
    """A run whose every stage is recorded complete under the current keys (as after a finished cycle)."""
    cfg = load_config(DEMO, [f"run.root={tmp_path}", "gate.incumbent=builtin:smollm2-135m-instruct", *overrides])
    runner = cycle._runner(cfg)
    for stage in runner.stages.values():
        runner.state["stages"][stage.name] = {"status": "done", "key": runner.key(stage), "outputs": {"paths": []}}
    runner.save()
    return cfg


@pytest.mark.parametrize("change, reruns", [
    ([], []),
    (["dpo.beta=0.2"], ["dpo", "online", "final_eval", "review", "gate", "promote", "report"]),
    (["online.kl_coef=0.1"], ["online", "final_eval", "review", "gate", "promote", "report"]),
    (["reward.epochs=2"], ["reward", "online", "final_eval", "review", "gate", "promote", "report"]),
    (["sft.max_steps=30"], ALL[1:]),
    (["feedback.max_new_tokens=80"], ["feedback", "reward", "dpo", "online", "final_eval", "review", "gate", "promote",
                                      "report"]),
    (["feedback.wait_minutes=5", "sft.logging_steps=1"], []),  # waiting and logging change no result
    (["eval.bootstrap_resamples=500"], ["eval", "final_eval", "gate", "promote", "report"]),
    (["registry.model_name=other"], ["promote", "report"]),
    (["cycle.pdf=false"], ["report"]),
    (["run.seed=7"], ALL),
    # the preference stages' own seeds: only they and what follows run again (bench/alignment_effect.py)
    (["reward.seed=1", "dpo.seed=1", "online.seed=1"], ["reward", "dpo", "online", "final_eval", "review", "gate",
                                                         "promote", "report"]),
])
def test_which_stages_rerun_after_a_change(tmp_path, change, reruns):
    cfg = _completed(tmp_path)
    changed = load_config(DEMO, [f"run.root={tmp_path}", "gate.incumbent=builtin:smollm2-135m-instruct", *change])
    assert [name for name, runs in cycle.preview(changed) if runs] == reruns
    assert [name for name, runs in cycle.preview(cfg, from_stage="gate") if runs] == ["gate", "promote", "report"]
    # a preview changes nothing on disk
    assert all(r["status"] == "done" for r in json.loads(cycle.state_path(cfg.run_dir()).read_text())["stages"].values())


def test_dry_run_from_the_command_line(tmp_path, capsys):
    _completed(tmp_path)
    args = ["cycle", "--config", str(DEMO), f"run.root={tmp_path}", "gate.incumbent=builtin:smollm2-135m-instruct"]
    assert main([*args, "dpo.beta=0.3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("unchanged, skipped") == 5 and out.count("runs") >= 7 and "dry run" in out


@pytest.fixture
def wordcount_plugin(monkeypatch):
    """The tests/plugins package installed the way pip would: on the path, with its entry points."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    plugins.stages.cache_clear()
    config_model.cache_clear()
    yield
    monkeypatch.undo()
    plugins.stages.cache_clear()
    config_model.cache_clear()


def test_a_third_party_stage_runs_inside_a_cycle(wordcount_plugin, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "word_count" in plugins.stages() and list(plugins.stages())[:3] == ["data", "word_count", "sft"]
    args = ["cycle", "--config", str(DEMO), "run.id=p1", "gate.incumbent=builtin:smollm2-135m-instruct",
            "--until", "word_count"]
    # its own section is part of the config schema, and refuses what it does not know
    assert main([*args, "word_count.min_wordz=3"]) == 2
    assert "word_count.min_wordz: unknown key" in capsys.readouterr().err
    assert main([*args, "word_count.min_words=40"]) == 0
    counts = json.loads((tmp_path / "runs" / "p1" / "word_count" / "counts.json").read_text())
    train = (tmp_path / "runs" / "p1" / "data" / "train.jsonl").read_text().splitlines()
    assert counts["chats"] == len(train) > 100 and counts["min_words"] == 40 and 0 < counts["short"] < counts["chats"]
    state = json.loads((tmp_path / "runs" / "p1" / "cycle.json").read_text())
    assert state["stages"]["word_count"]["status"] == "done" and "words in" in state["stages"]["word_count"]["summary"]
    assert state["outcome"] == "stopped after word_count (--until)"
    # unchanged: skipped; its own section changed: only it runs again
    assert main([*args, "word_count.min_words=40"]) == 0
    state = json.loads((tmp_path / "runs" / "p1" / "cycle.json").read_text())
    assert {k: v["this_run"] for k, v in state["stages"].items()} == {"data": "skipped", "word_count": "skipped"}
    assert main([*args, "word_count.min_words=5"]) == 0
    state = json.loads((tmp_path / "runs" / "p1" / "cycle.json").read_text())
    assert {k: v["this_run"] for k, v in state["stages"].items()} == {"data": "skipped", "word_count": "done"}
    # a stage that crashes (a bug, not bad input) exits 1, says where, and keeps the traceback in a file
    capsys.readouterr()
    assert main([*args, "word_count.crash=true"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "the cycle stopped at stage 'word_count': ZeroDivisionError: division by zero" in err
    assert "the traceback is in" in err and "Traceback" not in err


def test_a_plugin_that_breaks_the_contract_is_named(tmp_path, monkeypatch):
    from harness.errors import HarnessError

    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.stages]\nbroken = json:dumps\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.stages.cache_clear()
    try:
        with pytest.raises(HarnessError, match="'broken = json:dumps' is not a harness.stage.Stage"):
            plugins.stages()
    finally:
        monkeypatch.undo()
        plugins.stages.cache_clear()


def test_stage_context_finds_models_through_the_layout(tmp_path):
    cfg = load_config(DEMO, [f"run.root={tmp_path}"])
    ctx = StageContext(cfg, cfg.layout(), "builtin:smollm2-135m-instruct", ALL,
                       {"dpo": {"outputs": {"model": str(tmp_path / "elsewhere")}}})
    assert ctx.model("sft") == str((tmp_path / "demo" / "sft" / "adapter").resolve())
    assert ctx.model("dpo") == str((tmp_path / "elsewhere").resolve())
    assert ctx.final_stage == "online" and ctx.candidate == ctx.model("online")
    assert ctx.gate_config().gate.feedback_dir == cfg.layout().review


def test_plugin_sections_come_from_their_packages():
    """The kernel's config knows only its own sections; rlhf and feedback bring theirs through entry points."""
    from harness.config import CycleConfig

    kernel = set(CycleConfig.model_fields)
    assert kernel == {"run", "model", "data", "eval", "gate", "registry", "cycle"}
    full = config_model()
    assert {"sft", "merge", "feedback", "reward", "dpo", "online"} <= set(full.model_fields) - kernel
    assert full.model_fields["sft"].annotation.__module__ == "rlhf.config"
    assert full.model_fields["feedback"].annotation.__module__ == "feedback.config"
    # unknown keys inside a plugin section are still refused, with the file's line
    with pytest.raises(HarnessError, match="dpo.betta: unknown key"):
        load_config(None, ["dpo.betta=0.2"])
    assert load_config(None, ["dpo.beta=0.2"]).dpo.beta == 0.2


def test_a_copied_run_with_new_preference_seeds_reruns_only_the_preference_stages(tmp_path):
    """What bench/alignment_effect.py relies on: the run id is in no stage's key."""
    import shutil

    cfg = _completed(tmp_path)
    shutil.copytree(cfg.run_dir(), tmp_path / "copy")
    copy = load_config(DEMO, [f"run.root={tmp_path}", "run.id=copy", "gate.incumbent=builtin:smollm2-135m-instruct",
                              "reward.seed=3", "dpo.seed=3", "online.seed=3"])
    assert [name for name, runs in cycle.preview(copy) if runs][:3] == ["reward", "dpo", "online"]
    assert not {"data", "sft", "eval", "feedback"} & {name for name, runs in cycle.preview(copy) if runs}


def test_one_cycle_per_run_at_a_time(tmp_path, capsys, monkeypatch):
    """A second cycle on a run id that another process is writing stops at once and names that process."""
    import os
    import threading

    from harness._lock import file_lock, run_lock_path

    monkeypatch.chdir(tmp_path)
    args = ["cycle", "--config", str(DEMO), "run.id=busy", "gate.incumbent=builtin:smollm2-135m-instruct", "--until", "data"]
    held, release = threading.Event(), threading.Event()

    def other_cycle():  # holds the run the way a running 'harness cycle' does
        with file_lock(run_lock_path(tmp_path / "runs" / "busy")):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=other_cycle)
    holder.start()
    try:
        held.wait(60)
        assert main(args) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "run 'busy'" in err and f"is held by pid {os.getpid()}" in err and "use another run.id" in err
        assert not (tmp_path / "runs").exists()  # nothing was written
    finally:
        release.set()
        holder.join()
    assert main(args) == 0 and (tmp_path / "runs" / "busy" / "data" / "train.jsonl").is_file()


def test_a_stage_command_does_not_write_a_run_another_process_is_writing(tmp_path, capsys, monkeypatch):
    """Not only a second cycle: data, eval, gate, report and the feedback commands on a run that another
    process holds stop at once (exit 2), name that process and write nothing."""
    import os
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom harness._lock import file_lock, run_lock_path\n"
         "with file_lock(run_lock_path(Path(sys.argv[1]))):\n    print('held', flush=True)\n    time.sleep(120)\n",
         str(tmp_path / "runs" / "busy")], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "held"
        common = ["--config", str(DEMO), "run.id=busy"]
        for command in (["data", "prepare", *common], ["eval", "-s", "general_knowledge", *common], ["gate", *common],
                        ["report", "busy", "--config", str(DEMO)], ["feedback", "export", *common],
                        # a launched run too: the launching process takes the lock before it starts any rank
                        ["sft", "--launcher", "accelerate", "--accelerate-config", "ddp", *common]):
            assert main(command) == 2, command
            err = " ".join(capsys.readouterr().err.split())
            assert "run 'busy'" in err and f"is held by pid {holder.pid}" in err, (command, err)
        assert not (tmp_path / "runs").exists()  # nothing was written
    finally:
        holder.kill()
        holder.wait()
