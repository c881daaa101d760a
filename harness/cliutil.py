"""What every command of the ``harness`` command line shares, kernel's and plugins' alike: the common
options, loading a config with overrides, run ids, model references, the accelerate re-launch.

Plugins add their commands through the ``harness.commands`` entry point (``register(app)``) and
build them from these pieces, so every command reads ``--config FILE`` plus dotted overrides the same way.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from harness import log as _log
from harness.errors import HarnessError

__all__ = ["ConfigOpt", "OverridesArg", "LauncherOpt", "AccelerateConfigOpt", "NumProcessesOpt", "PdfOpt",
           "PdfRendererOpt", "ARGV", "load", "with_run_id", "model_ref", "stage_overrides", "pdf_overrides",
           "maybe_relaunch", "JsonOpt", "listing", "resume_config", "run_writer"]

ConfigOpt = typer.Option(None, "--config", "-c", help="Cycle YAML file.", dir_okay=False)
OverridesArg = typer.Argument(None, help="Dotted overrides, e.g. sft.max_steps=2 run.id=try1.", show_default=False)
LauncherOpt = typer.Option("none", "--launcher", help="none, or accelerate: re-launch under 'accelerate launch'.")
AccelerateConfigOpt = typer.Option(
    None, "--accelerate-config", help="accelerate config file, or a shipped one: ddp, fsdp, deepspeed_zero3.")
NumProcessesOpt = typer.Option(None, "--num-processes", help="Processes (GPUs) for the launcher; default: the config's.")
PdfOpt = typer.Option(None, "--pdf/--no-pdf", help="Print audit.pdf too (default: cycle.pdf, true).", show_default=False)
PdfRendererOpt = typer.Option(None, "--pdf-renderer", help="weasyprint (default) or chromium (overrides cycle.pdf_renderer).")
JsonOpt = typer.Option(False, "--json", help="Print JSON (one object per row) instead of a table.")
ARGV: list[str] = []  # the raw command line (set by harness.cli.main), for re-launching a stage under accelerate


def maybe_relaunch(stage: str, launcher: str, accelerate_config: Optional[str], num_processes: Optional[int]) -> None:
    """With --launcher accelerate, run this same command under 'accelerate launch' and exit with its code."""
    if launcher == "none":
        return
    if launcher != "accelerate":
        raise HarnessError(f"--launcher {launcher}: unknown launcher", hint="use none or accelerate")
    if not accelerate_config:
        raise HarnessError("--launcher accelerate needs --accelerate-config",
                           hint="a file from 'accelerate config', or one of: ddp, fsdp, deepspeed_zero3")
    from harness import launch

    args = ARGV[ARGV.index(stage) + 1:] if stage in ARGV else []
    raise typer.Exit(launch.relaunch(stage, args, accelerate_config, num_processes=num_processes))


PdfOpt = typer.Option(None, "--pdf/--no-pdf", help="Print audit.pdf too (default: cycle.pdf, true).", show_default=False)
PdfRendererOpt = typer.Option(None, "--pdf-renderer", help="weasyprint (default) or chromium (overrides cycle.pdf_renderer).")


def pdf_overrides(overrides: Optional[list[str]], pdf: Optional[bool], renderer: Optional[str]) -> list[str]:
    extra = list(overrides or [])
    if pdf is not None:
        extra.append(f"cycle.pdf={'true' if pdf else 'false'}")
    if renderer is not None:
        extra.append(f"cycle.pdf_renderer={renderer}")
    return extra


def load(config: Optional[Path], overrides: Optional[list[str]], defaults: dict[str, Any] | None = None):
    from harness.config import load_config

    return load_config(config, overrides or [], defaults=defaults)


def with_run_id(cfg):
    """Give a config without run.id a fresh timestamped one (printed, so the user can reuse it)."""
    if cfg.run.id is not None:
        return cfg
    import datetime as dt

    run_id = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
    _log.info(f"run id: {run_id} (set run.id to choose one)")
    return cfg.model_copy(update={"run": cfg.run.model_copy(update={"id": run_id})})


@contextlib.contextmanager
def run_writer(cfg: Any) -> Iterator[None]:
    """While a command writes into a run (``cfg.run.id``): that run's lock, the one ``harness cycle`` holds,
    so a stage command and a cycle (or two commands) never write the same run at once; the second stops
    at once naming the first. Processes started by ``--launcher accelerate`` take none (their ranks would
    refuse each other): the launching process holds it for them, as stage commands relaunch inside it."""
    import os

    from harness._lock import run_lock
    from harness.launch import LAUNCHED_ENV

    if cfg.run.id is None or os.environ.get(LAUNCHED_ENV):
        yield
        return
    with run_lock(cfg.layout().dir, cfg.run.id):
        yield


def model_ref(value: str) -> str:
    """A model reference from the command line: an existing path is made absolute (relative to the
    working directory, not to the config file); builtin:, hub ids and 'none' pass through."""
    return str(Path(value).resolve()) if Path(value).exists() else value


def stage_overrides(overrides: Optional[list[str]], section: str, **paths: Optional[Path]) -> list[str]:
    extra = list(overrides or [])
    for key, value in paths.items():
        if value is not None:
            extra.append(f"{section}.{key}={value.resolve()}")
    return extra


def listing(title: str, columns: dict[str, str], rows: list[dict[str, Any]], as_json: bool) -> None:
    """What a list/show command prints, on stdout: a table for people (``columns``: key -> heading),
    or with ``--json`` the rows themselves, for machines."""
    import json

    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns.values(), title=title)
    for row in rows:
        table.add_row(*("" if row.get(k) is None else str(row.get(k)) for k in columns))
    Console(soft_wrap=False).print(table)


def resume_config(run_id: str, root: Path = Path("runs"), overrides: list[str] | tuple[str, ...] = ()) -> tuple[Any, Path | None, list[str]]:
    """The config a run was started with (its file, re-read, plus the recorded overrides), for ``--resume``."""
    from harness.config import load_config
    from harness.layout import RunLayout
    from harness.schemas import CycleState, artifact_dict

    path = RunLayout(root / run_id).cycle_state
    if not path.is_file():
        raise HarnessError(f"no cycle run '{run_id}' under {root}/ (no {path})",
                           hint="pass the run id printed by 'harness cycle', and run from the same folder (or give --config)")
    state = artifact_dict(path, CycleState)
    config_file = Path(state["config_file"]) if state.get("config_file") else None
    if config_file is not None and not config_file.is_file():
        raise HarnessError(f"run '{run_id}' was started from {config_file}, which no longer exists",
                           hint="pass --config with the cycle's YAML file")
    recorded = [o for o in state.get("overrides", []) if not o.startswith("run.id=")]
    merged = [*recorded, *overrides, f"run.id={run_id}", f"run.root={root}"]
    return load_config(config_file, merged), config_file, [*recorded, *overrides]


def quiet_libraries() -> None:
    """datasets' map/filter progress bars (tokenizing, filtering inside the trainers) say nothing to a user
    and break up the stages' own lines; HF_DATASETS_DISABLE_PROGRESS_BARS=0 brings them back."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # PEFT reads transformers' deprecated is_gradient_checkpointing whenever an adapter loads: a library's
    # note to itself, not something a user can act on.
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
