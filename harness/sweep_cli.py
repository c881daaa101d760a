"""``harness sweep``: the command (registered through the ``harness.commands`` entry point, like a plugin's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from harness.cliutil import ConfigOpt, OverridesArg

__all__ = ["register", "sweep"]


def sweep(
    config: Optional[Path] = ConfigOpt,
    methods: str = typer.Option(..., "--methods", help="Tuning methods, comma-separated: lora,dora,ia3,prefix,freeze,..."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Training seeds per variant (run.seed, run.seed+1, ...); "
                                                        "the data split stays the same."),
    grid: Optional[list[str]] = typer.Option(None, "--grid", help="Values to try, KEY=V1,V2 (repeatable), e.g. "
                                             "sft.lora.r=8,16 or data.replay.ratio=0,0.1. sft.lora/prefix/freeze/reft "
                                             "keys vary only the methods that read them."),
    per_method: Optional[list[str]] = typer.Option(None, "--set", help="A setting for one method only, "
                                                   "METHOD:KEY=VALUE (repeatable), e.g. freeze:sft.learning_rate=2e-4."),
    sweep_id: str = typer.Option("sweep", "--id", help="Sweep name: results go to <run.root>/<id>/."),
    force: bool = typer.Option(False, "--force", help="Train and score every variant again, even if unchanged."),
    latency_prompts: int = typer.Option(8, "--latency-prompts", min=0, help="Prompts timed for generation speed "
                                        "(0: skip timing)."),
    overrides: Optional[list[str]] = OverridesArg,
) -> None:
    """Fine-tune and evaluate several methods on the same data and suites; one table with domain gain and
    forgetting (with CIs), bias change, trainable parameters, peak memory, training speed, wall time, adapter
    size and generation speed, Pareto-optimal variants marked. Resumable: unchanged variants are not re-run."""
    from harness import sweep as sweep_mod

    names = [m.strip() for m in methods.split(",") if m.strip()]
    result = sweep_mod.run(config, list(overrides or []), names, seeds=seeds, grid=list(grid or []),
                           per_method=list(per_method or []), sweep_id=sweep_id,
                           force=force, latency_prompts=latency_prompts)
    print(json.dumps({"folder": str(result.folder), "table": str(result.folder / "sweep.md"),
                      "html": str(result.html) if result.html else None,
                      "pareto": [r["variant"] for r in result.table["rows"] if r.get("pareto")]}, indent=2))


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
