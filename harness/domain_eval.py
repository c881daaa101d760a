"""The eval stage for a multi-adapter SFT model (``sft.per_domain``): each domain's adapter is scored on
its own suites (``eval.domain_suites``) plus the shared ones, so forgetting and bias are checked per adapter.

The shared suites are ``eval.suites`` without the ``domain`` group (the domains' own suites take its place).
The base model and the incumbent are scored on every domain's suites plus the shared ones (cached results
are reused), and the stage's summary gives each domain's gain over the base on its own suites.
"""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError
from harness.stage import StageContext, StageResult, num

__all__ = ["shared_suites", "score_domains"]


def shared_suites(names: list[str]) -> list[str]:
    """``eval.suites`` less the ``domain`` group: what every domain's adapter is scored on beside its own suites."""
    return [n for n in names if n.strip().strip("/") != "domain"]


def _first_metric(summary: dict[str, Any]) -> tuple[str, float] | None:
    for name, m in summary["metrics"].items():
        if isinstance(m.get("estimate"), (int, float)):
            return name, m["estimate"]
    return None


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
    base = {r.suite: r.summary for r in results if r.fingerprint == base_fp}
    gains: dict[str, dict[str, Any]] = {}
    for domain, spec in sorted(per.items()):
        mine = score([spec.location], own[domain] + shared)
        results += mine
        ids = {s.id for s in select_suites(own[domain], cfg.suite_dirs)}
        for r in mine:
            if r.suite in ids and r.suite in base:
                after, before = _first_metric(r.summary), _first_metric(base[r.suite])
                if after and before:
                    gains.setdefault(domain, {})[r.suite] = {"metric": after[0], "base": before[1], "adapter": after[1],
                                                             "gain": after[1] - before[1]}
    shown = "; ".join(f"{d}: " + ", ".join(f"{s.split('/')[-1]} {g['metric']} {num(g['base'])} -> {num(g['adapter'])} "
                                           f"({num(g['gain'], '+.3f')})" for s, g in sorted(by.items()))
                      for d, by in sorted(gains.items()))
    cached = sum(1 for r in results if r.cached)
    return StageResult(summary=f"{len(results)} suite results for base, incumbent and {len(per)} domain adapters "
                               f"({cached} cached)" + (f"; gain over the base: {shown}" if shown else ""),
                       metrics={"domain_gains": gains},
                       artifacts=[str(r.folder / "summary.json") for r in results],
                       outputs={"domain_adapters": {d: s.location for d, s in per.items()}})
