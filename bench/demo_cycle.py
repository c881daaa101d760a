"""Demo cycle wall time: the README's main job, ``harness cycle`` on examples/demo/cycle.yaml.

Runs the whole cycle in a fresh folder with a fresh harness home (built-in model preparation, Label
Studio's first start and an empty evaluation cache included, as on a user's first run after set-up),
then runs it again unchanged in the same process tree: the second run must skip every stage. Prints
each stage's time, the wall time against the 15-minute goal, and the re-run/first-run ratio.

    .venv/bin/python bench/demo_cycle.py [--json out.json] [overrides...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 15 * 60


def _cycle(workdir: Path, home: Path, overrides: list[str]) -> tuple[float, int]:
    env = {**os.environ, "HARNESS_HOME": str(home), "HARNESS_LEDGER": str(home / "ledger.jsonl"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    started = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "harness.cli", "cycle", "--config", str(REPO / "examples/demo/cycle.yaml"),
                            *overrides], cwd=workdir, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. sft.max_steps=4 for a quick check")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="demo-cycle-") as tmp:
        work, home = Path(tmp) / "work", Path(tmp) / "home"
        work.mkdir()
        print("running the demo cycle (first run) ...", file=sys.stderr, flush=True)
        first, code = _cycle(work, home, args.overrides)
        if code not in (0, 1):  # 1: the gate rejected the candidate, a legitimate outcome
            sys.exit(f"the demo cycle failed (exit code {code})")
        state = json.loads((work / "runs" / "demo" / "cycle.json").read_text())
        print("running it again, unchanged ...", file=sys.stderr, flush=True)
        second, code2 = _cycle(work, home, args.overrides)
        state2 = json.loads((work / "runs" / "demo" / "cycle.json").read_text())
        subprocess.call([sys.executable, "-m", "harness.cli", "feedback", "stop"], env={**os.environ, "HARNESS_HOME": str(home)},
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stages = {k: v.get("seconds") for k, v in state["stages"].items()}
    rerun_ran = sorted(k for k, v in state2["stages"].items() if v.get("this_run") != "skipped")
    print(f"\ndemo cycle on {os.cpu_count()} CPU cores: outcome {state['outcome']}")
    for name, secs in stages.items():
        print(f"  {name:<12}{secs:>8.0f} s")
    print(f"wall time {first:.0f} s ({first / 60:.1f} min); goal <= {GOAL_S} s: ratio {first / GOAL_S:.2f}")
    print(f"unchanged re-run {second:.0f} s: ratio re-run/first {second / first:.3f}; stages re-run: {rerun_ran or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"wall_s": first, "goal_s": GOAL_S, "ratio_to_goal": first / GOAL_S,
                                         "rerun_s": second, "rerun_ratio": second / first, "rerun_stages": rerun_ran,
                                         "outcome": state["outcome"], "stages_s": stages, "exit_codes": [code, code2],
                                         "cpu_count": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
