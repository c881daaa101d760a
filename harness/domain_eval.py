"""The eval stage for a multi-adapter SFT model (``sft.per_domain``): each domain's adapter is scored on
its own suites (``eval.domain_suites``) plus the shared ones, so forgetting and bias are checked per adapter.

The shared suites are ``eval.suites`` without the ``domain`` group (the domains' own suites take its place).
The base model and the incumbent are scored on every domain's suites plus the shared ones (cached results
are reused), and the stage's summary gives each domain's change over the base on its own suites: the headline metric,
paired on the same documents, with its 95 % CI (``metrics.domain_gains``; ``gain`` is oriented, positive = better).
"""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError
from harness.stage import StageContext, StageResult, num

__all__ = ["shared_suites", "score_domains"]


def shared_suites(names: list[str]) -> list[str]:
    """``eval.suites`` less the ``domain`` group and its suites: what every domain's adapter is scored on
    beside its own suites."""
    return [n for n in names if n.strip().strip("/").split("/")[0] != "domain"]


def _gain(base_dir, adapter_dir, seed: int, suite_dirs) -> dict[str, Any]:
    """The suite's headline metric, adapter - base, paired on the same documents, with its CI and the
    direction that is better (``gain`` is oriented: positive is better; None where the ideal is in the middle)."""
    from harness.compare import compare_suite

    row = compare_suite(base_dir, adapter_dir, seed=seed, suite_dirs=tuple(suite_dirs))[0]
    from harness.stats import oriented

    return {"metric": row["metric"], "base": row["reference_mean"], "adapter": row["candidate_mean"],
            "difference": row["difference"], "ci_low": row["ci_low"], "ci_high": row["ci_high"], "n": row["n"],
            "higher_is_better": row.get("higher_is_better"),
            "gain": oriented(row["difference"], row.get("ideal"), row.get("higher_is_better"))}


def score_domains(ctx: StageContext, multi: str) -> StageResult:
    from harness import evaluate
    from harness.models import resolve
    from harness.multi_adapter import adapters
    from harness.suites import select_suites

    cfg = ctx.config.eval
    per = adapters(resolve(multi, trust_remote_code=ctx.config.model.trust_remote_code))
    missing = sorted(set(per) - set(cfg.domain_suites))
    if missing:
        raise HarnessError(f"eval.domain_suites names no suites for domain(s) {', '.join(missing)} of {multi}",
                           hint="add each domain's suites: eval.domain_suites: {DOMAIN: [group/suite, ...]}")
    shared = shared_suites(cfg.suites)
    own = {d: list(dict.fromkeys(cfg.domain_suites[d])) for d in per}
    every = list(dict.fromkeys(n for d in per for n in own[d]))
    cache = {"use_cache": False} if ctx.forced else {}

    def score(models: list[str], suites: list[str]):
        return evaluate.run(ctx.with_(eval={"models": list(dict.fromkeys(models)), "suites": suites, **cache})).results

    results = score([ctx.config.model.base, ctx.incumbent], every + shared)
    base_fp = next((r.fingerprint for r in results if r.model == ctx.config.model.base), None)
    base = {r.suite: r.folder for r in results if r.fingerprint == base_fp}
    seed = cfg.seed if cfg.seed is not None else ctx.config.run.seed
    gains: dict[str, dict[str, Any]] = {}
    for domain, spec in sorted(per.items()):
        mine = score([spec.location], own[domain] + shared)
        results += mine
        ids = {s.id for s in select_suites(own[domain], cfg.suite_dirs)}
        for r in mine:
            if r.suite in ids and r.suite in base:
                gains.setdefault(domain, {})[r.suite] = _gain(base[r.suite], r.folder, seed, cfg.suite_dirs)
    shown = "; ".join(f"{d}: " + ", ".join(f"{s.split('/')[-1]} {g['metric']} {num(g['base'])} -> {num(g['adapter'])} "
                                           f"({num(g['difference'], '+.3f')} [{num(g['ci_low'], '+.3f')}, "
                                           f"{num(g['ci_high'], '+.3f')}])" for s, g in sorted(by.items()))
                      for d, by in sorted(gains.items()))
    cached = sum(1 for r in results if r.cached)
    return StageResult(summary=f"{len(results)} suite results for base, incumbent and {len(per)} domain adapters "
                               f"({cached} cached)" + (f"; gain over the base: {shown}" if shown else ""),
                       metrics={"domain_gains": gains},
                       artifacts=[str(r.folder / "summary.json") for r in results],
                       outputs={"domain_adapters": {d: s.location for d, s in per.items()}})
