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

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["write", *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(cls=_WriteByDefault, help="The audit report of a run (HTML, PDF, JSON): write, verify, diff.")


@report_app.command("write")
def write(
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
    app.add_typer(report_app, name="report")
