"""``harness report``: the audit report of a run, and what a compliance team does with it (registered
through the ``harness.commands`` entry point).

* ``harness report [RUN_ID]`` (the same as ``harness report write RUN_ID``) writes the report;
* ``harness report verify [RUN_ID]`` re-hashes what the report cites and says what changed;
* ``harness report diff RUN_A RUN_B`` compares two cycles;
* ``harness card VERSION`` writes the model card of a promoted version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from harness.cliutil import ConfigOpt, OverridesArg, PdfOpt, PdfRendererOpt, load, pdf_overrides, run_writer

__all__ = ["register", "report_app"]


class _WriteByDefault(TyperGroup):
    """``harness report RUN_ID`` keeps meaning ``harness report write RUN_ID``: anything that is not one of
    the sub-commands (or --help) goes to ``write``."""

    default_command = "write"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(cls=_WriteByDefault, help="The audit report of a run (HTML, PDF, JSON): write, verify, diff.")


@report_app.command("write")
def write(
    run_id: Optional[str] = typer.Argument(None, help="Run id (overrides run.id)."),
    config: Optional[Path] = ConfigOpt,
    pdf: Optional[bool] = PdfOpt,
    pdf_renderer: Optional[str] = PdfRendererOpt,
    profile: Optional[list[str]] = typer.Option(
        None, "--profile", help="Add a regulatory mapping section: eu-ai-act, nist-ai-600-1, or a profile YAML file "
                                "of your own (repeatable; replaces cycle.report_profiles)."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Write the run's audit report: report/audit.html (self-contained), audit.pdf, audit.json."""
    from reports import audit

    extra = pdf_overrides(overrides, pdf, pdf_renderer)
    if profile:  # a file named here is relative to where the command runs, not to the config
        refs = [str(Path(p).expanduser().resolve()) if p.endswith((".yaml", ".yml")) else p for p in profile]
        extra.append(f"cycle.report_profiles={json.dumps(refs)}")
    if run_id:
        extra.append(f"run.id={run_id}")
    cfg = load(config, extra)
    with run_writer(cfg):
        result = audit.run(cfg)  # --pdf/--no-pdf and --pdf-renderer are in cfg.cycle
    print(json.dumps({"html": str(result.html), "pdf": str(result.pdf) if result.pdf else None,
                      "json": str(result.json)}, indent=2))


@report_app.command("verify")
def verify(
    run_id: Optional[str] = typer.Argument(None, help="Run id (overrides run.id)."),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Re-hash every file the run's audit report cites (and its HTML and PDF), check the ledger still holds
    what the report saw and, with $HARNESS_LEDGER_KEY, the report's signature; name what changed (exit 1)."""
    from harness import log as _log
    from reports import evidence

    cfg = load(config, [*(overrides or []), *([f"run.id={run_id}"] if run_id else [])])
    result = evidence.verify(cfg.layout().dir)
    print(json.dumps(result, indent=2))
    if not result["ok"]:
        for problem in result["problems"]:
            _log.warn(problem)
        raise typer.Exit(1)
    _log.done(f"{result['report']}: {result['checked']} cited files unchanged; signature {result['signature']}"
              + (f"; {result['ledger']}" if result.get("ledger") else ""))


@report_app.command("diff")
def diff(
    run_a: str = typer.Argument(..., help="The earlier run id (or registry version, with --versions)."),
    run_b: str = typer.Argument(..., help="The later run id (or registry version, with --versions)."),
    versions: bool = typer.Option(False, "--versions", help="RUN_A and RUN_B are versions of registry.model_name."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", file_okay=False,
                                          help="Folder for diff-<RUN_A>.html and .json (default: <run B>/report/)."),
    config: Optional[Path] = ConfigOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """What changed from run A to run B: config, data, base model, methods, metrics (with CIs), policy, decision."""
    from reports import diff as run_diff

    cfg = load(config, overrides)
    result = run_diff.run(cfg, run_a, run_b, versions=versions, output=output)
    print(json.dumps({"html": str(result.html), "json": str(result.json), "summary": result.diff.summary}, indent=2))


def card(
    version: str = typer.Argument(..., help="Registered version (see 'harness registry list')."),
    config: Optional[Path] = ConfigOpt,
    output: Optional[Path] = typer.Option(None, "--output", "-o", file_okay=False,
                                          help="Folder for README.md (default: <run>/report/model_card/)."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Write the model card (README.md, Hugging Face format) of a promoted version; store it with the version in MLflow."""
    from reports import card as model_card

    cfg = load(config, overrides)
    located = model_card.locate(cfg, version)
    with run_writer(located[0]):
        result = model_card.run(cfg, version, output=output, located=located)
    print(json.dumps({"card": str(result.path), "model": result.model, "version": result.version,
                      "mlflow": result.artifact_uri}, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
    app.command("card")(card)
