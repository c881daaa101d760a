"""Demo cycle wall time: the README's main job, ``harness cycle`` on examples/demo/cycle.yaml.

Runs the whole cycle in a fresh folder with a fresh harness home (built-in model preparation, Label
Studio's first start and an empty evaluation cache included, as on a user's first run after set-up),
then runs it again unchanged in the same process tree: the second run must skip every stage. Prints
each stage's time, the wall time against the 15-minute goal, and the re-run/first-run ratio.

With ``--fresh-clone`` it measures what a new user does instead: a ``git clone`` of this repository's
HEAD into a temporary folder, an empty home folder, then ``bash scripts/setup.sh`` and
``bash scripts/demo.sh`` (the README's first command) timed separately, with the cycle's per-stage
times from its ``cycle.json``. Set-up then downloads what pip's cache would otherwise hold.

    .venv/bin/python bench/demo_cycle.py [--json out.json] [--fresh-clone] [overrides...]
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


def _fresh_clone(overrides: list[str]) -> dict:
    """Set-up and the README's first command on a fresh clone with an empty home folder."""
    with tempfile.TemporaryDirectory(prefix="demo-clone-") as tmp:
        clone, home = Path(tmp) / "clone", Path(tmp) / "home"
        home.mkdir()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items()
               if k not in ("HARNESS_HOME", "HARNESS_LEDGER", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV")}
        env["HOME"] = str(home)
        times = {}
        for step, cmd in (("setup", ["bash", "scripts/setup.sh"]), ("demo", ["bash", "scripts/demo.sh", *overrides])):
            print(f"{step}: {' '.join(cmd)} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            with open(Path(tmp) / f"{step}.log", "w") as log:
                code = subprocess.call(cmd, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
            times[step] = time.perf_counter() - started
            if code != 0:
                sys.exit(f"{step} failed (exit code {code}); its log: {(Path(tmp) / f'{step}.log').read_text()[-3000:]}")
        state = json.loads((clone / "runs" / "demo" / "cycle.json").read_text())
        subprocess.call([str(clone / ".venv/bin/harness"), "feedback", "stop"], cwd=clone, env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cycle_s = sum(v.get("seconds") or 0 for v in state["stages"].values())
    return {"setup_s": times["setup"], "demo_s": times["demo"], "cycle_stages_s": cycle_s,
            "stages_s": {k: v.get("seconds") for k, v in state["stages"].items()},
            "summaries": {k: v.get("summary") for k, v in state["stages"].items()}, "outcome": state["outcome"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--fresh-clone", action="store_true", help="clone, set up and run scripts/demo.sh with an empty home")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. sft.max_steps=4 for a quick check")
    args = ap.parse_args()
    if args.fresh_clone:
        r = _fresh_clone(["examples/demo/cycle.yaml", *args.overrides] if args.overrides else [])
        print(f"\nfresh clone on {os.cpu_count()} CPU cores: outcome {r['outcome']}")
        print(f"  set-up (scripts/setup.sh, empty home)  {r['setup_s']:>6.0f} s")
        for name, secs in r["stages_s"].items():
            print(f"  {name:<12}{secs:>8.0f} s  {r['summaries'][name]}")
        print(f"scripts/demo.sh {r['demo_s']:.0f} s ({r['demo_s'] / 60:.1f} min; stages {r['cycle_stages_s']:.0f} s); "
              f"goal <= {GOAL_S} s: ratio {r['demo_s'] / GOAL_S:.2f}")
        worst = sorted(r["stages_s"].items(), key=lambda kv: -(kv[1] or 0))[:4]
        print("costliest stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in worst))
        if args.json:
            args.json.write_text(json.dumps({**r, "goal_s": GOAL_S, "ratio_to_goal": r["demo_s"] / GOAL_S,
                                             "cpu_count": os.cpu_count()}, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="demo-cycle-") as tmp:
        work, home = Path(tmp) / "work", Path(tmp) / "home"
        work.mkdir()
        print("running the demo cycle (first run) ...", file=sys.stderr, flush=True)
        first, code = _cycle(work, home, args.overrides)
        if code not in (0, 3):  # 3: the gate rejected the candidate, a legitimate outcome
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
