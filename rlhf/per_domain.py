"""One adapter per domain (``sft.per_domain: true``): SFT trains one adapter for each data domain on a shared
base and writes them together as a multi-adapter model (:mod:`harness.multi_adapter`).

Each domain's run trains on that domain's training rows of the prepared data plus its share of the replay
rows (``data.replay.ratio`` of its own training set), validates on that domain's validation rows only, and is
an ordinary SFT run (:func:`rlhf.sft.run`: fingerprinted, resumable, checkpointed) in
``<run>/sft/domains/<domain>/``. The adapters are then copied into the multi-adapter folder ``<run>/sft/adapter/``.

Every problem with the domains is reported at once, before any model is loaded or training starts
(:func:`check`; the cycle runs it when it starts): a domain without data or without suites in
``eval.domain_suites``, an unknown suite, fewer than two domains, a domain name that cannot name a folder, or a
tuning method that makes no adapter (full, freeze, reft).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, atomic_write_jsonl, sha256_file, staged_dir, update_manifest
from harness.config import CycleConfig
from harness.data import load_prepared
from harness.errors import HarnessError
from harness.multi_adapter import DOMAIN_NAME, write as write_multi
from harness.schemas import DataCard, write_artifact
from harness.stage import StageContext, StageResult, num

__all__ = ["check", "prepare", "run", "stage", "NO_ADAPTER_METHODS", "CYCLE_STAGES"]

NO_ADAPTER_METHODS = ("full", "freeze", "reft")  # they write one model, or no PEFT adapter to load by name
CYCLE_STAGES = ("data", "sft", "eval")  # what a per-domain cycle runs; later stages take one candidate model


def _replay_domain(config: CycleConfig, card: dict | None) -> str | None:
    if card is not None:
        return ((card.get("settings") or {}).get("replay") or {}).get("domain")
    return config.data.replay.domain if config.data.replay is not None else None


def check(config: CycleConfig, card: dict | None = None) -> list[str]:
    """The domains to train (sorted), or one :class:`HarnessError` listing every problem. Domains come from the
    prepared data's card when given, else from ``data.sources`` (or an existing ``sft.data_dir``)."""
    cfg, ecfg = config.sft, config.eval
    if card is None and not config.data.sources and cfg.data_dir is not None and (Path(cfg.data_dir) / "data_card.json").is_file():
        card = load_prepared(cfg.data_dir)[2]
    replay = _replay_domain(config, card)
    problems: list[str] = []
    if cfg.method in NO_ADAPTER_METHODS:
        problems.append(f"sft.method {cfg.method} makes no adapter to load beside others; use lora, dora, qlora, prefix or ia3")
    if card is not None:
        domains = sorted(d for d in card["counts"].get("per_domain", {}) if d != replay)
        lost = sorted({s.domain for s in config.data.sources} - set(domains) - {replay})
        problems += [f"domain '{d}' (data.sources) has no records left after cleaning" for d in lost]
    else:
        domains = sorted({s.domain for s in config.data.sources})
        if replay in domains:
            problems.append(f"a data source has the replay set's domain label '{replay}'; rename one of them")
    if card is None and not config.data.sources:
        problems.append("there is no data: set data.sources, each with a domain label, or sft.data_dir")
    elif len(domains) < 2:
        problems.append(f"the data has {len(domains)} domain(s) ({', '.join(domains) or 'none'}); one adapter per "
                        "domain needs at least two: label each source with data.sources[].domain, or set sft.per_domain: false")
    problems += [f"domain '{d}' cannot name a folder and an adapter: use letters, digits, '-' and '_'"
                 for d in domains if not DOMAIN_NAME.match(d)]
    problems += [f"domain '{d}' has no suites in eval.domain_suites (each domain's adapter is validated on its own suites)"
                 for d in domains if not ecfg.domain_suites.get(d)]
    problems += [f"eval.domain_suites.{d}: no data source has the domain '{d}'"
                 for d in sorted(set(ecfg.domain_suites) - set(domains))]
    from harness.suites import select_suites

    for d, names in sorted(ecfg.domain_suites.items()):
        for name in names:
            try:
                select_suites([name], ecfg.suite_dirs)
            except HarnessError as exc:
                problems.append(f"eval.domain_suites.{d}: {exc.message}")
    if problems:
        raise HarnessError("sft.per_domain: " + ("\n  - " if len(problems) > 1 else "") + "\n  - ".join(problems),
                           hint="see 'One adapter per domain' in README.md")
    return domains


