"""Online RL (PPO family): the policy samples responses and is optimized against the reward model.

TRL 1.16 has no ``PPOTrainer`` (it was removed); this stage uses TRL's ``GRPOTrainer`` (default: the
PPO-style clipped-ratio objective with a group-mean baseline instead of a value network) or
``RLOOTrainer`` (REINFORCE with a leave-one-out baseline). ``run(config) -> OnlineResult`` continues
the policy adapter (``online.policy``, default ``<run>/sft/adapter``) with LoRA; the KL leash is to
the policy as it started (a frozen copy of the adapter on the same base weights).

Rewards, summed with weights: the trained reward model (``harness reward``), optional rule rewards
(regular expressions), and a length penalty per token beyond ``length_target``. A KL ceiling stops
training when the measured KL to the starting policy exceeds it: a policy that drifts that far is
usually exploiting the reward model rather than getting better. Per step, ``metrics.jsonl`` holds the
mean reward (and per reward function), KL, and response lengths.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, read_jsonl, sha256_file, stable_hash, utc_now
from harness.config import CycleConfig
from rlhf.config import RuleReward
from harness.errors import HarnessError
from harness.models import fingerprint as model_fingerprint, load_tokenizer, resolve
from rlhf import _stage, methods
from rlhf._prefs import completion_text as _text, decontaminate, decontamination_key, load_pairs, load_prompts, prompt_key, split_by_prompt

__all__ = ["OnlineResult", "run", "RuleRewardFunc", "LengthPenalty", "KLCeiling"]

DEFAULT_LR = 1e-4


OnlineResult = _stage.StageResult  # output_dir, model_path, metrics, up_to_date


class RuleRewardFunc:
    """A regular-expression reward: 1 when the pattern occurs (``match``), or the share of the
    response's characters it covers (``fraction``)."""

    def __init__(self, rule: RuleReward):
        self.rule = rule
        self.regex = re.compile(rule.pattern)
        self.__name__ = f"rule_{rule.name}"

    def score(self, text: str) -> float:
        if self.rule.kind == "match":
            return 1.0 if self.regex.search(text) else 0.0
        if not text:
            return 0.0
        return sum(m.end() - m.start() for m in self.regex.finditer(text)) / len(text)

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return [self.score(_text(c)) for c in completions]


class LengthPenalty:
    """Minus ``per_token`` for each response token beyond ``target``."""

    __name__ = "length_penalty"

    def __init__(self, per_token: float, target: int):
        self.per_token, self.target = per_token, target

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: list[list[int]] | None = None,
                 **_: Any) -> list[float]:
        lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else [len(_text(c).split()) for c in completions]
        return [-self.per_token * max(0, n - self.target) for n in lengths]


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class KLCeiling(_callback_base()):
    """Stop training once the measured KL to the reference exceeds ``ceiling``, and put back the
    trainable weights of the last step whose KL was within it (the saved policy never exceeds it).

    Checked every step (logging is forced each step while a ceiling is set). The KL logged for a step
    is measured on the weights that step started from, so those are the weights kept or discarded.
    """

    def __init__(self, ceiling: float | None):
        self.ceiling = ceiling
        self.tripped: dict[str, Any] | None = None
        self._start: dict[str, Any] | None = None
        self._good: dict[str, Any] | None = None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if self.ceiling is not None and model is not None:
            self._start = _stage.snapshot_trainable(model)

    def on_step_end(self, args, state, control, **kwargs):
        if self.ceiling is not None:
            control.should_log = True
        return control

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        kl = (logs or {}).get("kl")
        if self.ceiling is None or kl is None or self.tripped is not None:
            return control
        if kl <= self.ceiling:
            self._good = self._start
            return control
        restored = None
        if self._good is not None and model is not None:
            import torch

            with torch.no_grad():
                params = dict(model.named_parameters())
                for name, value in self._good.items():
                    params[name].copy_(value)
            restored = state.global_step - 1
        self.tripped = {"step": state.global_step, "kl": float(kl), "ceiling": self.ceiling,
                        "restored_weights_of_step": restored}
        control.should_training_stop = True
        kept = f"; keeping the weights from before step {state.global_step}" if restored is not None else ""
        _log.warn(f"KL to the starting policy reached {kl:.3f} > ceiling {self.ceiling} at step "
                  f"{state.global_step}: stopping (possible reward hacking){kept}")
        return control


