"""Evaluation engine: score models on suites with lm-eval, write per-sample results and summaries.

``run(config) -> EvalResult`` scores every model in ``config.eval.models`` (hub id, folder, builtin,
or an adapter folder = base + adapter) on every selected suite. Each model is loaded once for all
its suites and wrapped in lm-eval's ``HFLM``; each suite becomes one lm-eval task. Results land in

``<run>/eval/<model-fingerprint>/<group>/<suite>/samples.jsonl`` (one line per document: doc id,
prompt hash, target, outputs, per-sample metrics) and ``summary.json`` (each metric with a bootstrap
95 % CI, n, per-category breakdown, suite version, data hash, library versions).

Results are cached under ``$HARNESS_HOME/eval-cache`` by (model fingerprint, suite version, data
hash, settings): an unchanged model is never scored twice, and a changed one never reuses another's
answers. (lm-eval's own request cache is keyed without the model, so it is not used.)

With ``eval.rag`` set, the chosen suites are also scored with retrieved passages in their prompts, as
``<group>/<suite>+rag`` (own folder, data hash and cache key; retrieval recall@k in its summary): see
:mod:`harness.rag`.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import (
    ARTIFACT_VERSION, atomic_write_jsonl, read_jsonl, sha256_bytes, sha256_file, stable_hash,
    staged_dir, utc_now,
)
from harness.schemas import EvalSummary, artifact_dict, write_artifact
from harness.config import CycleConfig, EvalConfig
from harness.errors import HarnessError
from harness.models import fingerprint, harness_home, inference_dtype, resolve
from harness.rag import RagSuite, variants as rag_variants
from harness.scoring import LOG_SOFTMAX_DTYPE, ModelSlot, SharedBase, check_backend, score_kl_drift, score_lm_eval
from harness.stats import bootstrap_ci, resample_statistic
from harness.suites import Suite, available_suites, read_docs, select_suites

__all__ = ["EvalResult", "SuiteResult", "run", "suite_data_hash", "load_summary", "load_samples"]


@dataclass(frozen=True)
class SuiteResult:
    model: str
    fingerprint: str
    suite: str
    folder: Path
    cached: bool
    summary: dict[str, Any]


@dataclass
class EvalResult:
    output_dir: Path
    results: list[SuiteResult] = field(default_factory=list)

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.results:
            for name, m in r.summary["metrics"].items():
                rows.append({"model": r.model, "suite": r.suite, "metric": name, "estimate": m["estimate"],
                             "ci_low": m["ci_low"], "ci_high": m["ci_high"], "n": m["n"], "cached": r.cached})
        return rows


def suite_data_hash(suite: Suite, files: list[Path]) -> str:
    """Hash of everything that defines a suite's answers: its YAML, hooks and data files."""
    parts = [sha256_file(suite.yaml_path)]
    for hooks in (suite.folder / "hooks.py", suite.folder.parent / "hooks.py"):
        if hooks.is_file():
            parts.append(sha256_file(hooks))
    parts += [f"{p.name}:{sha256_file(p)}" for p in files]
    return sha256_bytes("|".join(parts).encode())


