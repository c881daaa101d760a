"""Every benchmark, one table: runs each bench script (each measures against its own baseline in the
same script) and prints the ratios side by side, with the goals, plus a JSON file.

    .venv/bin/python bench/run_all.py [--only sft_throughput,gate_power] [--json bench/results.json]

Benchmarks: SFT throughput (harness vs plain TRL), evaluation overhead and cache (harness vs the
lm_eval CLI), DPO memory (implicit vs explicit reference model), gate power (false-promote rate and
power of the shipped policy), demo cycle wall time (against the 15-minute goal, and an unchanged re-run).
The whole set takes about 22 minutes on 2 CPU cores; figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _sft(r: dict) -> list[tuple]:
    by = {x["variant"]: x for x in r["results"]}
    names = list(by)
    a, b = by[names[0]], by[names[-1]]
    return [("SFT throughput", "tokens/s harness / TRL", r["ratio"], ">= 1.5"),
            ("SFT throughput", "peak memory harness / TRL", b["peak_rss_mb"] / a["peak_rss_mb"], "<= 1.0")]


def _eval(r: dict) -> list[tuple]:
    out = []
    for row in r["timings"]:
        goal = "<= 0.5" if row["scenario"] == "1 model" else "<= 0.35"
        out.append(("eval overhead", f"{row['scenario']}: harness / lm_eval CLI", row["ratio"], goal))
        out.append(("eval cache", f"{row['scenario']}: cached / first", row["cached_ratio"], "<= 0.05"))
    return out


def _dpo(r: dict) -> list[tuple]:
    goals = {"peak_rss": "< 1.0", "step_time": "<= 1.1", "peak_gpu": "< 1.0"}
    return [("DPO memory", f"{k} implicit / explicit reference", v, goals.get(k, "")) for k, v in r["ratios"].items()]


def _gate(r: dict) -> list[tuple]:
    worst = r["worst_false_promote"]
    return [("gate power", f"whole policy, worst false promote at a rule's boundary ({worst['rule']})", worst["rate"],
             "<= 0.05"),
            ("gate power", "whole policy, every rule good: promoted", r["whole_policy"]["power"]["rate"], "(reported)")]


def _demo(r: dict) -> list[tuple]:
    return [("demo cycle", f"wall time {r['wall_s'] / 60:.1f} min / 15 min goal", r["ratio_to_goal"], "<= 1.0"),
            ("demo cycle", "unchanged re-run / first run", r["rerun_ratio"], "<= 0.05")]


BENCHES: dict[str, tuple[str, list[str], Callable[[Any], list[tuple]]]] = {
    "sft_throughput": ("sft_throughput.py", [], _sft),
    "eval_overhead": ("eval_overhead.py", [], _eval),
    "dpo_memory": ("dpo_memory.py", [], _dpo),
    "gate_power": ("gate_power.py", [], _gate),
    "demo_cycle": ("demo_cycle.py", [], _demo),
}


def _machine() -> dict[str, Any]:
    from harness.artifacts import environment_info

    env = environment_info()
    return {**env["hardware"], "packages": {k: env["packages"].get(k) for k in ("torch", "transformers", "trl", "lm_eval")},
            "git_sha": env["git_sha"], "python": platform.python_version()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHES))
    ap.add_argument("--json", type=Path, default=HERE / "results.json", help="where the combined results go")
    args = ap.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(BENCHES)}")
    rows: list[tuple] = []
    raw: dict[str, Any] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in chosen:
            script, extra, extract = BENCHES[name]
            out = Path(tmp) / f"{name}.json"
            print(f"[{chosen.index(name) + 1}/{len(chosen)}] {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            code = subprocess.call([sys.executable, str(HERE / script), "--json", str(out), *extra],
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
            seconds = time.perf_counter() - started
            if code != 0 or not out.is_file():
                failed.append(name)
                print(f"{name} failed (exit code {code})", file=sys.stderr)
                continue
            raw[name] = {"seconds": seconds, "result": json.loads(out.read_text())}
            rows += extract(raw[name]["result"])
    width = max((len(r[1]) for r in rows), default=20) + 2
    print(f"\n{'benchmark':<16}{'measure':<{width}}{'ratio':>9}  goal")
    for bench, measure, value, goal in rows:
        print(f"{bench:<16}{measure:<{width}}{value:>9.3f}  {goal}")
    machine = _machine()
    print(f"\nmachine: {machine['cpu']} ({machine['cpu_count']} cores), {machine.get('memory_gib')} GiB, "
          f"GPUs: {', '.join(machine.get('gpus', [])) or 'none'}")
    args.json.write_text(json.dumps({"machine": machine, "rows": [dict(zip(("benchmark", "measure", "ratio", "goal"), r)) for r in rows],
                                     "raw": raw, "failed": failed}, indent=2))
    print(f"results: {args.json}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
