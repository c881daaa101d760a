"""Reward model: a LoRA (SEQ_CLS) sequence-classification head trained on reviewers' preferences.

``run(config) -> RewardResult`` reads preference pairs (``harness feedback export``), holds out a share
of the prompts, trains TRL's ``RewardTrainer`` (Bradley-Terry loss) on a backbone — the policy's base
model by default, or an encoder such as ``builtin:minilm-l6`` — and measures on the held-out pairs:
pairwise accuracy with a Wilson 95 % CI, the distribution of reward margins (chosen minus rejected),
and whether it scores the chosen side higher (CI lower bound above 0.5); and a trust report
(:mod:`rlhf.reward_quality`: accuracy against length-only and lexical baselines, calibration, length
correlation) that online RL checks before it trains against this model. Writes
``<run>/reward/adapter/`` (the adapter and the trained score head), ``metrics.jsonl``,
``heldout_scores.jsonl`` and ``result.json``.

:class:`RewardScorer` scores (prompt, response) pairs with a trained reward model; online RL uses it
as its reward function, with the same text rendering as training.
"""

from __future__ import annotations

from pathlib import Path

from harness import log as _log
from harness.artifacts import atomic_write_json, atomic_write_jsonl, sha256_file, stable_hash, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.models import fingerprint as model_fingerprint, load_model, resolve
from rlhf import _stage, methods
from rlhf._prefs import decontaminate, decontamination_key, folds_by_prompt, load_pairs, split_by_prompt
from rlhf.reward_quality import quality_report
from rlhf.scoring import RewardScorer, _prepare_tokenizer, load_scorer, pairwise_report

__all__ = ["RewardResult", "RewardScorer", "run", "load_scorer", "pairwise_report"]


RewardResult = _stage.StageResult  # output_dir, model_path, metrics, up_to_date


def _fingerprint(config: CycleConfig, backbone_fp: str, prefs_sha: str) -> str:
    cfg = config.reward.model_dump(mode="json", exclude={"logging_steps", "preferences"})
    return stable_hash({"reward": cfg, "backbone": backbone_fp, "preferences": prefs_sha, "seed": _stage.seed_of(config, config.reward),
                        "decontamination": decontamination_key(config)})


