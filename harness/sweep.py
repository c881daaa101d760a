"""``harness sweep``: SFT + evaluation for several tuning methods (and grid values, and seeds) side by side.

Every variant trains on the same prepared data split (prepared once per distinct ``data`` section, with
the config's ``run.seed``) and is scored on the same suites as the base model, whose results come from
the evaluation cache after the first variant. Seeds vary training only. Each variant runs in its own
process (:mod:`harness.sweep_worker`), so its peak memory is its own, and writes
``<sweep>/<variant>/sweep_variant.json``; a variant whose inputs did not change is not run again (the
sweep is resumable: a killed sweep carries on where it stopped). The table (:mod:`harness.sweep_table`)
goes to ``<sweep>/sweep.json`` and ``sweep.md``; a renderer plugin (``harness.renderers``: ``sweep``)
adds ``sweep.html`` with a scatter plot.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, read_json, stable_hash
from harness.config import CycleConfig, load_config
from harness.errors import HarnessError

__all__ = ["Variant", "SweepResult", "plan_variants", "run", "method_choices", "METHOD_OPTIONS"]

# Grid keys under these sft sub-sections only change the methods that read them.
METHOD_OPTIONS = {"lora": ("lora", "dora", "qlora"), "prefix": ("prefix",), "freeze": ("freeze",), "reft": ("reft",)}
_RESERVED = ("sft.method", "run.root", "run.id", "run.seed", "sft.data_dir", "eval.output_dir", "eval.models",
             "data.output_dir", "sft.per_domain")


@dataclass(frozen=True)
class Variant:
    name: str  # folder name: lora, lora-r8, dora-s43 ...
    group: str  # the variant without its seed: rows of several seeds pool under it
    method: str
    seed: int
    grid: tuple[tuple[str, str], ...]  # (key, value) pairs from --grid
    overrides: tuple[str, ...]  # dotted overrides that make this variant (not run/data placement)


@dataclass(frozen=True)
class SweepResult:
    folder: Path
    table: dict[str, Any]
    html: Path | None = None


def method_choices() -> tuple[str, ...]:
    """The tuning methods the installed ``sft`` section accepts (from its schema, not a copy)."""
    import typing

    from harness.config import config_model

    section = config_model().model_fields.get("sft")
    if section is None:
        raise HarnessError("no 'sft' stage is installed", hint="install the harness with its rlhf package")
    annotation = section.annotation.model_fields["method"].annotation
    return tuple(typing.get_args(annotation))


def _parse_grid(grid: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for item in grid:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise HarnessError(f"--grid '{item}' is not KEY=V1,V2", hint="e.g. --grid sft.lora.r=8,16")
        if key in _RESERVED or key == "sft.method":
            raise HarnessError(f"--grid cannot vary {key}: the sweep sets it",
                               hint="vary methods with --methods and seeds with --seeds")
        out.append((key, [v.strip() for v in values.split(",") if v.strip()]))
    if len({k for k, _ in out}) != len(out):
        raise HarnessError("a --grid key is given twice", hint="give each key once with all its values: KEY=V1,V2")
    return out


def _applies(key: str, method: str) -> bool:
    parts = key.split(".")
    if len(parts) >= 3 and parts[0] == "sft" and parts[1] in METHOD_OPTIONS:
        return method in METHOD_OPTIONS[parts[1]]
    return True


def _short(key: str, value: str) -> str:
    """A grid value in a variant's name: sft.lora.r=8 -> lora.r8, data.replay.ratio=0 -> replay.ratio0."""
    text = f"{'.'.join(key.split('.')[-2:])}{value}"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def _parse_per_method(items: list[str], methods: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {m: [] for m in methods}
    for item in items:
        method, sep, override = item.partition(":")
        if not sep or "=" not in override:
            raise HarnessError(f"--set '{item}' is not METHOD:KEY=VALUE", hint="e.g. --set freeze:sft.learning_rate=2e-4")
        if method not in out:
            raise HarnessError(f"--set '{item}' names method '{method}', which is not swept",
                               hint="methods swept: " + ", ".join(methods))
        if override.split("=", 1)[0].strip() in _RESERVED:
            raise HarnessError(f"--set cannot change {override.split('=', 1)[0]}: the sweep sets it")
        out[method].append(override)
    return out


def plan_variants(config_file: Path | None, overrides: list[str], methods: list[str], *, seeds: int = 1,
                  grid: list[str] | None = None, per_method: list[str] | None = None) -> tuple[CycleConfig, list[Variant]]:
    """Check every variant's config (bad input fails here, before anything trains) and name the variants.
    ``per_method``: ``METHOD:KEY=VALUE`` overrides for one method only (its learning rate, say)."""
    if not methods:
        raise HarnessError("no tuning method to sweep", hint="pass --methods lora,dora,ia3,prefix,freeze")
    known = method_choices()
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise HarnessError(f"unknown tuning method(s): {', '.join(unknown)}", hint="one of: " + ", ".join(known))
    if len(set(methods)) != len(methods):
        raise HarnessError("a method is named twice in --methods", hint="name each method once")
    if seeds < 1:
        raise HarnessError(f"--seeds must be at least 1, got {seeds}")
    base = load_config(config_file, overrides)
    if getattr(base.sft, "per_domain", False):
        raise HarnessError("harness sweep compares methods on one adapter per variant; sft.per_domain is on",
                           hint="sweep with sft.per_domain=false (one domain at a time via data.sources), or leave the sweep out")
    axes = _parse_grid(grid or [])
    own_settings = _parse_per_method(per_method or [], methods)
    variants: list[Variant] = []
    for method in methods:
        own = [(k, vals) for k, vals in axes if _applies(k, method)]
        for combo in itertools.product(*[[(k, v) for v in vals] for k, vals in own]) if own else [()]:
            group = "-".join([method, *(_short(k, v) for k, v in combo)])
            for i in range(seeds):
                seed = base.run.seed + i
                extra = (f"sft.method={method}", *own_settings[method], *(f"{k}={v}" for k, v in combo))
                load_config(config_file, [*overrides, *extra, f"run.seed={seed}"])  # fails now, not after training
                variants.append(Variant(name=f"{group}-s{seed}", group=group, method=method,
                                        seed=seed, grid=tuple(combo), overrides=extra))
    names = [v.name for v in variants]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise HarnessError(f"two variants would share the name {clash[0]} (a grid value given twice, values that "
                           "differ only in characters a folder name cannot hold, or keys that end alike)",
                           hint="give each grid value once, differing in letters or digits")
    return base, variants


def _data_key(config: CycleConfig) -> str:
    """The folder of one prepared split: everything the data stage reads (its settings, the input files'
    contents, the suites it decontaminates against, the seed and the base model)."""
    from harness.artifacts import sha256_file
    from harness.decontam import checked_suites

    d = config.data
    files = {str(s.path): sha256_file(s.path) for s in [*d.sources, d.replay]
             if s is not None and s.path is not None and Path(s.path).is_file()}
    return stable_hash({"data": d.model_dump(mode="json", exclude={"output_dir"}), "seed": config.run.seed,
                        "model": config.model.model_dump(mode="json"), "files": files,
                        "against": checked_suites(config)})[:12]


def _prepare_data(config_file: Path | None, overrides: list[str], variant: Variant, folder: Path,
                  base_seed: int, forced: set[Path] | None = None) -> Path:
    """The prepared split this variant trains on: one per distinct data section, at the config's seed."""
    from harness import data

    cfg = load_config(config_file, [*overrides, *variant.overrides, f"run.seed={base_seed}"])
    out = folder / "data" / _data_key(cfg)
    if not (out / "data_card.json").is_file():
        _log.info(f"preparing the training data in {out}")
    force = forced is not None and out not in forced  # --force: prepare each split again, once
    data.run(cfg.model_copy(update={"data": cfg.data.model_copy(update={"output_dir": out})}), force=force)
    if forced is not None:
        forced.add(out)
    return out


def _variant_config(config_file: Path | None, overrides: list[str], variant: Variant, folder: Path,
                    data_dir: Path) -> list[str]:
    return [*overrides, *variant.overrides, f"run.seed={variant.seed}", f"run.root={folder}", f"run.id={variant.name}",
            f"sft.data_dir={data_dir}", f"eval.output_dir={folder / 'eval'}"]


def _fingerprint(config: CycleConfig, data_dir: Path, latency: dict[str, Any]) -> str:
    """A variant's inputs: training settings, model, seed, the prepared data, the evaluation settings and
    the versions of the suites scored (a new suite version re-scores), the timing settings."""
    from harness.suites import select_suites

    card = read_json(data_dir / "data_card.json")
    suites = {s.id: s.version for s in select_suites(config.eval.suites, config.eval.suite_dirs)}
    return stable_hash({"sft": config.sft.model_dump(mode="json", exclude={"data_dir", "logging_steps", "save_total_limit"}),
                        "model": config.model.model_dump(mode="json"), "seed": config.run.seed,
                        "eval": config.eval.model_dump(mode="json", exclude={"output_dir", "models"}),
                        "suites": suites, "data": card.get("outputs"), "latency": latency})


def _run_child(args: list[str]) -> int:
    """Run one variant in its own process (its peak memory is its own); it shows its own progress."""
    return subprocess.call([sys.executable, "-m", "harness.sweep_worker", *args], env=dict(os.environ))


def run(config_file: Path | None, overrides: list[str], methods: list[str], *, seeds: int = 1,
        grid: list[str] | None = None, per_method: list[str] | None = None, sweep_id: str = "sweep", force: bool = False,
        latency_prompts: int = 8, latency_tokens: int = 32) -> SweepResult:
    """Run (or resume) the sweep; see the module docstring."""
    from harness import plugins
    from harness.sweep_table import build_table, write_table

    base, variants = plan_variants(config_file, overrides, methods, seeds=seeds, grid=grid, per_method=per_method)
    if not all(c.isalnum() or c in "._-" for c in sweep_id):
        raise HarnessError(f"sweep id '{sweep_id}' may hold only letters, digits, '.', '_' and '-'")
    folder = (base.run.root / sweep_id).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    latency = {"prompts": latency_prompts, "max_new_tokens": latency_tokens}
    _log.info(f"sweep {sweep_id}: {len(variants)} variant(s) of {', '.join(methods)} in {folder}")
    records: list[dict[str, Any]] = []
    forced: set[Path] | None = set() if force else None
    started = time.perf_counter()
    for i, variant in enumerate(variants, 1):
        data_dir = _prepare_data(config_file, overrides, variant, folder, base.run.seed, forced)
        args = _variant_config(config_file, overrides, variant, folder, data_dir)
        cfg = load_config(config_file, args)
        key = _fingerprint(cfg, data_dir, latency)
        out = folder / variant.name / "sweep_variant.json"
        old = read_json(out) if out.is_file() else None
        if old and old.get("fingerprint") == key and old.get("status") == "complete" and not force:
            _log.done(f"[{i}/{len(variants)}] {variant.name}: up to date")
        else:
            _log.info(f"[{i}/{len(variants)}] {variant.name}: fine-tuning with {variant.method}, then evaluating")
            spec = {"config": str(config_file) if config_file else None, "overrides": args, "fingerprint": key,
                    "variant": variant.__dict__, "latency": latency, "force": force, "output": str(out)}
            spec_path = folder / variant.name / "sweep_spec.json"
            atomic_write_json(spec_path, spec)
            code = _run_child([str(spec_path)])
            if code != 0 or not out.is_file():
                raise HarnessError(f"variant {variant.name} failed (exit {code})",
                                   hint="the error is shown above; the variants before it are kept, and a re-run "
                                        "carries on from this one")
            _log.done(f"[{i}/{len(variants)}] {variant.name} done")
        records.append(read_json(out))
    table = build_table(records, seed=base.run.seed, suite_dirs=tuple(base.eval.suite_dirs))
    table["sweep"] = {"id": sweep_id, "methods": methods, "seeds": seeds, "grid": grid or [], "per_method": per_method or [],
                      "config": str(config_file) if config_file else None, "overrides": overrides,
                      "seconds_this_run": round(time.perf_counter() - started, 1)}
    write_table(table, folder)
    html = None
    renderer = plugins.renderers().get("sweep")
    if renderer is not None:
        html = renderer(table, folder)
    _log.done(f"sweep table written to {folder / 'sweep.md'}" + (f" and {html}" if html else ""))
    return SweepResult(folder, table, html)