def _prompts(config: CycleConfig) -> tuple[list[list[dict]], Path]:
    cfg = config.online
    if cfg.prompts is not None:
        if not Path(cfg.prompts).is_file():
            raise HarnessError(f"prompt file {cfg.prompts} does not exist", hint="set online.prompts to a JSONL file")
        return decontaminate(load_prompts(cfg.prompts), config, "prompts")[0], Path(cfg.prompts)
    path = cfg.preferences or config.layout().preferences
    # The prompts the reward model and DPO held out stay unseen here too, so they remain a fair test.
    pairs = decontaminate(load_pairs(path), config, "preference pairs")[0]
    train, _ = split_by_prompt(pairs, config.reward.validation_fraction, _stage.seed_of(config, config.reward))
    seen, prompts = set(), []
    for row in train:
        if prompt_key(row["prompt"]) not in seen:
            seen.add(prompt_key(row["prompt"]))
            prompts.append(row["prompt"])
    return prompts, Path(path)


def _series(rows: list[dict], key: str) -> list[float]:
    return [r[key] for r in rows if key in r and isinstance(r[key], (int, float))]


def _first_last(values: list[float], k: int = 3) -> dict[str, float | None]:
    if not values:
        return {"first": None, "last": None}
    k = max(1, min(k, len(values) // 2 or 1))
    return {"first": sum(values[:k]) / k, "last": sum(values[-k:]) / k}


def reward_model_check(rm_ref: str, allow_weak: bool) -> dict[str, Any]:
    """Refuse a reward model whose trust report (written by the reward stage beside its adapter) does not
    show it beating the length-only and lexical baselines, unless ``allow_weak`` (then recorded)."""
    from harness.schemas import TrainingResult, read_artifact

    result_path = Path(rm_ref).parent / "result.json"
    quality = None
    if result_path.is_file():
        quality = read_artifact(result_path, TrainingResult).metrics.get("quality")
    if quality is None:
        trusted, why = False, f"no trust report beside the reward model ({result_path} with metrics.quality)"
    else:
        trusted, why = bool(quality.get("trusted")), str(quality.get("why"))
    check = {"reward_model": rm_ref, "trusted": trusted, "why": why, "overridden": not trusted and allow_weak}
    if not trusted and not allow_weak:
        raise HarnessError(f"online RL refuses to train against the reward model at {rm_ref}: {why}",
                           hint="collect more (or more consistent) preference labels and retrain it (harness reward), or "
                                "set online.allow_weak_reward_model: true (recorded in the result and the audit report)")
    if not trusted:
        _log.warn(f"training against a reward model that is not trusted (online.allow_weak_reward_model): {why}")
    return check


def run(config: CycleConfig, *, force: bool = False) -> OnlineResult:
    """Optimize the policy online against the reward model; see the module docstring."""
    import torch
    from datasets import Dataset

    from rlhf.policy import load_policy, policy_base_ref, resolve_policy
    from rlhf.scoring import load_scorer
    from rlhf.training import MetricsLogger, resolve_precision

    cfg = config.online
    layout = config.layout()
    run_dir = layout.dir
    policy_ref = _stage.default_policy(cfg.policy, layout, "online")
    rm_ref = None if cfg.reward_model == "none" else (cfg.reward_model or str(layout.adapter("reward")))
    if rm_ref is not None and not Path(rm_ref).exists() and cfg.reward_model is None:
        raise HarnessError(f"no reward model at {rm_ref}",
                           hint="run 'harness reward' first, or set online.reward_model: none and give online.rules")
    if rm_ref is None and not cfg.rules and cfg.length_penalty == 0:
        raise HarnessError("online RL has no reward: online.reward_model is none and there are no rules",
                           hint="train a reward model (harness reward) or add online.rules")
    rm_check = reward_model_check(rm_ref, cfg.allow_weak_reward_model) if rm_ref is not None else None
    prompts, prompt_source = _prompts(config)
    spec = resolve_policy(policy_ref, "online", trust_remote_code=config.model.trust_remote_code)
    out = layout.stage("online")
    fp = stable_hash({"online": cfg.model_dump(mode="json", exclude={"logging_steps", "policy", "reward_model", "prompts",
                                                                      "preferences"}),
                      "policy": model_fingerprint(spec), "reward_model": model_fingerprint(resolve(rm_ref)) if rm_ref else None,
                      "prompts": sha256_file(prompt_source), "seed": _stage.seed_of(config, cfg),
                      "decontamination": decontamination_key(config)})
    previous = _stage.check_output(out, fp, stage="online", force=force)
    if previous is not None:
        _stage.log_up_to_date("online RL", out)
        return OnlineResult(out, Path(previous["model_path"]), previous["metrics"], up_to_date=True)

    precision = resolve_precision(cfg.precision, cfg.method)
    plan = methods.plan(cfg.method, cfg, learning_rate=cfg.learning_rate or DEFAULT_LR,
                        compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    model, fresh = load_policy(spec, quantization_config=plan.quantization_config)
    tokenizer = load_tokenizer(spec)
    tokenizer.padding_side = "left"  # generation pads on the left

    reward_funcs: list[Any] = []
    weights: list[float] = []
    if rm_ref is not None:
        reward_funcs.append(load_scorer(rm_ref, trust_remote_code=config.model.trust_remote_code, batch_size=cfg.batch_size))
        weights.append(cfg.reward_model_weight)
    for rule in cfg.rules:
        reward_funcs.append(RuleRewardFunc(rule))
        weights.append(rule.weight)
    if cfg.length_penalty > 0:
        reward_funcs.append(LengthPenalty(cfg.length_penalty, cfg.length_target))
        weights.append(1.0)
    names = [getattr(f, "__name__", type(f).__name__) for f in reward_funcs]
    _log.info(f"online RL ({cfg.algorithm}, starting from {spec.describe()}; kl_coef {cfg.kl_coef}, "
              f"ceiling {cfg.kl_ceiling}, lr {plan.learning_rate:g}) on {len(prompts)} prompts, "
              f"{cfg.num_generations} responses each; rewards: {', '.join(f'{n} x{w:g}' for n, w in zip(names, weights))}")

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "run_state.json", {"fingerprint": fp, "status": "running", "started": utc_now()})
    common = _stage.common_args(cfg, output_dir=out / "checkpoints", seed=_stage.seed_of(config, cfg), precision=precision,
                                learning_rate=plan.learning_rate)
    rl = dict(num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
              temperature=cfg.temperature, beta=cfg.kl_coef, reward_weights=weights, log_completions=False)
    if cfg.algorithm == "grpo":
        from trl import GRPOConfig, GRPOTrainer as Trainer

        args = GRPOConfig(**common, **rl)
    else:
        from trl import RLOOConfig, RLOOTrainer as Trainer

        args = RLOOConfig(**common, **rl)
    ceiling = KLCeiling(cfg.kl_ceiling)
    metrics_path = out / "metrics.jsonl"
    trainer = Trainer(model=model, reward_funcs=reward_funcs, args=args, processing_class=tokenizer,
                      train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
                      peft_config=plan.peft_config if fresh else None,
                      callbacks=[MetricsLogger(metrics_path, "online"), ceiling])
    trained = _stage.train(trainer, "online")

    logs = [r for r in read_jsonl(metrics_path) if "reward" in r]
    curve = [{"step": r["step"], "reward": r["reward"], "kl": r.get("kl"),
              "mean_length": r.get("completions/mean_length"),
              **{n: r.get(f"rewards/{n}/mean") for n in names}} for r in logs]
    base_ref = policy_base_ref(spec)
    adapter = _stage.save_adapter(trainer.model, tokenizer, out / "adapter", {
        "base": base_ref, "base_location": spec.base_spec.location, "method": plan.method if fresh else "lora",
        "stage": f"online-{cfg.algorithm}", "started_from": policy_ref})
    merged = _stage.merge_into(adapter, out / "merged", trust_remote_code=config.model.trust_remote_code) if cfg.merge else None
    metrics = {
        "train_loss": trained.loss, "global_step": trained.steps, "train_seconds": round(trained.seconds, 2),
        "prompts": len(prompts), "reward": _first_last(_series(logs, "reward")),
        "kl": _first_last(_series(logs, "kl")), "mean_length": _first_last(_series(logs, "completions/mean_length")),
        "per_reward": {n: _first_last(_series(logs, f"rewards/{n}/mean")) for n in names},
        "stopped_by_kl_ceiling": ceiling.tripped, "curve": curve, "reward_model_check": rm_check,
        **trained.metrics,
    }
    _stage.write_result(
        out, run_dir, stage="online", fingerprint=fp, model_path=adapter, config=cfg.model_dump(mode="json"),
        inputs={"policy": policy_ref, "reward_model": rm_ref, "prompts": str(prompt_source),
                "prompts_sha256": sha256_file(prompt_source)},
        metrics=metrics, extra={"algorithm": cfg.algorithm, "reward_functions": dict(zip(names, weights)),
                                "precision": precision, "learning_rate": plan.learning_rate, "base_model": base_ref,
                                "merged_path": str(merged) if merged else None},
    )
    r = metrics["reward"]
    shown = f"mean reward {r['first']:.3f} -> {r['last']:.3f}" if r["first"] is not None else "no reward logged"
    stop = f"; stopped at the KL ceiling (step {ceiling.tripped['step']})" if ceiling.tripped else ""
    _log.done(f"online RL ({cfg.algorithm}) trained {trained.steps} steps in {trained.seconds:.0f}s: {shown}{stop}; saved {adapter}")
    return OnlineResult(out, adapter, metrics)
