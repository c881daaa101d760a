"""The ``harness`` command line: parses arguments, builds a config, calls one stage's ``run``.

Every command takes ``--config FILE`` plus dotted ``key=value`` overrides (``sft.max_steps=2``).
User errors print one clear message (no traceback) and exit with code 2.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from harness import cliutil, log as _log
from harness.cliutil import (
    ConfigOpt, JsonOpt, OverridesArg, PdfOpt, PdfRendererOpt, listing, load, model_ref, pdf_overrides, stage_overrides,
    run_writer, with_run_id,
)
from harness.errors import EXIT_CODES, EXIT_REJECTED, EXIT_USER_ERROR, HarnessError
from harness.ledger_cli import ledger_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Alignment and evaluation harness: tune -> evaluate -> align, with gated promotion.\n\n"
                       "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + ".")
data_app = typer.Typer(no_args_is_help=True, help="Prepare training data.")
models_app = typer.Typer(no_args_is_help=True, help="Built-in and local models.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect configurations.")
registry_app = typer.Typer(no_args_is_help=True, help="The model registry (MLflow): list, show, rollback.")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.add_typer(ledger_app, name="ledger")  # harness/ledger_cli.py
app.add_typer(registry_app, name="registry")


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
    cfg = load(config, overrides, defaults)
    if input:  # command-line inputs replace the config's sources
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"sources": load(None, None, defaults).data.sources})})
    if output:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"output_dir": output})})
    if cfg.data.output_dir is None:
        cfg = with_run_id(cfg)
    with run_writer(cfg) if cfg.data.output_dir is None else contextlib.nullcontext():  # --output: no run written
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
    dry_run: bool = typer.Option(False, "--dry-run", help="Say which stages would run and which are unchanged; run nothing."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """The whole loop: data, SFT, eval, feedback, reward, DPO, online RL, eval, gate, promote, report.

    Re-running skips every stage whose config and inputs are unchanged (by hash); stages:
    data sft eval feedback reward dpo online final_eval review gate promote report.
    Exit codes: 0 finished (promoted, or awaiting sign-off), 1 a stage crashed, 2 bad input (both say
    which stage; the next run resumes there), 3 rejected by the gate, 4 paused waiting for reviewers.
    """
    from harness import cycle as cycle_stage

    extra = pdf_overrides(overrides, pdf, pdf_renderer)
    if resume and config is None:  # the config file and overrides the run was started with
        cfg, config_file, extra = cliutil.resume_config(resume, Path("runs"), extra)
    elif resume:
        cfg, config_file = load(config, [*extra, f"run.id={resume}"]), config
    else:
        cfg, config_file = with_run_id(load(config, extra)), config
    if dry_run:
        from rich.console import Console

        table = Table("stage", "this run", title=f"cycle {cfg.run.id} (dry run: nothing runs)")
        for name, runs in cycle_stage.preview(cfg, from_stage=from_stage):
            table.add_row(name, "[yellow]runs[/]" if runs else "[green]unchanged, skipped[/]")
        Console().print(table)
        return
    result = cycle_stage.run(cfg, config_file=config_file, overrides=extra, from_stage=from_stage, until=until)
    print(json.dumps({"run_dir": str(result.run_dir), "outcome": result.outcome, "decision_id": result.decision_id,
                      "report": str(result.report) if result.report else None, "warnings": result.warnings}, indent=2))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


@app.command("eval")
def eval_cmd(
    config: Optional[Path] = ConfigOpt,
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Model(s) to score (repeatable)."),
    suite: Optional[list[str]] = typer.Option(None, "--suite", "-s", help="Suite name or group (repeatable)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score only the first N documents of each suite."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (default: <run>/eval); for compare, the JSON file."),
    retention_data: Optional[Path] = typer.Option(None, "--retention-data", help="Local copies of standard benchmarks."),
    list_suites: bool = typer.Option(False, "--list", help="List the available suites and exit."),
    rag: bool = typer.Option(False, "--rag", help="Also score the domain suites with retrieved passages (eval.rag) and "
                                                  "show each model without and with them."),
    rag_corpus: Optional[Path] = typer.Option(None, "--rag-corpus", help="Documents to retrieve from (sets eval.rag.corpus; "
                                                                         "eval.rag.k=, eval.rag.retriever=dense as overrides)."),
    as_json: bool = JsonOpt,
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
        suite_dirs = tuple(load(config, args[3:]).eval.suite_dirs)  # your own suites' hooks, for summary metrics
        return _eval_compare(Path(args[1]), Path(args[2]), output, suite_dirs)
    from harness import evaluate
    from harness.suites import available_suites

    if list_suites:
        listing("suites", {"suite": "suite", "version": "version", "license": "license", "metrics": "metrics"},
                [{"suite": sid, "version": s.version, "license": s.spec.license,
                  "metrics": ", ".join(m.name for m in s.spec.metrics)} for sid, s in sorted(available_suites().items())],
                as_json)
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
    if rag_corpus:
        extra.append(f"eval.rag.corpus={rag_corpus.resolve()}")
    cfg = load(config, extra)
    if rag and cfg.eval.rag is None:
        raise HarnessError("--rag needs documents to retrieve from", hint="add --rag-corpus FILE_OR_DIR, or set eval.rag.corpus")
    if cfg.eval.output_dir is None:
        cfg = with_run_id(cfg)
    with run_writer(cfg) if cfg.eval.output_dir is None else contextlib.nullcontext():  # --output: no run written
        result = evaluate.run(cfg)
    table = Table("model", "suite", "metric", "estimate", "95% CI", "n", "cached")
    for row in result.table():
        est = row["estimate"]
        table.add_row(row["model"], row["suite"], row["metric"], f"{est:.4f}" if isinstance(est, float) else str(est),
                      f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]", str(row["n"]), "yes" if row["cached"] else "")
    _log.console.print(table)
    _rag_table(result)
    print(json.dumps({"output_dir": str(result.output_dir),
                      "results": [str(r.folder) for r in result.results]}, indent=2))


def _rag_table(result: Any) -> None:
    """Each model without and with retrieved passages, side by side (the 2x2 of base / fine-tuned x RAG)."""
    from harness.rag import rag_table

    def cell(m: dict | None) -> str:
        return "-" if not m or m.get("estimate") is None else f"{m['estimate']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"

    if not (rows := rag_table([r.summary for r in result.results])):
        return
    table = Table("model", "suite", "metric", "without RAG", "with RAG", "retrieval recall", title="retrieval-augmented")
    for r in rows:
        recall = r["recall"] or {}
        table.add_row(r["model"], r["suite"], r["metric"], cell(r["plain"]), cell(r["rag"]),
                      f"{recall.get('metric', '')} {cell(recall)} (n={recall.get('n')})")
    _log.console.print(table)


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


@models_app.command("list")
def models_list(as_json: bool = JsonOpt) -> None:
    """List the built-in models and whether they are prepared."""
    from harness.models import list_builtins

    listing("built-in models", {"ref": "reference", "params": "parameters", "prepared": "prepared",
                                "description": "description"}, list_builtins(), as_json)


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
    """Decide, under a written policy, whether the candidate may replace the incumbent (exit 3: it may not)."""
    from harness import gate as gate_stage

    extra = stage_overrides(overrides, "gate", policy=policy)
    if candidate:
        extra.append(f"gate.candidate={model_ref(candidate)}")
    if incumbent:
        extra.append(f"gate.incumbent={model_ref(incumbent)}")
    cfg = load(config, extra)
    with run_writer(cfg):
        result = gate_stage.run(cfg)
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
        raise typer.Exit(EXIT_REJECTED)


@app.command()
def promote(
    decision_id: str = typer.Argument(..., help="The id printed by 'harness gate' (dec-...)."),
    approver: Optional[str] = typer.Option(None, "--approver", help="Who signs the promotion off (required by some policies)."),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Make a passing decision's candidate the champion (registry alias + ledger entry)."""
    from harness import registry

    r = registry.promote(load(config, overrides), decision_id, approver)
    print(json.dumps({"model": r.model, "version": r.version, "decision_id": r.decision_id, "previous": r.previous}, indent=2))