def run(config: CycleConfig, *, force: bool = False) -> RewardResult:
    """Train a reward model on ``reward.preferences``; see the module docstring."""
    import torch
    from datasets import Dataset
    from trl import RewardConfig as TRLRewardConfig, RewardTrainer

    from rlhf.training import MetricsLogger, resolve_precision

    cfg = config.reward
    layout = config.layout()
    run_dir = layout.dir
    prefs_path = cfg.preferences or layout.preferences
    pairs, contaminated = decontaminate(load_pairs(prefs_path), config, "preference pairs")
    seed = _stage.seed_of(config, cfg)
    folds = folds_by_prompt(pairs, cfg.cross_fit_folds, seed) if cfg.cross_fit_folds >= 2 else None
    # Cross-fitting: the saved model trains on every pair; each pair is measured by a fold model instead.
    train_pairs, held_pairs = (pairs, [r for f in folds for r in f]) if folds else \
        split_by_prompt(pairs, cfg.validation_fraction, seed)
    backbone_ref = cfg.backbone or config.model.base
    spec = resolve(backbone_ref, trust_remote_code=config.model.trust_remote_code)
    if spec.kind == "adapter":
        raise HarnessError(f"reward.backbone {backbone_ref} is an adapter; a reward head needs a full model",
                           hint="merge it first (harness merge), or use the base model or builtin:minilm-l6")
    out = layout.stage("reward")
    fp = _fingerprint(config, model_fingerprint(spec), sha256_file(prefs_path))
    previous = _stage.check_output(out, fp, stage="reward", force=force)
    if previous is not None:
        _stage.log_up_to_date("reward model", out)
        return RewardResult(out, Path(previous["model_path"]), previous["metrics"], up_to_date=True)

    tok = _prepare_tokenizer(spec, cfg.pad_token)
    precision = resolve_precision(cfg.precision, cfg.method)
    plan = methods.plan(cfg.method, cfg, task_type="SEQ_CLS", learning_rate=cfg.learning_rate,
                        compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float32)

    def new_model():
        model = load_model(spec, task="sequence-classification", num_labels=1, new_head=True,
                           quantization_config=plan.quantization_config,
                           device_map="cpu" if plan.quantization_config is not None and not torch.cuda.is_available() else None)
        model.config.pad_token_id = tok.pad_token_id
        return model

    model = new_model()
    scorer = RewardScorer(model, tok, max_length=cfg.max_length, batch_size=cfg.batch_size)

    def encode(rows):
        kept, dropped = [], 0
        for r in rows:
            c = scorer.encode(r["prompt"], r["chosen"][0]["content"])
            j = scorer.encode(r["prompt"], r["rejected"][0]["content"])
            if len(c) > cfg.max_length or len(j) > cfg.max_length:
                dropped += 1
                continue
            kept.append({"chosen_ids": c, "rejected_ids": j})
        return kept, dropped

    train_tok, dropped = encode(train_pairs)
    fitting = {id(r) for r, enc in zip(held_pairs, [encode([r])[0] for r in held_pairs]) if enc}
    held_dropped = len(held_pairs) - len(fitting)
    held_pairs = [r for r in held_pairs if id(r) in fitting]  # scored like training: whole pairs only
    if not train_tok:
        raise HarnessError(f"every training pair is longer than reward.max_length={cfg.max_length} tokens",
                           hint="raise reward.max_length")
    measured = (f"every pair measured by cross-fitting over {len(folds)} folds of the prompts ({held_dropped} too long)" if folds
                else f"{len(held_pairs)} held-out pairs ({held_dropped} too long)")
    _log.info(f"reward model on {spec.describe()} with {plan.method} (precision {precision}, lr {plan.learning_rate:g}): "
              f"{len(train_tok)} training pairs ({dropped} too long), {measured}")

    def scores(rows, by=None):
        by = by or scorer
        prompts = [r["prompt"] for r in rows]
        return (by.score(prompts, [r["chosen"][0]["content"] for r in rows]),
                by.score(prompts, [r["rejected"][0]["content"] for r in rows]))

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "run_state.json", {"fingerprint": fp, "status": "running", "started": utc_now()})
    initial = pairwise_report(*scores(held_pairs)) if held_pairs else None
    metrics_path = out / "metrics.jsonl"

    def fit(model, rows, label="reward"):
        args = TRLRewardConfig(
            **_stage.common_args(cfg, output_dir=out / "checkpoints", seed=seed, precision=precision,
                                 learning_rate=plan.learning_rate),
            max_length=cfg.max_length, center_rewards_coefficient=cfg.center_rewards, eval_strategy="no",
            remove_unused_columns=False,
        )
        trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                                peft_config=plan.peft_config, callbacks=[MetricsLogger(metrics_path, label)])
        return trainer, _stage.train(trainer, "reward", label=label)

    fold_of: dict[int, int] = {}
    cross_fit: list[dict] = []
    oof: dict[int, tuple[float, float]] = {}  # id(pair) -> (chosen, rejected) from the model that did not see it
    for i, test in enumerate(folds or []):
        test = [r for r in test if id(r) in fitting]
        rest = encode([r for j, f in enumerate(folds) if j != i for r in f])[0]
        trainer, fold_trained = fit(new_model() if i else model, rest, f"reward fold {i + 1} of {len(folds)}")
        cross_fit.append({"fold": i, "train_pairs": len(rest), "scored_pairs": len(test),
                          "train_loss": fold_trained.loss, "train_seconds": round(fold_trained.seconds, 2)})
        fold_scorer = RewardScorer(trainer.model, tok, max_length=cfg.max_length, batch_size=cfg.batch_size)
        for r, c, j in zip(test, *scores(test, fold_scorer)):
            oof[id(r)], fold_of[id(r)] = (c, j), i
        del trainer, fold_scorer
    trainer, trained = fit(new_model() if folds else model, train_tok)
    loss, steps, elapsed = trained.loss, trained.steps, trained.seconds

    adapter = _stage.save_adapter(trainer.model, tok, out / "adapter",
                                  {"base": backbone_ref, "base_location": spec.location, "method": plan.method,
                                   "task": "reward", "max_length": cfg.max_length})
    # Measure the saved artifact itself, loaded the way users (and online RL) load it.
    del trainer, model
    scorer = load_scorer(str(adapter), max_length=cfg.max_length, trust_remote_code=config.model.trust_remote_code,
                         batch_size=cfg.batch_size)
    train_report = pairwise_report(*scores(train_pairs))
    held_report = None
    quality = quality_report([], [], [])
    if held_pairs:
        chosen, rejected = zip(*(oof[id(r)] for r in held_pairs)) if folds else scores(held_pairs)
        held_report = pairwise_report(list(chosen), list(rejected))
        quality = quality_report(held_pairs, chosen, rejected, seed=seed, folds=len(folds or []))
        atomic_write_jsonl(out / "heldout_scores.jsonl", [
            {"prompt": r["prompt"][-1]["content"], "chosen_score": c, "rejected_score": j, "margin": c - j,
             "provenance": r["provenance"], **({"fold": fold_of[id(r)]} if folds else {})}
            for r, c, j in zip(held_pairs, chosen, rejected)])
        verdict = "scores the chosen side higher" if held_report["chosen_scored_higher"] else \
            "does NOT reliably score the chosen side higher (CI reaches 0.5)"
        (_log.info if held_report["chosen_scored_higher"] else _log.warn)(
            f"held-out pairwise accuracy {held_report['accuracy']:.3f} "
            f"[{held_report['ci_low']:.3f}, {held_report['ci_high']:.3f}] on {held_report['n']} pairs: {verdict}")
    else:
        _log.warn("no held-out pairs (reward.validation_fraction is 0 or there is one prompt): accuracy is not measured")
    cal, scaled = quality.get("calibration") or {}, quality.get("calibration_scaled") or {}
    (_log.info if quality["trusted"] else _log.warn)(
        f"reward model {'trusted' if quality['trusted'] else 'NOT trusted'}: {quality['why']}"
        + (f"; calibration ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f}" if cal else "")
        + (f" (a calibrated model would show ECE {cal['if_calibrated']['ece_mean']:.3f} on as many pairs, 95 % up to "
           f"{cal['if_calibrated']['ece_p95']:.3f})" if cal.get("if_calibrated") else "")
        + (f" (after temperature scaling, T {scaled['temperature']:.2f}, cross-fitted: ECE {scaled['ece']:.3f}, "
           f"Brier {scaled['brier']:.3f})" if scaled else ""))

    merged = None
    if cfg.merge:
        merged = _stage.merge_into(adapter, out / "merged", trust_remote_code=config.model.trust_remote_code)
    metrics = {
        "train_loss": loss, "global_step": steps,
        "train_seconds": round(elapsed, 2), "train_pairs": len(train_tok), "contaminated_pairs": contaminated,
        "dropped_too_long": dropped, "heldout_dropped_too_long": held_dropped,
        "heldout": held_report, "heldout_initial": initial, "train_pairwise": train_report, "quality": quality,
        "cross_fit": cross_fit or None,
        **trained.metrics,
    }
    _stage.write_result(
        out, run_dir, stage="reward", fingerprint=fp, model_path=adapter, config=cfg.model_dump(mode="json"),
        inputs={"preferences": str(prefs_path), "preferences_sha256": sha256_file(prefs_path), "backbone": backbone_ref},
        metrics=metrics, extra={"method": plan.method, "precision": precision, "learning_rate": plan.learning_rate,
                                "backbone": backbone_ref, "merged_path": str(merged) if merged else None},
    )
    shown = f", held-out accuracy {held_report['accuracy']:.3f}" if held_report else ""
    folds_took = f" (and {len(cross_fit)} cross-fitting models in {sum(f['train_seconds'] for f in cross_fit):.0f}s)" \
        if cross_fit else ""
    _log.done(f"reward model trained in {elapsed:.0f}s{folds_took}: loss {loss:.4f}{shown}; saved {adapter}")
    return RewardResult(out, adapter, metrics)
