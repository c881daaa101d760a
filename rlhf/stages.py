"""The cycle's training stages (see :mod:`harness.stage`): sft, reward, dpo, online.

Each wraps its module's ``run`` (``rlhf.sft.run`` ...), imported only when the stage runs, so finding
the stages (every ``harness`` command does) stays cheap. DPO continues the SFT adapter; online RL
continues DPO's adapter when DPO ran, else SFT's, against the reward model the cycle trains first.
"""

from __future__ import annotations

from typing import Any

from harness.stage import Stage, StageContext, StageResult, num

__all__ = ["SFT", "REWARD", "DPO", "ONLINE"]


def _sft(ctx: StageContext, cfg: Any) -> StageResult:
    from rlhf import sft

    if cfg.per_domain:  # one adapter per domain: rlhf.per_domain
        from rlhf import per_domain

        return per_domain.stage(ctx)
    r = sft.run(ctx.config, resume=not ctx.force, force=ctx.force)
    m = r.metrics
    return StageResult(summary=f"validation loss {num(m.get('eval_loss_initial'))} -> {num(m.get('eval_loss_final'))} "
                               f"in {m['global_step']} steps",
                       metrics={k: m.get(k) for k in ("eval_loss_initial", "eval_loss_final", "global_step")},
                       artifacts=[str(r.model_path)], outputs={"model": str(r.model_path)})


def _reward(ctx: StageContext, cfg: Any) -> StageResult:
    from rlhf import reward

    r = reward.run(ctx.config, force=ctx.force)
    held = r.metrics.get("heldout") or {}
    folds = len(r.metrics.get("cross_fit") or [])
    acc = (f"{f'cross-fitted ({folds} folds)' if folds else 'held-out'} pairwise accuracy {num(held['accuracy'], '.2f')} [{num(held.get('ci_low'), '.2f')}, "
           f"{num(held.get('ci_high'), '.2f')}] on {held['n']} pairs" if held.get("accuracy") is not None else "no held-out pairs")
    return StageResult(summary=acc, metrics={"heldout": held}, artifacts=[str(r.model_path)])


def _dpo(ctx: StageContext, cfg: Any) -> StageResult:
    from rlhf import dpo

    config = ctx.config if cfg.policy else ctx.with_(dpo={"policy": ctx.model("sft")})
    r = dpo.run(config, force=ctx.force)
    train = r.metrics.get("train") or {}
    held = (r.metrics.get("heldout") or {}).get("implicit_reward") or {}
    text = f"training log-prob margin {num(train.get('logp_margin_change'), '+.2f')}"
    if held.get("accuracy") is not None:
        text += f"; held-out preference accuracy {num(held['accuracy'], '.2f')} on {held['n']} pairs"
    return StageResult(summary=text, artifacts=[str(r.model_path)], outputs={"model": str(r.model_path)})


def _online(ctx: StageContext, cfg: Any) -> StageResult:
    from rlhf import online

    config = ctx.config
    if cfg.policy is None:  # continues DPO's adapter when DPO ran, else SFT's
        config = ctx.with_(online={"policy": ctx.model("dpo" if "dpo" in ctx.plan else "sft")})
    r = online.run(config, force=ctx.force)
    m = r.metrics
    reward, kl = m.get("reward") or {}, m.get("kl") or {}
    text = f"reward {num(reward.get('first'))} -> {num(reward.get('last'))}, KL {num(kl.get('last'))} in {m.get('global_step')} steps"
    if m.get("stopped_by_kl_ceiling"):
        text += " (stopped by the KL ceiling)"
    return StageResult(summary=text, metrics={"reward": reward, "kl": kl}, artifacts=[str(r.model_path)],
                       outputs={"model": str(r.model_path)})


def _sft_prepare(ctx: StageContext) -> None:
    if ctx.config.sft.per_domain:  # the domains checked before any stage runs
        from rlhf import per_domain

        per_domain.prepare(ctx)


def _refuse_reft_policy(stage: str):
    """A preference stage that would continue SFT's ReFT interventions fails at cycle start, before any training."""

    def prepare(ctx: StageContext) -> None:
        if getattr(ctx.config, stage).policy is None and ctx.config.sft.method == "reft":
            from rlhf.policy import reft_unsupported

            raise reft_unsupported(stage, "the SFT model")

    return prepare


SFT = Stage(name="sft", title="supervised fine-tuning", order=20, needs=("data",), section="sft", run=_sft,
            prepare=_sft_prepare)
# The reward model serves online RL: it runs when online RL does.
REWARD = Stage(name="reward", title="reward model", order=50, needs=("feedback",), section="reward", run=_reward,
               enabled=lambda config: "online" in config.cycle.align)
DPO = Stage(name="dpo", title="DPO", order=60, needs=("feedback",), section="dpo", run=_dpo,
            enabled=lambda config: "dpo" in config.cycle.align, prepare=_refuse_reft_policy("dpo"))
ONLINE = Stage(name="online", title="online RL", order=70, needs=("reward", "dpo", "feedback"), section="online",
               run=_online, enabled=lambda config: "online" in config.cycle.align,
               inputs=lambda ctx: {"align": ctx.config.cycle.align}, prepare=_refuse_reft_policy("online"))