def prepare(ctx: StageContext) -> None:
    """At cycle start: the domains are checked, and stages that take one candidate model are refused."""
    check(ctx.config)
    names = ctx.plan
    this_run = names[: names.index(ctx.until) + 1] if ctx.until in names else names
    later = [n for n in this_run if n not in CYCLE_STAGES]
    if later:
        raise HarnessError(
            f"sft.per_domain trains one adapter per domain, and these stages take one candidate model: {', '.join(later)}",
            hint="run the cycle with --until eval (data, one adapter per domain, each scored on its own suites plus the "
                 "shared ones); then gate or review one domain's adapter (<run>/sft/adapter/DOMAIN) on its own")


def _domain_data(dest: Path, domain: str, train: list[dict], validation: list[dict], card: dict, source: Path,
                 replay: str | None) -> Path:
    """A prepared data folder for one domain: its rows, plus replay rows in the run's replay ratio."""
    own = [r for r in train if r.get("domain") == domain]
    ratio = ((card.get("settings") or {}).get("replay") or {}).get("ratio") or 0
    replay_rows = [r for r in train if replay is not None and r.get("domain") == replay]
    chosen = replay_rows[: round(ratio / (1 - ratio) * len(own))] if ratio else []
    rows, val = own + chosen, [r for r in validation if r.get("domain") == domain]
    counts = {**card["counts"], "train": len(rows), "validation": len(val), "replay_added": len(chosen),
              "per_domain": {domain: card["counts"]["per_domain"][domain]}}
    with staged_dir(dest) as tmp:
        atomic_write_jsonl(tmp / "train.jsonl", rows)
        atomic_write_jsonl(tmp / "validation.jsonl", val)
        outputs = {name: sha256_file(tmp / name) for name in ("train.jsonl", "validation.jsonl")}
        write_artifact(tmp / "data_card.json", {
            **card, "counts": counts, "outputs": outputs,
            "notes": [*card.get("notes", []), f"domain '{domain}' of {source} (sft.per_domain)"]}, DataCard)
    return dest


def run(config: CycleConfig, *, resume: bool = False, force: bool = False):
    """Train one adapter per domain, then write the multi-adapter folder; returns an ``rlhf.sft.SFTResult``."""
    from rlhf import sft

    layout = config.layout()
    data_dir = Path(config.sft.data_dir if config.sft.data_dir is not None else layout.data)
    train, validation, card = load_prepared(data_dir)
    domains = check(config, card)
    replay = _replay_domain(config, card)
    results = {}
    for i, domain in enumerate(domains, 1):
        _log.info(f"domain {i} of {len(domains)}: '{domain}'")
        ddir = _domain_data(layout.domain_data("sft", domain), domain, train, validation, card, data_dir, replay)
        sub = config.model_copy(update={"sft": config.sft.model_copy(update={"data_dir": ddir, "per_domain": False})})
        results[domain] = sft.run(sub, resume=resume, force=force, out=layout.domain_run("sft", domain),
                                  manifest_key=f"sft/{domain}")
    multi = write_multi(layout.adapter("sft"), config.model.base, {d: r.model_path for d, r in results.items()})
    keys = ("train_loss", "global_step", "eval_loss_initial", "eval_loss_final", "trainable_tensors_changed",
            "trainable_tensors")
    metrics: dict[str, Any] = {"domains": {d: {k: r.metrics.get(k) for k in keys} for d, r in results.items()},
                               "global_step": sum(r.metrics.get("global_step") or 0 for r in results.values())}
    atomic_write_json(layout.stage("sft") / "per_domain.json", {
        "schema_version": 1, "kind": "per_domain_sft", "multi_adapter": str(multi),
        "adapters": {d: str(r.model_path) for d, r in results.items()}, "metrics": metrics})
    update_manifest(layout.dir, "sft", {"per_domain": True, "multi_adapter": str(multi),
                                        "adapters": {d: str(r.model_path) for d, r in results.items()}})
    _log.done(f"{len(domains)} domain adapters in {multi}: " + ", ".join(domains))
    return sft.SFTResult(layout.stage("sft"), multi, metrics, up_to_date=all(r.up_to_date for r in results.values()))


def stage(ctx: StageContext) -> StageResult:
    """The cycle's SFT stage under ``sft.per_domain``."""
    r = run(ctx.config, resume=not ctx.force, force=ctx.force)
    per = r.metrics["domains"]
    text = "; ".join(f"{d}: validation loss {num(m.get('eval_loss_initial'))} -> {num(m.get('eval_loss_final'))}"
                     for d, m in per.items())
    return StageResult(summary=f"{len(per)} domain adapters ({text})", metrics=r.metrics,
                       artifacts=[str(r.model_path)], outputs={"model": str(r.model_path), "per_domain": True})
