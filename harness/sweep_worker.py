"""One variant of ``harness sweep``, in its own process: ``python -m harness.sweep_worker SPEC.json``.

Fine-tunes through the installed ``sft`` stage, scores base and candidate through :mod:`harness.evaluate`
(the base comes from the cache after the first variant), times batched greedy generation of both in this
process (:mod:`harness.latency`, alternating base and candidate), and writes the variant's record."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, read_json, read_jsonl, utc_now
from harness.config import CycleConfig, load_config
from harness.errors import HarnessError

__all__ = ["run_variant", "weights_size"]

_WEIGHTS = (".safetensors", ".bin", ".pt")


def weights_size(folder: Path) -> int:
    """Bytes of weight files under ``folder`` (what a method adds on disk; tokenizer files left out)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and p.suffix in _WEIGHTS)


def _prompts(data_dir: Path, n: int) -> list[str]:
    rows = read_jsonl(data_dir / "validation.jsonl") + read_jsonl(data_dir / "train.jsonl")
    out: list[str] = []
    for row in rows:
        user = next((m["content"] for m in row.get("messages", []) if m.get("role") == "user"), None)
        if user and user not in out:
            out.append(user)
        if len(out) == n:
            break
    return out


def _latency(config: CycleConfig, candidate: str, prompts: list[str], max_new_tokens: int) -> dict[str, Any]:
    """Base and candidate timed in this process, measurements interleaved so machine noise hits both."""
    from harness.latency import measure_generation
    from harness.models import inference_dtype, load_model, load_tokenizer, resolve
    from harness.scoring import eval_device

    dtype, device = inference_dtype(config.eval.dtype), eval_device(config.eval)
    loaded = {}
    for role, ref in (("base", config.model.base), ("candidate", candidate)):
        spec = resolve(ref, trust_remote_code=config.model.trust_remote_code)
        loaded[role] = (load_model(spec, dtype=dtype).eval().to(device), load_tokenizer(spec))
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "candidate": []}
    for _ in range(3):
        for role in ("base", "candidate"):
            model, tok = loaded[role]
            runs[role].append(measure_generation(model, tok, prompts, max_new_tokens=max_new_tokens,
                                                 batch_size=len(prompts), repeats=1, warmup=1 if not runs[role] else 0))

    def median(role: str, key: str) -> float:
        values = sorted(r[key] for r in runs[role])
        return values[len(values) // 2]

    out = {"dtype": dtype, "device": device, "prompts": len(prompts), "max_new_tokens": max_new_tokens, "unmerged": True}
    for role in ("base", "candidate"):
        out[role] = {"ttft_s": median(role, "ttft_s"), "tokens_per_s": median(role, "tokens_per_s")}
    out["tokens_per_s_ratio"] = out["candidate"]["tokens_per_s"] / out["base"]["tokens_per_s"]
    out["ttft_ratio"] = out["candidate"]["ttft_s"] / out["base"]["ttft_s"]
    return out


def run_variant(spec: dict[str, Any]) -> dict[str, Any]:
    from harness import evaluate, plugins
    from harness.stage import StageContext

    config = load_config(spec["config"], spec["overrides"])
    stages = plugins.stages()
    if "sft" not in stages:
        raise HarnessError("no 'sft' stage is installed", hint="install the harness with its rlhf package")
    layout = config.layout()
    ctx = StageContext(config=config, layout=layout, incumbent=config.model.base, plan=["sft"], records={},
                       force=bool(spec.get("force")))
    t0, wall0 = time.perf_counter(), time.time()
    sft = stages["sft"].run(ctx, config.sft)
    sft_seconds = time.perf_counter() - t0
    candidate = str(Path(sft.outputs["model"]).resolve())
    result = read_json(layout.result("sft"))
    _log.info(f"evaluating the base model and the {config.sft.method} candidate")
    t1 = time.perf_counter()
    ev = evaluate.run(config.model_copy(update={"eval": config.eval.model_copy(
        update={"models": [config.model.base, candidate]})}))
    eval_seconds = time.perf_counter() - t1
    suites: dict[str, dict[str, str]] = {}
    for r in ev.results:
        role = "candidate" if r.model == candidate else "base"
        suites.setdefault(r.suite, {})[role] = str(r.folder)
    base_cached = all(r.cached for r in ev.results if r.model != candidate)
    latency = None
    lat = spec.get("latency") or {}
    prompts = _prompts(Path(config.sft.data_dir), int(lat.get("prompts", 8)))
    if prompts and lat.get("prompts", 8) > 0:
        _log.info(f"timing generation of {len(prompts)} prompts: base and candidate")
        latency = _latency(config, candidate, prompts, int(lat.get("max_new_tokens", 32)))
    m = result["metrics"]
    record = {
        "schema_version": 1, "kind": "sweep_variant", "status": "complete", "finished": utc_now(),
        "fingerprint": spec["fingerprint"], "variant": spec["variant"], "method": config.sft.method,
        "base_model": config.model.base, "candidate": candidate, "model_kind": result.get("model_kind"),
        "suites": suites, "base_from_cache": base_cached,
        "cost": {
            "learning_rate": result.get("learning_rate"), "trainable_parameters": m.get("trainable_parameters"), "total_parameters": m.get("total_parameters"),
            "peak_rss_mb": m.get("peak_rss_mb"), "peak_gpu_mb": m.get("peak_gpu_mb"),
            "train_tokens_per_s": m.get("tokens_per_second"), "train_seconds": m.get("train_seconds"),
            "global_step": m.get("global_step"),
            "sft_wall_seconds": round(sft_seconds, 1), "eval_seconds": round(eval_seconds, 1),
            "adapter_bytes": weights_size(Path(candidate)), "sft_reused": layout.result("sft").stat().st_mtime < wall0,
            "resumed": m.get("resumed_from") is not None,  # time, speed and memory cover the part after the restart
        },
        "validation_loss": {"initial": m.get("eval_loss_initial"), "final": m.get("eval_loss_final")},
        "latency": latency,
    }
    atomic_write_json(Path(spec["output"]), record)
    return record


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.sweep_worker SPEC.json", file=sys.stderr)
        return 2
    try:
        run_variant(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    except HarnessError as exc:
        _log.warn(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
