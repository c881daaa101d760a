"""The cycle's last stage (see :mod:`harness.stage`): the audit report of the gate's decision, and the model
card of a promoted candidate (:mod:`reports.card`)."""

from __future__ import annotations

from typing import Any

from harness.stage import Stage, StageContext, StageResult

__all__ = ["REPORT"]


def _report(ctx: StageContext, cfg: Any) -> StageResult:
    from harness.artifacts import read_json
    from reports import audit, card as model_card

    config = ctx.gate_config()
    r = audit.run(config)  # cycle.pdf and cycle.pdf_renderer come with the config
    card = model_card.for_report(config, read_json(r.json))  # a promoted candidate's model card, else None
    return StageResult(summary=f"{r.html}" + (f" (+ PDF by {r.pdf_renderer}, JSON)" if r.pdf else " (+ JSON)")
                       + (f", model card {card.path}" if card else ""),
                       artifacts=[str(r.html), str(r.json)] + ([str(r.pdf)] if r.pdf else []) + ([str(card.path)] if card else []),
                       outputs={"html": str(r.html), **({"model_card": str(card.path)} if card else {})},
                       warnings=list(r.warnings))


REPORT = Stage(name="report", title="audit report", order=120, needs=("gate", "promote"), run=_report,
               inputs=lambda ctx: {"pdf": [ctx.config.cycle.pdf, ctx.config.cycle.pdf_renderer],
                                  "profiles": list(ctx.config.cycle.report_profiles)})
