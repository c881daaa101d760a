"""``harness report``: the audit report of a run (registered through the ``harness.commands`` entry point)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from harness.cliutil import ConfigOpt, OverridesArg, PdfOpt, PdfRendererOpt, load, pdf_overrides, run_writer

__all__ = ["register"]


def report(
    run_id: Optional[str] = typer.Argument(None, help="Run id (overrides run.id)."),
    config: Optional[Path] = ConfigOpt,
    pdf: Optional[bool] = PdfOpt,
    pdf_renderer: Optional[str] = PdfRendererOpt,
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Write the run's audit report: report/audit.html (self-contained), audit.pdf, audit.json."""
    from reports import audit

    extra = pdf_overrides(overrides, pdf, pdf_renderer)
    if run_id:
        extra.append(f"run.id={run_id}")
    cfg = load(config, extra)
    with run_writer(cfg):
        result = audit.run(cfg)  # --pdf/--no-pdf and --pdf-renderer are in cfg.cycle
    print(json.dumps({"html": str(result.html), "pdf": str(result.pdf) if result.pdf else None,
                      "json": str(result.json)}, indent=2))



def register(app: typer.Typer) -> None:
    app.command()(report)
