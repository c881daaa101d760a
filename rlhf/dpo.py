"""Direct preference optimization (TRL ``DPOTrainer``), or KTO (``KTOTrainer``) from unpaired feedback.

``run(config) -> DPOResult`` continues training the SFT adapter (``dpo.policy``, default
``<run>/sft/adapter``) on preference pairs. The reference model is the policy as it started: TRL keeps
a frozen copy of the adapter (a few MB) beside the trainable one on the same base weights, so there is
no second model in memory. When ``dpo.policy`` is a full model, a new LoRA adapter is trained and the
reference is that model with the adapter switched off.

``objective: kto`` trains on unpaired thumbs-up/down rows: ``<run>/feedback/unpaired.jsonl`` (written
by ``feedback export`` from ratings) or, without it, each pair split into a desirable and an
undesirable example.

After training, every held-out pair and a seeded sample of ``dpo.score_train_pairs`` training pairs
are scored under the policy and the reference: the chosen-minus-rejected log-probability margins
before (= reference) and after, and the implicit reward ``beta * (log pi - log ref)`` whose held-out
preference accuracy gets a Wilson 95 % CI.
Writes ``<run>/dpo/adapter/``, ``metrics.jsonl``, ``pair_scores.jsonl``, ``result.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_json, atomic_write_jsonl, sha256_file, stable_hash, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.models import ModelSpec, fingerprint as model_fingerprint, load_model, load_tokenizer, resolve
from rlhf import _stage, methods
from rlhf._prefs import decontaminate, decontamination_key, load_pairs, load_unpaired, prompt_key, split_by_prompt, unpair
from rlhf.policy import adapter_method, load_policy, policy_base_ref, resolve_policy, sequence_logps

__all__ = ["DPOResult", "run", "resolve_policy", "load_policy", "policy_base_ref", "sequence_logps"]


DEFAULT_LR = 1e-4  # LoRA preference updates: an order below SFT's LoRA rate


DPOResult = _stage.StageResult  # output_dir, model_path, metrics, up_to_date


def _fits(rows: list[dict], tokenizer: Any, max_length: int, sides: tuple[str, ...]) -> tuple[list[dict], int]:
    """Rows whose prompt + response fit in ``max_length`` tokens, and how many did not. Truncating
    instead would leave some responses with no tokens to learn from."""
    kept = []
    for r in rows:
        texts = [tokenizer.apply_chat_template([*r["prompt"], *r[side]], tokenize=False) for side in sides]
        lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        if max(lengths) <= max_length:
            kept.append(r)
    return kept, len(rows) - len(kept)


def _pair_scores(policy: ModelSpec, reference: ModelSpec, pairs: list[dict], beta: float, batch_size: int,
                 max_length: int, dtype: str = "float32") -> list[dict]:
    """Per pair: log-probs of chosen and rejected under the saved policy and under the reference (both
    loaded from disk, one at a time, the way ``harness eval`` loads them: adapters merged, in ``dtype``),
    margins and implicit rewards."""
    import gc

    if not pairs:
        return []
    prompts = [p["prompt"] for p in pairs]
    chosen = [p["chosen"][0]["content"] for p in pairs]
    rejected = [p["rejected"][0]["content"] for p in pairs]
    kw = {"batch_size": batch_size, "max_length": max_length}
    logps = {}
    for name, spec in (("policy", policy), ("ref", reference)):
        model, tokenizer = load_model(spec, dtype=dtype, merge_adapter=True), load_tokenizer(spec)
        logps[name] = (sequence_logps(model, tokenizer, prompts, chosen, **kw),
                       sequence_logps(model, tokenizer, prompts, rejected, **kw))
        del model
        gc.collect()
    rows = []
    for i, p in enumerate(pairs):
        pc, pr = logps["policy"][0][i], logps["policy"][1][i]
        rc, rr = logps["ref"][0][i], logps["ref"][1][i]
        rows.append({"prompt": p["prompt"][-1]["content"], "policy_logp_chosen": pc, "policy_logp_rejected": pr,
                     "ref_logp_chosen": rc, "ref_logp_rejected": rr, "margin_before": rc - rr, "margin_after": pc - pr,
                     "reward_chosen": beta * (pc - rc), "reward_rejected": beta * (pr - rr),
                     "provenance": p["provenance"]})
    return rows


def _sample(pairs: list[dict], n: int | None, seed: int) -> list[dict]:
    """``n`` of ``pairs`` drawn without replacement (seeded, in their original order); all when ``n`` is None
    or not smaller."""
    import random

    if n is None or n >= len(pairs):
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), n))
    return [pairs[i] for i in keep]


def _summary(rows: list[dict]) -> dict[str, Any] | None:
    from rlhf.scoring import pairwise_report

    if not rows:
        return None
    n = len(rows)
    before = sum(r["margin_before"] for r in rows) / n
    after = sum(r["margin_after"] for r in rows) / n
    return {"n": n, "logp_margin_before": before, "logp_margin_after": after, "logp_margin_change": after - before,
            "implicit_reward": pairwise_report([r["reward_chosen"] for r in rows], [r["reward_rejected"] for r in rows])}


def _fingerprint(config: CycleConfig, policy_fp: str, inputs: dict[str, str]) -> str:
    cfg = config.dpo.model_dump(mode="json", exclude={"logging_steps", "preferences", "unpaired", "policy"})
    return stable_hash({"dpo": cfg, "policy": policy_fp, "inputs": inputs, "seed": _stage.seed_of(config, config.dpo)})


def run(config: CycleConfig, *, force: bool = False) -> DPOResult:
    """Preference-tune the policy with DPO or KTO; see the module docstring."""
    import torch
    from datasets import Dataset

    from rlhf.training import MetricsLogger, resolve_precision

    cfg = config.dpo
    layout = config.layout()
    run_dir = layout.dir
    policy_ref = _stage.default_policy(cfg.policy, layout, "dpo")
    prefs_path = cfg.preferences or layout.preferences
    unpaired_path = cfg.unpaired or layout.unpaired
    use_unpaired = cfg.objective == "kto" and (cfg.unpaired is not None or unpaired_path.is_file())
    inputs: dict[str, str] = {"decontamination": decontamination_key(config)}
    pairs: list[dict] = []
    contaminated = 0
    if not use_unpaired or prefs_path.is_file():
        pairs, contaminated = decontaminate(load_pairs(prefs_path), config, "preference pairs")
        inputs["preferences"] = sha256_file(prefs_path)
    train_pairs, held_pairs = split_by_prompt(pairs, cfg.validation_fraction, _stage.seed_of(config, cfg))
    if use_unpaired:
        if not Path(unpaired_path).is_file():
            raise HarnessError(f"unpaired feedback file {unpaired_path} does not exist",
                               hint="export ratings with 'harness feedback export', or leave dpo.unpaired unset")
        unpaired_rows, dropped = decontaminate(load_unpaired(unpaired_path), config, "unpaired rows")
        contaminated += dropped
        inputs["unpaired"] = sha256_file(unpaired_path)
        held_keys = {prompt_key(p["prompt"]) for p in held_pairs}  # held-out prompts stay out of training
        unpaired_rows = [r for r in unpaired_rows if prompt_key(r["prompt"]) not in held_keys]
    else:
        unpaired_rows = unpair(train_pairs) if cfg.objective == "kto" else []

    spec = resolve_policy(policy_ref, "dpo", trust_remote_code=config.model.trust_remote_code)
    out = layout.stage("dpo")
    fp = _fingerprint(config, model_fingerprint(spec), inputs)
    previous = _stage.check_output(out, fp, stage="dpo", force=force)
    if previous is not None:
        _stage.log_up_to_date(cfg.objective.upper(), out)
        return DPOResult(out, Path(previous["model_path"]), previous["metrics"], up_to_date=True)
    precision = resolve_precision(cfg.precision, cfg.method)
    plan = methods.plan(cfg.method, cfg, learning_rate=cfg.learning_rate or DEFAULT_LR,
                        compute_dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    model, fresh = load_policy(spec, quantization_config=plan.quantization_config)
    tokenizer = load_tokenizer(spec)
    model.config.use_cache = False
    train_pairs, too_long = _fits(train_pairs, tokenizer, cfg.max_length, ("chosen", "rejected"))
    held_pairs, held_too_long = _fits(held_pairs, tokenizer, cfg.max_length, ("chosen", "rejected"))
    unpaired_rows, unpaired_too_long = _fits(unpaired_rows, tokenizer, cfg.max_length, ("completion",))
    if not (unpaired_rows if cfg.objective == "kto" else train_pairs):
        raise HarnessError(f"every training example is longer than dpo.max_length={cfg.max_length} tokens",
                           hint="raise dpo.max_length")
    if too_long or held_too_long or unpaired_too_long:
        _log.warn(f"left out {too_long + held_too_long + unpaired_too_long} examples longer than dpo.max_length={cfg.max_length}")
    what = f"{len(unpaired_rows)} unpaired examples" if cfg.objective == "kto" else f"{len(train_pairs)} pairs"
    start = f"continuing adapter {spec.location}" if not fresh else f"a new {plan.method} adapter on {spec.describe()}"
    _log.info(f"{cfg.objective.upper()} ({start}; beta {cfg.beta}, lr {plan.learning_rate:g}, precision {precision}) "
              f"on {what}, {len(held_pairs)} held-out pairs")

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "run_state.json", {"fingerprint": fp, "status": "running", "started": utc_now()})
    common = _stage.common_args(cfg, output_dir=out / "checkpoints", seed=_stage.seed_of(config, cfg), precision=precision,
                                learning_rate=plan.learning_rate)
    strip = lambda rows, keys: [{k: r[k] for k in keys} for r in rows]  # noqa: E731 (provenance stays out of TRL)
    metrics_path = out / "metrics.jsonl"
    peft_config = plan.peft_config if fresh else None
    if cfg.objective == "dpo":
        from trl import DPOConfig as TRLDPOConfig, DPOTrainer

        args = TRLDPOConfig(**common, beta=cfg.beta, loss_type=[cfg.loss_type], label_smoothing=cfg.label_smoothing,
                            max_length=cfg.max_length, eval_strategy="no")
        trainer = DPOTrainer(model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
                             train_dataset=Dataset.from_list(strip(train_pairs, ("prompt", "chosen", "rejected"))),
                             callbacks=[MetricsLogger(metrics_path, "dpo")])
    else:
        from trl import KTOConfig, KTOTrainer

        if cfg.batch_size < 2:
            raise HarnessError("dpo.batch_size must be at least 2 for KTO (it estimates its KL term across a batch)",
                               hint="set dpo.batch_size: 2 or more")
        args = KTOConfig(**common, beta=cfg.beta, desirable_weight=cfg.desirable_weight,
                         undesirable_weight=cfg.undesirable_weight, max_length=cfg.max_length, eval_strategy="no")
        trainer = KTOTrainer(model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
                             train_dataset=Dataset.from_list(strip(unpaired_rows, ("prompt", "completion", "label"))),
                             callbacks=[MetricsLogger(metrics_path, "kto")])
    trained = _stage.train(trainer, "dpo")

    loss, steps, elapsed = trained.loss, trained.steps, trained.seconds
    base_ref = policy_base_ref(spec)
    adapter = _stage.save_adapter(trainer.model, tokenizer, out / "adapter", {
        "base": base_ref, "base_location": spec.base_spec.location, "method": plan.method if fresh else adapter_method(spec),
        "stage": cfg.objective, "started_from": policy_ref})
    del trainer, model
    # scored in the precision it trained in (bfloat16 is about 3x faster where the hardware has it)
    score_kw = {"beta": cfg.beta, "batch_size": cfg.batch_size, "max_length": cfg.max_length,
                "dtype": {"bf16": "bfloat16", "fp16": "float16"}.get(precision, "float32")}
    saved = resolve(str(adapter), trust_remote_code=config.model.trust_remote_code)
    train_scored = _sample(train_pairs, cfg.score_train_pairs, _stage.seed_of(config, cfg))
    scored = _pair_scores(saved, spec, train_scored + held_pairs, **score_kw)
    train_rows, held_rows = scored[:len(train_scored)], scored[len(train_scored):]
    trained_on = "train" if not use_unpaired else "not_held_out"  # KTO from ratings trains on other rows
    atomic_write_jsonl(out / "pair_scores.jsonl", [{"split": trained_on, **r} for r in train_rows]
                       + [{"split": "heldout", **r} for r in held_rows])
    train_summary, held_summary = _summary(train_rows), _summary(held_rows)

    merged = _stage.merge_into(adapter, out / "merged", trust_remote_code=config.model.trust_remote_code) if cfg.merge else None
    metrics = {
        "train_loss": loss, "global_step": steps, "train_seconds": round(elapsed, 2),
        "train_pairs": len(train_pairs), "train_unpaired": len(unpaired_rows), "heldout_pairs": len(held_pairs),
        "contaminated_rows": contaminated,
        "left_out_too_long": too_long + held_too_long + unpaired_too_long,
        "train": train_summary, "heldout": held_summary, "scored_in": score_kw["dtype"],
        **trained.metrics,
    }
    _stage.write_result(
        out, run_dir, stage="dpo", fingerprint=fp, model_path=adapter, config=cfg.model_dump(mode="json"),
        inputs={"policy": policy_ref, "preferences": str(prefs_path) if pairs else None,
                "unpaired": str(unpaired_path) if use_unpaired else None, **{f"{k}_sha256": v for k, v in inputs.items()}},
        metrics=metrics, extra={"objective": cfg.objective, "beta": cfg.beta, "loss_type": cfg.loss_type,
                                "precision": precision, "learning_rate": plan.learning_rate, "base_model": base_ref,
                                "merged_path": str(merged) if merged else None},
    )
    shown = ""
    if train_summary:
        shown = (f"; training-pair log-prob margin {train_summary['logp_margin_before']:.3f} -> "
                 f"{train_summary['logp_margin_after']:.3f} ({train_summary['n']} of {len(train_pairs)} pairs scored)")
    if held_summary:
        acc = held_summary["implicit_reward"]
        shown += f"; held-out preference accuracy {acc['accuracy']:.3f} [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}]"
    _log.done(f"{cfg.objective.upper()} trained in {elapsed:.0f}s: loss {loss:.4f}{shown}; saved {adapter}")
    return DPOResult(out, adapter, metrics)