def load_summary(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise HarnessError(f"{folder} holds no evaluation summary (summary.json)",
                           hint="point at <run>/eval/<fingerprint>/<group>/<suite>, or a model folder under <run>/eval")
    return artifact_dict(path, EvalSummary)


def load_samples(folder: str | Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(folder) / "samples.jsonl")


def _summarize(suite: Suite, records: list[dict[str, Any]], cfg: EvalConfig, seed: int) -> tuple[dict, dict]:
    metrics: dict[str, Any] = {}
    by_category: dict[str, dict[str, Any]] = {}
    cats = sorted({str(r["category"]) for r in records if r.get("category") is not None})
    for m in suite.spec.metrics:
        if not m.per_sample:
            continue
        values = [r["metrics"][m.name] for r in records if r["metrics"].get(m.name) is not None]
        lo, hi = bootstrap_ci(values, n_resamples=cfg.bootstrap_resamples, seed=seed)
        metrics[m.name] = {"estimate": sum(values) / len(values) if values else math.nan, "ci_low": lo, "ci_high": hi,
                           "n": len(values)}
        for cat in cats:
            vals = [r["metrics"][m.name] for r in records if str(r.get("category")) == cat
                    and r["metrics"].get(m.name) is not None]
            by_category.setdefault(cat, {})[m.name] = {"estimate": sum(vals) / len(vals) if vals else math.nan,
                                                        "n": len(vals)}
    if suite.spec.summary:
        hook = suite.hook(suite.spec.summary)
        summary = hook(records)
        for m in suite.spec.metrics:
            if m.per_sample:
                continue
            value = summary["metrics"].get(m.name)
            units = (summary.get("units") or {}).get(m.name)
            if units is not None:  # a mean over units of several documents (e.g. facts): resample the units
                lo, hi = bootstrap_ci(list(units.values()), n_resamples=cfg.bootstrap_resamples, seed=seed)
                metrics[m.name] = {"estimate": value, "ci_low": lo, "ci_high": hi, "n": len(units)}
                continue
            lo, hi = resample_statistic(records, lambda rs, name=m.name: hook(rs)["metrics"].get(name),
                                        n_resamples=max(100, cfg.bootstrap_resamples // 4), seed=seed)
            metrics[m.name] = {"estimate": value, "ci_low": lo, "ci_high": hi, "n": summary.get("n", len(records))}
        for cat, values in summary.get("by_category", {}).items():
            for name, value in values.items():
                by_category.setdefault(cat, {})[name] = value if isinstance(value, dict) else {"estimate": value}
    for m in suite.spec.metrics:
        if m.name in metrics:
            metrics[m.name].update({"higher_is_better": m.higher_is_better, "ideal": m.ideal,
                                    "description": m.description})
    return metrics, by_category


# ---------------------------------------------------------------------------------------- run


def _copy_into(src: Path, dest: Path) -> None:
    """Replace ``dest`` with a copy of ``src``'s files, atomically (cache <-> run folder)."""
    with staged_dir(dest) as tmp:
        for f in src.iterdir():
            shutil.copy2(f, tmp / f.name)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("lm_eval", "transformers", "torch", "alignment-harness"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _suite_config(cfg: EvalConfig, suite: Suite) -> EvalConfig:
    """``cfg`` with the suite's own document limit (``eval.suite_limits``: by id, then name, then group)."""
    for name in (suite.id, suite.spec.name, suite.spec.group):
        if name in cfg.suite_limits:
            return cfg.model_copy(update={"limit": cfg.suite_limits[name]})
    return cfg


def run(config: CycleConfig) -> EvalResult:
    """Score ``config.eval.models`` (default: ``model.base``) on ``config.eval.suites``."""
    cfg = config.eval
    seed = cfg.seed if cfg.seed is not None else config.run.seed
    out = cfg.output_dir if cfg.output_dir is not None else config.layout().eval
    check_backend(cfg)
    suites = select_suites(cfg.suites, cfg.suite_dirs)
    named = {n.strip().strip("/") for n in cfg.suites}
    # A misspelt limit would silently score the whole suite; a limit for a suite not selected this time
    # (eval.suites overridden on the command line) is simply unused.
    available = available_suites(cfg.suite_dirs) if cfg.suite_limits else {}
    unknown = sorted(set(cfg.suite_limits) - {n for s in available.values() for n in (s.id, s.spec.name, s.spec.group)})
    if unknown:
        raise HarnessError(f"eval.suite_limits names {', '.join(map(repr, unknown))}: no such suite or group",
                           hint="suites: " + ", ".join(sorted(available)))
    # Check every suite's data before loading any model: bad input fails fast, with nothing written.
    prepared = []
    for suite in suites:
        if suite.spec.needs_retention_data and cfg.retention_data_dir is None:
            if suite.id not in named and suite.spec.name not in named:
                _log.info(f"skipping {suite.id}: it reads a local benchmark copy (set eval.retention_data_dir)")
                continue
            if suite.spec.builtin_task:
                _log.info(f"{suite.id}: no eval.retention_data_dir, so lm-eval's own '{suite.spec.builtin_task}' task "
                          "(downloads from the hub)")
                prepared.append((suite, [], f"lm_eval_builtin:{suite.spec.builtin_task}:{metadata.version('lm_eval')}"))
                continue
        files = suite.data_files(cfg.retention_data_dir)
        read_docs(suite, files)
        prepared.append((suite, files, suite_data_hash(suite, files)))
    if cfg.rag is not None:  # each chosen suite again with retrieved passages: <group>/<name>+rag (harness.rag)
        prepared += rag_variants(cfg.rag, prepared)
    model_refs = cfg.models or [config.model.base]
    specs = [resolve(ref, trust_remote_code=config.model.trust_remote_code) for ref in model_refs]
    reference_slot: ModelSlot | None = None
    reference_fp = None
    if any(suite.spec.kind == "kl_drift" for suite, _, _ in prepared):
        reference_spec = resolve(cfg.reference_model or config.model.base, trust_remote_code=config.model.trust_remote_code)
        reference_fp = fingerprint(reference_spec)
        reference_slot = ModelSlot(reference_spec, cfg)  # loaded only if a model other than the reference is scored
    result = EvalResult(out)
    settings = {"limit": cfg.limit, "seed": seed, "bootstrap_resamples": cfg.bootstrap_resamples,
                "max_length": cfg.max_length, "batch_size": cfg.batch_size, "device": cfg.device,
                "lm_eval": metadata.version("lm_eval")}
    if cfg.backend == "hf":  # the dtype actually used (auto resolved): bfloat16 and float32 score slightly differently
        settings["dtype"] = inference_dtype(cfg.dtype)
        # same sums in another order: bfloat16 rounds them differently ("packed-tree": a context and its choices in one
        # row, its choices as a tree; results of earlier scorers, recorded as true or "packed", are not reused)
        settings["shared_prefix"] = "packed-tree" if cfg.shared_prefix else False
        settings["log_softmax"] = LOG_SOFTMAX_DTYPE  # before, a bfloat16 model's log-probabilities were summed in bfloat16
    else:  # vLLM's kernels score slightly differently: its own cache entries
        settings["backend"] = cfg.backend
    cache_root = harness_home() / "eval-cache"
    shared = SharedBase(cfg) if cfg.share_base and cfg.backend == "hf" else None
    for spec in specs:
        fp = fingerprint(spec)
        slot = ModelSlot(spec, cfg, shared)
        for suite, files, data_hash in prepared:
            scfg = _suite_config(cfg, suite)
            suite_settings = {**settings, "limit": scfg.limit}
            if suite.spec.kind == "kl_drift":
                suite_settings["reference"] = reference_fp
            key = stable_hash({"model": fp, "suite": suite.id, "version": suite.version, "data": data_hash,
                               "settings": suite_settings})[:24]
            dest = out / fp / suite.id
            cached_dir = cache_root / key
            if cfg.use_cache and (cached_dir / "summary.json").is_file():
                _copy_into(cached_dir, dest)
                summary = artifact_dict(dest / "summary.json", EvalSummary)
                summary_line = ", ".join(f"{k} {v['estimate']:.3f}" for k, v in summary["metrics"].items()
                                         if isinstance(v.get("estimate"), (int, float)))
                _log.done(f"{suite.id} on {spec.ref}: cached ({summary_line})")
                result.results.append(SuiteResult(spec.ref, fp, suite.id, dest, True, summary))
                continue
            started = time.perf_counter()
            _log.info(f"scoring {spec.ref} on {suite.id}" + (f" (first {scfg.limit} documents)" if scfg.limit else ""))
            # lm-eval's and transformers' own progress bars go to the log file, not between our lines
            with _log.elsewhere(out / "lm_eval.log", f"scoring {suite.id} (lm-eval's progress: {out / 'lm_eval.log'})"):
                if suite.spec.kind == "kl_drift":
                    model, tok = slot.load()
                    ref_model, ref_tok = (model, tok) if reference_fp == fp else reference_slot.load()
                    records = score_kl_drift(suite, model, tok, ref_model, ref_tok, files, scfg)
                else:
                    records = score_lm_eval(suite, slot.lm(), files, scfg, seed)
            if not records:
                raise HarnessError(f"suite {suite.id} produced no samples", hint="check its data file and --limit")
            retrieval = suite.annotate(records, n_resamples=scfg.bootstrap_resamples, seed=seed) \
                if isinstance(suite, RagSuite) else None
            metrics, by_category = _summarize(suite, records, scfg, seed)
            summary = {
                "schema_version": ARTIFACT_VERSION, "kind": "eval_summary", "status": "complete", "created": utc_now(),
                "suite": suite.id, "suite_version": suite.version, "description": suite.spec.description,
                "source": suite.spec.source, "license": suite.spec.license, "citation": suite.spec.citation,
                "model": spec.ref, "model_fingerprint": fp, "data_hash": data_hash, "cache_key": key,
                "settings": suite_settings, "n": len(records), "metrics": metrics, "by_category": by_category,
                "versions": _versions(), "seconds": round(time.perf_counter() - started, 2),
                **({"retrieval": retrieval} if retrieval else {}),
            }
            with staged_dir(dest) as tmp:
                atomic_write_jsonl(tmp / "samples.jsonl", records)
                write_artifact(tmp / "summary.json", summary, EvalSummary)
            if cfg.use_cache:
                _copy_into(dest, cached_dir)
            shown = ", ".join(f"{k} {v['estimate']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
                              for k, v in metrics.items() if isinstance(v.get("estimate"), (int, float)))
            _log.done(f"{suite.id} on {spec.ref}: {shown} (n={len(records)}, {summary['seconds']:.0f}s)")
            result.results.append(SuiteResult(spec.ref, fp, suite.id, dest, False, summary))
    if cfg.output_dir is None:
        from harness.artifacts import update_manifest

        update_manifest(config.run_dir(), "eval", {
            "config": cfg.model_dump(mode="json"), "seed": seed,
            "results": [{"model": r.model, "fingerprint": r.fingerprint, "suite": r.suite,
                         "summary": str(r.folder / "summary.json"), "cached": r.cached} for r in result.results],
        })
    return result
