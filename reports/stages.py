"""The cycle's last stage (see :mod:`harness.stage`): the audit report of the gate's decision."""

from __future__ import annotations

from typing import Any

from harness.stage import Stage, StageContext, StageResult

__all__ = ["REPORT"]


def _report(ctx: StageContext, cfg: Any) -> StageResult:
    from reports import audit

    r = audit.run(ctx.gate_config())  # cycle.pdf and cycle.pdf_renderer come with the config
    return StageResult(summary=f"{r.html}" + (f" (+ PDF by {r.pdf_renderer}, JSON)" if r.pdf else " (+ JSON)"),
                       artifacts=[str(r.html), str(r.json)] + ([str(r.pdf)] if r.pdf else []),
                       outputs={"html": str(r.html)}, warnings=list(r.warnings))


REPORT = Stage(name="report", title="audit report", order=120, needs=("gate", "promote"), run=_report,
               inputs=lambda ctx: {"pdf": [ctx.config.cycle.pdf, ctx.config.cycle.pdf_renderer]})