@registry_app.command("list")
def registry_list(config: Optional[Path] = ConfigOpt, as_json: bool = JsonOpt,
                  overrides: Optional[list[str]] = OverridesArg) -> None:
    """Registered versions; the champion is marked."""
    from harness import registry

    rows = registry.list_versions(load(config, overrides))
    shown = [{**r, "champion": r["champion"] if as_json else ("yes" if r["champion"] else "")} for r in rows]
    listing("registered versions", {"version": "version", "champion": "champion", "decision_id": "decision",
                                    "fingerprint": "fingerprint", "candidate": "candidate", "approver": "approver"},
            shown, as_json)


@registry_app.command("show")
def registry_show(version: str = typer.Argument(...), config: Optional[Path] = ConfigOpt,
                  overrides: Optional[list[str]] = OverridesArg) -> None:
    """One registered version."""
    from harness import registry

    print(json.dumps(registry.show_version(load(config, overrides), version), indent=2, default=str))


@registry_app.command("rollback")
def registry_rollback(
    to: Optional[str] = typer.Option(None, "--to", help="Version to restore (default: the previous champion)."),
    approver: Optional[str] = typer.Option(None, "--approver", help="Who decided the rollback."),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Move the champion alias back to the previous champion (recorded in the ledger)."""
    from harness import registry

    r = registry.rollback(load(config, overrides), approver, to)
    print(json.dumps({"model": r.model, "champion": r.version, "was": r.previous}, indent=2))


@config_app.command("show")
def config_show(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Print the fully resolved configuration (defaults filled in)."""
    import yaml

    cfg = load(config, overrides)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


@config_app.command("schema")
def config_schema() -> None:
    """Print the configuration's JSON schema with every field's description."""
    from harness.config import config_model

    print(json.dumps(config_model().model_json_schema(), indent=2))


def main(argv: list[str] | None = None) -> int:
    cliutil.ARGV[:] = list(argv if argv is not None else sys.argv[1:])
    cliutil.quiet_libraries()
    try:
        register_plugin_commands()
        # Without standalone mode, click returns the code of a typer.Exit instead of raising it.
        code = app(args=argv, standalone_mode=False, prog_name="harness")
    except HarnessError as exc:
        _log.console.print(f"[bold red]error:[/] {exc.render()}", markup=True, highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        _log.console.print("[red]aborted[/]")
        return 130
    except _USAGE_ERRORS as exc:  # an unknown command or option, a bad option value
        _usage_error(exc)
        return EXIT_USER_ERROR
    return code if isinstance(code, int) else 0


_plugin_commands: list = []


def register_plugin_commands() -> typer.Typer:
    """Add the plugins' commands (entry points 'harness.commands': harness sft, feedback, report ...) to
    the app, once; at the first command line parsed, so importing the kernel loads no plugin."""
    from harness.plugins import command_registrars

    if not _plugin_commands:
        for register in command_registrars():
            register(app)
            _plugin_commands.append(register)
    return app


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


def entry() -> None:
    """Console-script entry point. Objects are frozen before exit (atexit handlers still run): with torch and
    lm-eval loaded, the interpreter's final garbage collections took about 2 s on 2 CPU cores."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
