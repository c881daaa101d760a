"""``harness feedback``: human review in Label Studio (registered through the ``harness.commands``
entry point)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from harness import log as _log
from harness.cliutil import ConfigOpt, OverridesArg, load, run_writer
from harness.errors import HarnessError

__all__ = ["register", "feedback_app"]

feedback_app = typer.Typer(no_args_is_help=True, help="Human review in Label Studio: serve, push, simulate, pull, export.")


def _feedback_config(config: Optional[Path], overrides: Optional[list[str]]):
    cfg = load(config, overrides)
    if cfg.run.id is None:
        raise HarnessError("feedback commands need run.id (the run whose candidate is reviewed)",
                           hint="pass --config with run.id, or run.id=NAME")
    return cfg


@feedback_app.command("serve")
def feedback_serve(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Start a local Label Studio (127.0.0.1, sign-up off, token from env or a 0600 secret file)."""
    from feedback import server

    fb = load(config, overrides).feedback
    info = server.serve(data_dir=fb.data_dir, port=fb.port, venv=fb.venv)
    print(json.dumps({"url": info.url, "pid": info.pid, "data_dir": str(info.data_dir)}, indent=2))


@feedback_app.command("stop")
def feedback_stop(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Stop the local Label Studio."""
    from feedback import server

    stopped = server.stop(load(config, overrides).feedback.data_dir)
    _log.done("Label Studio stopped" if stopped else "no local Label Studio was running")


@feedback_app.command("status")
def feedback_status(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Is the local Label Studio up?"""
    from feedback import server

    info = server.status(load(config, overrides).feedback.data_dir)
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

    cfg = _feedback_config(config, overrides)
    with run_writer(cfg):
        r = push.run(cfg)
    print(json.dumps({"project_id": r.project_id, "url": f"{r.url}/projects/{r.project_id}", "created": r.created,
                      "already_there": r.already_there, "tasks": str(r.tasks_path)}, indent=2))


@feedback_app.command("simulate")
def feedback_simulate(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Scripted reviewers annotate through the API (for unattended demos; marked simulated)."""
    from feedback import simulate

    cfg = _feedback_config(config, overrides)
    with run_writer(cfg):
        r = simulate.run(cfg)
    print(json.dumps({"annotations": r.annotations, "reviewers": r.reviewers}, indent=2))


@feedback_app.command("pull")
def feedback_pull(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Export reviews (snapshot) and merge them into annotations.jsonl; safe to repeat."""
    from feedback import pull

    cfg = _feedback_config(config, overrides)
    with run_writer(cfg):
        r = pull.run(cfg)
    print(json.dumps({"annotations": r.annotations, "new": r.new, "counts": r.counts,
                      "file": str(r.annotations_path)}, indent=2))


@feedback_app.command("export")
def feedback_export(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Agreement, one label per task, TRL preference pairs, win rate and unsafe rate."""
    from feedback import preferences

    cfg = _feedback_config(config, overrides)
    with run_writer(cfg):
        r = preferences.run(cfg)
    print(json.dumps({"pairs": r.pairs, "preferences": str(r.preferences_path), "summary": r.summary["win_rate"],
                      "unsafe_rate": r.summary["unsafe_rate"], "simulated": r.summary["simulated"]}, indent=2))

reviewers_app = typer.Typer(no_args_is_help=True, help="Reviewers' own Label Studio accounts (never a shared admin login).")
feedback_app.add_typer(reviewers_app, name="reviewers")


@reviewers_app.command("add")
def reviewers_add(name: str = typer.Argument(..., help="The reviewer's name, e.g. 'Ana Lima'."),
                  email: str = typer.Argument(..., help="Their email: their login in Label Studio."),
                  config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """Create a reviewer's account; on the local server, print a one-time password (shown once, stored nowhere)."""
    from feedback import accounts

    reviewer = accounts.add(load(config, overrides), name, email)
    _log.done(f"account {reviewer.email} created for {reviewer.name} (id {reviewer.id}); their labels carry this account")
    if reviewer.password:
        # the one place a secret is shown: for the administrator to hand over; it is not logged or stored
        print(f"one-time password for {reviewer.email}: {reviewer.password}")
        _log.info("hand it over privately; the reviewer changes it under Account & Settings after logging in")
    else:
        _log.info("a remote Label Studio: send the reviewer the organization's invite link, or set the password there")


@reviewers_app.command("list")
def reviewers_list(config: Optional[Path] = ConfigOpt, overrides: Optional[list[str]] = OverridesArg) -> None:
    """The reviewers' accounts (not the admin, not the scripted reviewers)."""
    from feedback import accounts

    rows = accounts.list_reviewers(load(config, overrides))
    print(json.dumps([{"id": r.id, "name": r.name, "email": r.email} for r in rows], indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(feedback_app, name="feedback")
