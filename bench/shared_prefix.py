"""Shared-prefix scoring (`eval.shared_prefix`) against lm-eval's own HF scoring, in one process.

Scores SmolLM2-135M-Instruct (builtin) on the demo's evaluation suites with `harness eval`'s engine
twice per round, once with lm-eval's ``HFLM`` and once with ``SharedPrefixHFLM`` (each context run once
for all its continuations), alternating the order each round; the result cache is off. Prints the
scoring time per suite and in all, the ratio shared/HFLM, and the largest log-likelihood difference
between the two (in the dtype scored: float32 should agree to ~1e-5, bfloat16 rounds differently).

    .venv/bin/python bench/shared_prefix.py [--dtype auto|float32|bfloat16] [--rounds 2] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SUITES = ["domain/handbook_mcq", "retention/general_knowledge", "bias/crows_pairs", "bias/winobias"]
LIMITS = {"bias/crows_pairs": 200, "bias/winobias": 240}  # WinoBias as examples/demo/cycle.yaml; it scores 600 CrowS-Pairs


def _score(root: Path, shared: bool, dtype: str) -> tuple[dict[str, float], dict[str, list]]:
    from harness import evaluate
    from harness.config import load_config

    cfg = load_config(None, [
        "model.base=builtin:smollm2-135m-instruct", f"run.root={root}", f"run.id={'shared' if shared else 'hflm'}",
        "eval.suites=" + json.dumps(SUITES), "eval.suite_limits=" + json.dumps(LIMITS), f"eval.dtype={dtype}",
        "eval.use_cache=false", f"eval.shared_prefix={str(shared).lower()}",
    ])
    times: dict[str, float] = {}
    outputs: dict[str, list] = {}
    start = time.perf_counter()
    result = evaluate.run(cfg)
    total = time.perf_counter() - start
    for r in result.results:
        times[r.suite] = r.summary.get("seconds", float("nan"))
        outputs[r.suite] = [s["outputs"] for s in evaluate.load_samples(r.folder)]
    times["all"] = total
    return times, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from harness.models import inference_dtype

    dtype = inference_dtype(args.dtype)
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    outputs: dict[bool, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for shared in ((False, True) if rnd % 2 == 0 else (True, False)):
                times, outputs[shared] = _score(Path(tmp) / f"r{rnd}", shared, dtype)
                runs[shared].append(times)
                print(f"round {rnd + 1}: {'shared prefix' if shared else 'lm-eval HFLM'}: {times['all']:.1f}s", flush=True)
    diff, flips = 0.0, 0
    for suite in SUITES:
        for doc, doc0 in zip(outputs[True][suite], outputs[False][suite], strict=True):
            diff = max(diff, *(abs(a[0] - b[0]) for a, b in zip(doc, doc0, strict=True)))
            flips += int(max(range(len(doc)), key=lambda i: doc[i][0]) != max(range(len(doc0)), key=lambda i: doc0[i][0]))
    best = {s: {k: min(r[k] for r in runs[s]) for k in runs[s][0]} for s in runs}
    print(f"\nscoring in {dtype}, best of {args.rounds} (seconds):")
    print(f"{'suite':32s} {'HFLM':>8s} {'shared':>8s} {'ratio':>6s}")
    for key in [*SUITES, "all"]:
        a, b = best[False].get(key, float("nan")), best[True].get(key, float("nan"))
        print(f"{key:32s} {a:8.1f} {b:8.1f} {b / a:6.2f}")
    print(f"largest log-likelihood difference: {diff:.2e}; documents whose top choice differs: {flips}")
    if args.json:
        args.json.write_text(json.dumps({"dtype": dtype, "rounds": args.rounds, "best": {str(k): v for k, v in best.items()},
                                         "max_abs_diff": diff, "top_choice_flips": flips}, indent=2))


if __name__ == "__main__":
    main()
