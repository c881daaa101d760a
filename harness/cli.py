"""The ``harness`` command line: parses arguments, builds a config, calls one stage's ``run``.

Every command takes ``--config FILE`` plus dotted ``key=value`` overrides (``sft.max_steps=2``).
User errors print one clear message (no traceback) and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from harness import _log
from harness.errors import EXIT_USER_ERROR, HarnessError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Alignment and evaluation harness: tune -> evaluate -> align, with gated promotion.")
data_app = typer.Typer(no_args_is_help=True, help="Prepare training data.")
models_app = typer.Typer(no_args_is_help=True, help="Built-in and local models.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect configurations.")
feedback_app = typer.Typer(no_args_is_help=True, help="Human review in Label Studio: serve, push, simulate, pull, export.")
registry_app = typer.Typer(no_args_is_help=True, help="The model registry (MLflow): list, show, rollback.")
ledger_app = typer.Typer(no_args_is_help=True, help="The tamper-evident decision ledger: verify, show.")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.add_typer(feedback_app, name="feedback")
app.add_typer(ledger_app, name="ledger")
app.add_typer(registry_app, name="registry")

ConfigOpt = typer.Option(None, "--config", "-c", help="Cycle YAML file.", dir_okay=False)
LauncherOpt = typer.Option("none", "--launcher", help="none, or accelerate: re-launch under 'accelerate launch'.")
AccelerateConfigOpt = typer.Option(
    None, "--accelerate-config", help="accelerate config file, or a shipped one: ddp, fsdp, deepspeed_zero3.")
NumProcessesOpt = typer.Option(None, "--num-processes", help="Processes (GPUs) for the launcher; default: the config's.")
_ARGV: list[str] = []  # the raw command line, for re-launching a stage under accelerate


def _maybe_relaunch(stage: str, launcher: str, accelerate_config: Optional[str], num_processes: Optional[int]) -> None:
    """With --launcher accelerate, run this same command under 'accelerate launch' and exit with its code."""
    if launcher == "none":
        return
    if launcher != "accelerate":
        raise HarnessError(f"--launcher {launcher}: unknown launcher", hint="use none or accelerate")
    if not accelerate_config:
        raise HarnessError("--launcher accelerate needs --accelerate-config",
                           hint="a file from 'accelerate config', or one of: ddp, fsdp, deepspeed_zero3")
    from harness import launch

    args = _ARGV[_ARGV.index(stage) + 1:] if stage in _ARGV else []
    raise typer.Exit(launch.relaunch(stage, args, accelerate_config, num_processes=num_processes))
OverridesArg = typer.Argument(None, help="Dotted overrides, e.g. sft.max_steps=2 run.id=try1.", show_default=False)
PdfOpt = typer.Option(None, "--pdf/--no-pdf", help="Print audit.pdf too (default: cycle.pdf, true).", show_default=False)
PdfRendererOpt = typer.Option(None, "--pdf-renderer", help="weasyprint (default) or chromium (overrides cycle.pdf_renderer).")


def _pdf_overrides(overrides: Optional[list[str]], pdf: Optional[bool], renderer: Optional[str]) -> list[str]:
    extra = list(overrides or [])
    if pdf is not None:
        extra.append(f"cycle.pdf={'true' if pdf else 'false'}")
    if renderer is not None:
        extra.append(f"cycle.pdf_renderer={renderer}")
    return extra


def _load(config: Optional[Path], overrides: Optional[list[str]], defaults: dict[str, Any] | None = None):
    from harness.config import load_config

    return load_config(config, overrides or [], defaults=defaults)


def _with_run_id(cfg):
    """Give a config without run.id a fresh timestamped one (printed, so the user can reuse it)."""
    if cfg.run.id is not None:
        return cfg
    import datetime as dt

    run_id = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
    _log.info(f"run id: {run_id} (set run.id to choose one)")
    return cfg.model_copy(update={"run": cfg.run.model_copy(update={"id": run_id})})


@data_app.command("prepare")
def data_prepare(
    config: Optional[Path] = ConfigOpt,
    input: Optional[list[Path]] = typer.Option(None, "--input", "-i", help="Data file(s); each file is one domain named after it."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (default: <run>/data)."),
    force: bool = typer.Option(False, help="Replace an existing output folder prepared from other inputs."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Normalize, dedupe, mix and split data; write train/validation JSONL and a data card."""
    from harness import data

    defaults: dict[str, Any] = {}
    if input:
        defaults["data"] = {"sources": [{"path": str(p.resolve()), "domain": p.stem} for p in input]}
    if output:
        defaults.setdefault("data", {})["output_dir"] = str(output)
    cfg = _load(config, overrides, defaults)
    if input:  # command-line inputs replace the config's sources
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"sources": _load(None, None, defaults).data.sources})})
    if output:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"output_dir": output})})
    if cfg.data.output_dir is None:
        cfg = _with_run_id(cfg)
    result = data.run(cfg, force=force)
    print(json.dumps({"output_dir": str(result.output_dir), **result.counts}, indent=2))


