"""scripts/demo.sh, the README's first command, as a user runs it: a cycle that crashes, or stops on bad
input, is an error with the cycle's own exit code, never a finished demo (exit 0).

(The suite runs after scripts/setup.sh, so the script's set-up step is already done and instant.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import learnable_chats, write_jsonl

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.sh"
PLUGIN_DIR = REPO / "tests" / "plugins"


def _demo(tmp_path: Path, *overrides: str, plugins: bool = False) -> subprocess.CompletedProcess[str]:
    write_jsonl(tmp_path / "chats.jsonl", learnable_chats(12))
    write_jsonl(tmp_path / "prompts.jsonl", [{"id": f"p{i}", "prompt": f"Which queue takes ticket {i}?"} for i in range(4)])
    config = {"run": {"id": "crash", "root": str(tmp_path / "runs")}, "model": {"base": "builtin:tiny-random"},
              "data": {"sources": [{"path": "chats.jsonl"}], "dedupe": {"near": False}},
              "feedback": {"prompts": "prompts.jsonl"},
              "gate": {"incumbent": "builtin:tiny-random"}}
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "MLFLOW_"))}
    env.update(HARNESS_HOME=str(tmp_path / "home"), HARNESS_LEDGER=str(tmp_path / "ledger.jsonl"))
    if plugins:  # the third-party test stage, found through its entry point; it can fail as a bug would
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGIN_DIR), env.get("PYTHONPATH")) if p)
    if not (REPO / ".venv" / "bin" / "harness").exists():
        pytest.skip("scripts/demo.sh runs the project's .venv (made by scripts/setup.sh)")
    try:
        return subprocess.run(["bash", str(DEMO), str(path), *overrides], capture_output=True, text=True, env=env,
                              timeout=600, cwd=tmp_path)
    finally:  # the cycle starts Label Studio for its later stages; a stopped cycle leaves it running for the rerun
        subprocess.run([str(REPO / ".venv" / "bin" / "harness"), "feedback", "stop", "--config", str(path)],
                       capture_output=True, env=env, timeout=120, cwd=tmp_path)


def test_a_crashing_stage_makes_the_demo_script_fail_with_the_cycles_exit_code(tmp_path):
    proc = _demo(tmp_path, "word_count.crash=true", plugins=True)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "The demo cycle stopped (exit code 1)" in proc.stdout
    assert "the cycle stopped at stage 'word_count': ZeroDivisionError" in proc.stderr
    assert "Demo cycle finished" not in proc.stdout and "audit.html" not in proc.stdout
    assert (tmp_path / "runs" / "crash" / "word_count-error.txt").is_file()


def test_bad_input_inside_a_stage_makes_the_demo_script_fail_with_exit_code_2(tmp_path):
    proc = _demo(tmp_path, "data.sources=[{path: no-such-file.jsonl}]")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "The demo cycle stopped (exit code 2)" in proc.stdout and "does not exist" in proc.stderr
    assert "Demo cycle finished" not in proc.stdout


def test_a_bad_override_is_refused_before_anything_runs(tmp_path):
    proc = _demo(tmp_path, "sft.no_such_key=1")
    assert proc.returncode == 2 and "no_such_key" in proc.stderr
    assert not (tmp_path / "runs").exists()
