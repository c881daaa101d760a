"""The demo's evaluation stage, as it ran when issue 19 was filed and as it runs now, in one script.

Scores the base model (SmolLM2-135M-Instruct) and a LoRA candidate on exactly the suites and limits
of ``examples/demo/cycle.yaml``'s ``eval`` section, with the result cache off, twice per round:

* before: lm-eval's ``HFLM`` scoring each choice with its context, float32, each model loaded from
  disk (``eval.shared_prefix=false eval.share_base=false eval.dtype=float32``);
* now: the defaults (shared-prefix scoring, the base loaded once for the base and its adapter, the
  dtype ``auto`` picks on this machine).

Prints each suite's scoring time and the stage's wall time for both, and now/before (the issue's goal
for the demo's evaluation stages: <= 0.6). The two score in different dtypes where ``auto`` picks
bfloat16, so their per-sample results are compared too (documents whose right/wrong outcome differs).

    .venv/bin/python bench/eval_stage.py [--rounds 1] [--json F]
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

BEFORE = ["eval.shared_prefix=false", "eval.share_base=false", "eval.dtype=float32"]


def _stage(root: Path, models: list[str], settings: list[str]) -> tuple[float, dict[str, float], dict[str, list]]:
    from harness import evaluate
    from harness.config import load_config

    cfg = load_config(REPO / "examples/demo/cycle.yaml", [
        f"run.root={root}", "run.id=bench", "eval.models=" + json.dumps(models), "eval.use_cache=false", *settings])
    start = time.perf_counter()
    result = evaluate.run(cfg)
    wall = time.perf_counter() - start
    seconds: dict[str, float] = {}
    metrics: dict[str, list] = {}
    for r in result.results:
        key = f"{'base' if r.model == models[0] else 'candidate'} {r.suite}"
        seconds[key] = r.summary["seconds"]
        metrics[key] = [s["metrics"] for s in evaluate.load_samples(r.folder)]
    return wall, seconds, metrics


def _outcome_differs(a: dict, b: dict) -> bool:
    """Whether a document's discrete outcomes (right/wrong, stereotype preferred or not) differ; continuous ones
    such as CrowS-Pairs' likelihood difference, which float32 and bfloat16 never round alike, are left out."""
    def discrete(v: object) -> bool:
        return isinstance(v, (bool, int)) or v in (0.0, 1.0)

    return any(a[k] != b.get(k) for k in a if discrete(a[k]) and discrete(b.get(k)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from bench.eval_overhead import make_adapter
    from harness.models import inference_dtype, prepare_builtin

    runs: dict[str, list[tuple[float, dict[str, float]]]] = {"before": [], "now": []}
    metrics: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        adapter = make_adapter(prepare_builtin("smollm2-135m-instruct"), tmp / "adapter", b_scale=0.1)
        models = ["builtin:smollm2-135m-instruct", str(adapter)]
        for rnd in range(args.rounds):
            for name in (("before", "now") if rnd % 2 == 0 else ("now", "before")):
                wall, seconds, metrics[name] = _stage(tmp / f"{name}{rnd}", models, BEFORE if name == "before" else [])
                runs[name].append((wall, seconds))
                print(f"round {rnd + 1}: {name}: {wall:.1f}s", flush=True)
    best = {name: min(r, key=lambda x: x[0]) for name, r in runs.items()}
    print(f"\nthe demo's evaluation stage (base + LoRA candidate), best of {args.rounds} round(s); now scores in "
          f"{inference_dtype('auto')}:")
    print(f"{'':44s} {'before':>8s} {'now':>8s} {'ratio':>6s}")
    for key in best["before"][1]:
        a, b = best["before"][1][key], best["now"][1][key]
        print(f"{key:44s} {a:8.1f} {b:8.1f} {b / a:6.2f}")
    a, b = best["before"][0], best["now"][0]
    print(f"{'stage wall time':44s} {a:8.1f} {b:8.1f} {b / a:6.2f}   (goal <= 0.6)")
    differ = {key: sum(_outcome_differs(x, y) for x, y in zip(metrics["before"][key], metrics["now"][key], strict=True))
              for key in metrics["before"]}
    print("documents whose per-sample right/wrong outcomes differ between the two: "
          + ", ".join(f"{k} {v}/{len(metrics['before'][k])}" for k, v in differ.items()))
    if args.json:
        args.json.write_text(json.dumps({"dtype_now": inference_dtype("auto"), "rounds": args.rounds,
                                         "before": best["before"], "now": best["now"], "ratio": b / a,
                                         "metrics_differ": differ}, indent=2))


if __name__ == "__main__":
    main()