@app.command()
def cycle(
    config: Optional[Path] = ConfigOpt,
    from_stage: Optional[str] = typer.Option(None, "--from", help="Re-run this stage and every later one, even if unchanged."),
    until: Optional[str] = typer.Option(None, "--until", help="Stop after this stage ('feedback': once the review tasks are pushed)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an earlier cycle by its run id (e.g. after the reviewers labeled)."),
    pdf: Optional[bool] = PdfOpt,
    pdf_renderer: Optional[str] = PdfRendererOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """The whole loop: data, SFT, eval, feedback, reward, DPO, online RL, eval, gate, promote, report.

    Re-running skips every stage whose config and inputs are unchanged (by hash); stages:
    data sft eval feedback reward dpo online final_eval review gate promote report.
    Exit codes: 0 finished (promoted, or awaiting sign-off), 1 rejected by the gate, 2 a stage failed
    (it says which; the next run resumes there), 3 paused waiting for reviewers.
    """
    from harness import cycle as cycle_stage

    extra = _pdf_overrides(overrides, pdf, pdf_renderer)
    if resume and config is None:  # the config file and overrides the run was started with
        cfg, config_file, extra = cycle_stage.resume_config(resume, Path("runs"), extra)
    elif resume:
        cfg, config_file = _load(config, [*extra, f"run.id={resume}"]), config
    else:
        cfg, config_file = _with_run_id(_load(config, extra)), config
    result = cycle_stage.run(cfg, config_file=config_file, overrides=extra, from_stage=from_stage, until=until)
    print(json.dumps({"run_dir": str(result.run_dir), "outcome": result.outcome, "decision_id": result.decision_id,
                      "report": str(result.report) if result.report else None, "warnings": result.warnings}, indent=2))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command()
def sft(
    config: Optional[Path] = ConfigOpt,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model reference (overrides model.base)."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Prepared data folder (overrides sft.data_dir)."),
    resume: bool = typer.Option(False, help="Continue an unfinished run from its last checkpoint."),
    force: bool = typer.Option(False, help="Discard an earlier run in the same folder and start over."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Supervised fine-tuning with full, lora, qlora, dora, prefix, ia3 or freeze."""
    _maybe_relaunch("sft", launcher, accelerate_config, num_processes)
    from rlhf import sft as sft_stage

    extra = list(overrides or [])
    if model:
        extra.append(f"model.base={model}")
    if data:
        extra.append(f"sft.data_dir={data.resolve()}")
    cfg = _with_run_id(_load(config, extra))
    result = sft_stage.run(cfg, resume=resume, force=force)
    m = result.metrics
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "train_loss": m.get("train_loss"), "eval_loss_initial": m.get("eval_loss_initial"),
                      "eval_loss_final": m.get("eval_loss_final"), "up_to_date": result.up_to_date}, indent=2))


@app.command()
def merge(
    config: Optional[Path] = ConfigOpt,
    adapter: Optional[Path] = typer.Option(None, "--adapter", "-a", help="Adapter folder (default: <run>/sft/adapter)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Merged model folder (default: <run>/merged)."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Fold a LoRA/DoRA/IA3 adapter into its base and check the logits match base+adapter."""
    from rlhf import merge as merge_stage

    extra = list(overrides or [])
    if adapter:
        extra.append(f"merge.adapter={adapter.resolve()}")
    if output:
        extra.append(f"merge.output={output}")
    cfg = _load(config, extra)
    result = merge_stage.run(cfg)
    print(json.dumps({"output": str(result.output), "max_abs_logit_diff": result.max_abs_diff}, indent=2))


def _ref(value: str) -> str:
    """A model reference from the command line: an existing path is made absolute (relative to the
    working directory, not to the config file); builtin:, hub ids and 'none' pass through."""
    return str(Path(value).resolve()) if Path(value).exists() else value


def _stage_overrides(overrides: Optional[list[str]], section: str, **paths: Optional[Path]) -> list[str]:
    extra = list(overrides or [])
    for key, value in paths.items():
        if value is not None:
            extra.append(f"{section}.{key}={value.resolve()}")
    return extra


@app.command()
def reward(
    config: Optional[Path] = ConfigOpt,
    preferences: Optional[Path] = typer.Option(None, "--preferences", "-p", help="Preference pairs JSONL (overrides reward.preferences)."),
    force: bool = typer.Option(False, help="Discard an earlier reward model of this run and train again."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Train a reward model (LoRA + score head) on reviewers' preference pairs."""
    _maybe_relaunch("reward", launcher, accelerate_config, num_processes)
    from rlhf import reward as reward_stage

    cfg = _with_run_id(_load(config, _stage_overrides(overrides, "reward", preferences=preferences)))
    result = reward_stage.run(cfg, force=force)
    held = result.metrics.get("heldout") or {}
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "train_loss": result.metrics.get("train_loss"), "heldout_accuracy": held.get("accuracy"),
                      "heldout_ci": [held.get("ci_low"), held.get("ci_high")], "up_to_date": result.up_to_date}, indent=2))


@app.command()
def dpo(
    config: Optional[Path] = ConfigOpt,
    policy: Optional[str] = typer.Option(None, "--policy", help="Adapter or model to start from (overrides dpo.policy)."),
    preferences: Optional[Path] = typer.Option(None, "--preferences", "-p", help="Preference pairs JSONL (overrides dpo.preferences)."),
    force: bool = typer.Option(False, help="Discard an earlier DPO run of this run id and train again."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Preference-tune the policy with DPO (or KTO: dpo.objective=kto); the reference is the starting policy."""
    _maybe_relaunch("dpo", launcher, accelerate_config, num_processes)
    from rlhf import dpo as dpo_stage

    extra = _stage_overrides(overrides, "dpo", preferences=preferences)
    if policy:
        extra.append(f"dpo.policy={_ref(policy)}")
    cfg = _with_run_id(_load(config, extra))
    result = dpo_stage.run(cfg, force=force)
    m = result.metrics
    train, held = m.get("train") or {}, (m.get("heldout") or {}).get("implicit_reward") or {}
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "train_loss": m.get("train_loss"), "train_logp_margin_change": train.get("logp_margin_change"),
                      "heldout_preference_accuracy": held.get("accuracy"), "up_to_date": result.up_to_date}, indent=2))


@app.command()
def online(
    config: Optional[Path] = ConfigOpt,
    policy: Optional[str] = typer.Option(None, "--policy", help="Adapter or model to start from (overrides online.policy)."),
    reward_model: Optional[str] = typer.Option(None, "--reward-model", help="Reward model adapter, or 'none' (overrides online.reward_model)."),
    force: bool = typer.Option(False, help="Discard an earlier online RL run of this run id and train again."),
    launcher: str = LauncherOpt,
    accelerate_config: Optional[str] = AccelerateConfigOpt,
    num_processes: Optional[int] = NumProcessesOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Online RL (PPO family: GRPO or RLOO) against the reward model, with a KL leash and ceiling."""
    _maybe_relaunch("online", launcher, accelerate_config, num_processes)
    from rlhf import online as online_stage

    extra = list(overrides or [])
    if policy:
        extra.append(f"online.policy={_ref(policy)}")
    if reward_model:
        extra.append(f"online.reward_model={_ref(reward_model)}")
    cfg = _with_run_id(_load(config, extra))
    result = online_stage.run(cfg, force=force)
    m = result.metrics
    print(json.dumps({"output_dir": str(result.output_dir), "model_path": str(result.model_path),
                      "steps": m.get("global_step"), "reward": m.get("reward"), "kl": m.get("kl"),
                      "stopped_by_kl_ceiling": m.get("stopped_by_kl_ceiling"), "up_to_date": result.up_to_date}, indent=2))


@app.command("eval")
def eval_cmd(
    config: Optional[Path] = ConfigOpt,
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Model(s) to score (repeatable)."),
    suite: Optional[list[str]] = typer.Option(None, "--suite", "-s", help="Suite name or group (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score only the first N documents of each suite."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (default: <run>/eval); for compare, the JSON file."),
    retention_data: Optional[Path] = typer.Option(None, "--retention-data", help="Local copies of standard benchmarks."),
    list_suites: bool = typer.Option(False, "--list", help="List the available suites and exit."),
    args: Optional[list[str]] = typer.Argument(
        None, help="Dotted overrides (eval.batch_size=8), or: compare REFERENCE CANDIDATE.", show_default=False),
) -> None:
    """Score models on suites, or compare two results: harness eval compare REFERENCE CANDIDATE.

    Scores land in runs/<id>/eval/<model-fingerprint>/<group>/<suite>/{samples.jsonl,summary.json}.
    """
    args = list(args or [])
    if args and args[0] == "compare":
        if len(args) < 3 or any("=" not in a for a in args[3:]):
            raise HarnessError("usage: harness eval compare REFERENCE CANDIDATE [--output FILE] [--config FILE] [overrides]",
                               hint="each is <run>/eval/<model-fingerprint> or one of its <group>/<suite> folders")
        suite_dirs = tuple(_load(config, args[3:]).eval.suite_dirs)  # your own suites' hooks, for summary metrics
        return _eval_compare(Path(args[1]), Path(args[2]), output, suite_dirs)
    from harness import evaluate
    from harness.suites import available_suites

    if list_suites:
        table = Table("suite", "version", "license", "metrics")
        for sid, s in sorted(available_suites().items()):
            table.add_row(sid, str(s.version), s.spec.license, ", ".join(m.name for m in s.spec.metrics))
        _log.console.print(table)
        return
    extra = args
    if model:
        extra.append("eval.models=" + json.dumps(list(model)))
    if suite:
        extra.append("eval.suites=" + json.dumps(list(suite)))
    if limit is not None:
        extra.append(f"eval.limit={limit}")
    if output:
        extra.append(f"eval.output_dir={output}")
    if retention_data:
        extra.append(f"eval.retention_data_dir={retention_data.resolve()}")
    cfg = _load(config, extra)
    if cfg.eval.output_dir is None:
        cfg = _with_run_id(cfg)
    result = evaluate.run(cfg)
    table = Table("model", "suite", "metric", "estimate", "95% CI", "n", "cached")
    for row in result.table():
        est = row["estimate"]
        table.add_row(row["model"], row["suite"], row["metric"], f"{est:.4f}" if isinstance(est, float) else str(est),
                      f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]", str(row["n"]), "yes" if row["cached"] else "")
    _log.console.print(table)
    print(json.dumps({"output_dir": str(result.output_dir),
                      "results": [str(r.folder) for r in result.results]}, indent=2))


def _eval_compare(reference: Path, candidate: Path, output: Optional[Path], suite_dirs: tuple[Path, ...]) -> None:
    """Paired comparison of two models' results on the same samples (bootstrap CI, McNemar, effect size)."""
    from harness.compare import compare_dirs

    comparison, path = compare_dirs(reference, candidate, output, suite_dirs)
    table = Table("suite", "metric", "reference", "candidate", "difference", "95% CI", "test", "p", "n")
    for row in comparison["rows"]:
        table.add_row(row["suite"], row["metric"], f"{row['reference_mean']:.4f}", f"{row['candidate_mean']:.4f}",
                      f"{row['difference']:+.4f}", f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
                      row.get("test", ""), f"{row.get('p_value', float('nan')):.3g}", str(row["n"]))
    _log.console.print(table)
    print(path)


def _feedback_config(config: Optional[Path], overrides: Optional[list[str]]):
    cfg = _load(config, overrides)
    if cfg.run.id is None:
        raise HarnessError("feedback commands need run.id (the run whose candidate is reviewed)",
                           hint="pass --config with run.id, or run.id=NAME")
    return cfg


@feedback_app.command("serve")
def feedback_serve(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Start a local Label Studio (127.0.0.1, sign-up off, token from env or a 0600 secret file)."""
    from feedback import server

    fb = _load(config, overrides).feedback
    info = server.serve(data_dir=fb.data_dir, port=fb.port, venv=fb.venv)
    print(json.dumps({"url": info.url, "pid": info.pid, "data_dir": str(info.data_dir)}, indent=2))


@feedback_app.command("stop")
def feedback_stop(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Stop the local Label Studio."""
    from feedback import server

    stopped = server.stop(_load(config, overrides).feedback.data_dir)
    _log.done("Label Studio stopped" if stopped else "no local Label Studio was running")


@feedback_app.command("status")
def feedback_status(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Is the local Label Studio up?"""
    from feedback import server

    info = server.status(_load(config, overrides).feedback.data_dir)
    if info is None:
        print(json.dumps({"running": False}))
        raise typer.Exit(1)
    print(json.dumps({"running": info.healthy, "url": info.url, "pid": info.pid}))
    if not info.healthy:
        raise typer.Exit(1)


@feedback_app.command("push")
def feedback_push(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Generate candidate and incumbent responses and import them as blind pairwise tasks."""
    from feedback import push

    r = push.run(_feedback_config(config, overrides))
    print(json.dumps({"project_id": r.project_id, "url": f"{r.url}/projects/{r.project_id}", "created": r.created,
                      "already_there": r.already_there, "tasks": str(r.tasks_path)}, indent=2))


@feedback_app.command("simulate")
def feedback_simulate(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Scripted reviewers annotate through the API (for unattended demos; marked simulated)."""
    from feedback import simulate

    r = simulate.run(_feedback_config(config, overrides))
    print(json.dumps({"annotations": r.annotations, "reviewers": r.reviewers}, indent=2))


@feedback_app.command("pull")
def feedback_pull(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Export reviews (snapshot) and merge them into annotations.jsonl; safe to repeat."""
    from feedback import pull

    r = pull.run(_feedback_config(config, overrides))
    print(json.dumps({"annotations": r.annotations, "new": r.new, "counts": r.counts,
                      "file": str(r.annotations_path)}, indent=2))


@feedback_app.command("export")
def feedback_export(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Agreement, one label per task, TRL preference pairs, win rate and unsafe rate."""
    from feedback import preferences

    r = preferences.run(_feedback_config(config, overrides))
    print(json.dumps({"pairs": r.pairs, "preferences": str(r.preferences_path), "summary": r.summary["win_rate"],
                      "unsafe_rate": r.summary["unsafe_rate"], "simulated": r.summary["simulated"]}, indent=2))


@models_app.command("list")
def models_list() -> None:
    """List the built-in models and whether they are prepared."""
    from harness.models import list_builtins

    table = Table("reference", "parameters", "prepared", "description")
    for row in list_builtins():
        table.add_row(row["ref"], row["params"], "yes" if row["prepared"] else "no", row["description"])
    _log.console.print(table)


@models_app.command("prepare")
def models_prepare(name: str = typer.Argument(..., help="builtin:NAME or NAME")) -> None:
    """Build a built-in model's local folder (once)."""
    from harness.models import prepare_builtin

    path = prepare_builtin(name.removeprefix("builtin:"))
    _log.done(f"builtin:{name.removeprefix('builtin:')} is ready at {path}")
    print(path)


@app.command()
def gate(
    config: Optional[Path] = ConfigOpt,
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Model to promote (overrides gate.candidate)."),
    incumbent: Optional[str] = typer.Option(None, "--incumbent", help="Current champion (overrides gate.incumbent)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy YAML (overrides gate.policy)."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Decide, under a written policy, whether the candidate may replace the incumbent (exit 1: it may not)."""
    from harness import gate as gate_stage

    extra = _stage_overrides(overrides, "gate", policy=policy)
    if candidate:
        extra.append(f"gate.candidate={_ref(candidate)}")
    if incumbent:
        extra.append(f"gate.incumbent={_ref(incumbent)}")
    result = gate_stage.run(_load(config, extra))
    d = result.decision
    table = Table("rule", "requirement", "result", "why")
    for rule in d["rules"]:
        for check in rule["checks"]:
            table.add_row(rule["id"], f"{check.get('suite', '')} {rule['requirement']}".strip(),
                          "[green]pass[/]" if check["passed"] else "[red]fail[/]", check["reason"])
    _log.console.print(table)
    print(json.dumps({"decision_id": d["decision_id"], "outcome": d["outcome"], "summary": d["summary"],
                      "decision": str(result.decision_path)}, indent=2))
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def promote(
    decision_id: str = typer.Argument(..., help="The id printed by 'harness gate' (dec-...)."),
    approver: Optional[str] = typer.Option(None, "--approver", help="Who signs the promotion off (required by some policies)."),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Make a passing decision's candidate the champion (registry alias + ledger entry)."""
    from harness import registry

    r = registry.promote(_load(config, overrides), decision_id, approver)
    print(json.dumps({"model": r.model, "version": r.version, "decision_id": r.decision_id, "previous": r.previous}, indent=2))


@registry_app.command("list")
def registry_list(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Registered versions; the champion is marked."""
    from harness import registry

    rows = registry.list_versions(_load(config, overrides))
    table = Table("version", "champion", "decision", "fingerprint", "candidate", "approver")
    for r in rows:
        table.add_row(r["version"], "yes" if r["champion"] else "", r["decision_id"] or "", r["fingerprint"] or "",
                      r["candidate"] or "", r["approver"] or "")
    _log.console.print(table)


@registry_app.command("show")
def registry_show(version: str = typer.Argument(...), config: Optional[Path] = ConfigOpt,
                  overrides: Optional[list[str]] = OverridesArg) -> None:
    """One registered version."""
    from harness import registry

    print(json.dumps(registry.show_version(_load(config, overrides), version), indent=2, default=str))


@registry_app.command("rollback")
def registry_rollback(
    to: Optional[str] = typer.Option(None, "--to", help="Version to restore (default: the previous champion)."),
    approver: Optional[str] = typer.Option(None, "--approver", help="Who decided the rollback."),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Move the champion alias back to the previous champion (recorded in the ledger)."""
    from harness import registry

    r = registry.rollback(_load(config, overrides), approver, to)
    print(json.dumps({"model": r.model, "champion": r.version, "was": r.previous}, indent=2))


@app.command()
def report(
    run_id: Optional[str] = typer.Argument(None, help="Run id (overrides run.id)."),
    config: Optional[Path] = ConfigOpt,
    pdf: Optional[bool] = PdfOpt,
    pdf_renderer: Optional[str] = PdfRendererOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Write the run's audit report: report/audit.html (self-contained), audit.pdf, audit.json."""
    from reports import audit

    extra = _pdf_overrides(overrides, pdf, pdf_renderer)
    if run_id:
        extra.append(f"run.id={run_id}")
    cfg = _load(config, extra)
    result = audit.run(cfg, pdf=cfg.cycle.pdf, renderer=cfg.cycle.pdf_renderer)
    print(json.dumps({"html": str(result.html), "pdf": str(result.pdf) if result.pdf else None,
                      "json": str(result.json)}, indent=2))


LedgerOpt = typer.Option(None, "--path", help="Ledger file (default: $HARNESS_LEDGER or $HARNESS_HOME/ledger/ledger.jsonl).",
                         dir_okay=False)


@ledger_app.command("verify")
def ledger_verify(path: Optional[Path] = LedgerOpt) -> None:
    """Check the hash chain; report the first edited, deleted, inserted or reordered entry (exit 1)."""
    from harness import ledger

    check = ledger.verify(path)
    print(json.dumps(check.as_dict(), indent=2))
    if check.ok:
        _log.done(f"{check.path}: {check.entries} entries, chain intact")
    else:
        where = f" (line {check.line})" if check.line else ""
        _log.warn(f"{check.path}: {check.problem}{where}: {check.message}")
        raise typer.Exit(1)


@ledger_app.command("show")
def ledger_show(path: Optional[Path] = LedgerOpt, last: int = typer.Option(20, help="Show the last N entries.")) -> None:
    """Print the latest ledger entries."""
    from harness import ledger

    entries = ledger.read_entries(Path(path or ledger.default_path()))
    table = Table("seq", "time", "action", "actor", "subject")
    for e in entries[-last:]:
        table.add_row(str(e.get("seq")), str(e.get("time")), str(e.get("action")), str(e.get("actor")),
                      json.dumps(e.get("subject"), sort_keys=True))
    _log.console.print(table)


@config_app.command("show")
def config_show(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Print the fully resolved configuration (defaults filled in)."""
    import yaml

    cfg = _load(config, overrides)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


@config_app.command("schema")
def config_schema() -> None:
    """Print the configuration's JSON schema with every field's description."""
    from harness.config import CycleConfig

    print(json.dumps(CycleConfig.model_json_schema(), indent=2))


def main(argv: list[str] | None = None) -> int:
    global _ARGV
    _ARGV = list(argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode, click returns the code of a typer.Exit instead of raising it.
        code = app(args=argv, standalone_mode=False, prog_name="harness")
    except HarnessError as exc:
        _log.console.print(f"[bold red]error:[/] {exc.render()}", markup=True, highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _log.console.print("[red]aborted[/]")
        return 130
    except _USAGE_ERRORS as exc:  # an unknown command or option, a bad option value
        _usage_error(exc)
        return EXIT_USER_ERROR
    return code if isinstance(code, int) else 0


def _usage_errors() -> tuple[type[Exception], ...]:
    import click

    # typer >= 0.25 carries its own copy of click, whose exceptions derive from typer.TyperException.
    return tuple({click.ClickException, getattr(typer, "TyperException", click.ClickException)})


_USAGE_ERRORS = _usage_errors()


def _usage_error(exc: Exception) -> None:
    """Two lines, no traceback: what was wrong, and the command's usage with where to find its options."""
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    _log.console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    if ctx is not None:
        _log.console.print(f"usage: {ctx.get_usage().removeprefix('Usage: ')}  ('{ctx.command_path} --help' lists the options)",
                           markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
