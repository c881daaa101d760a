"""``harness ledger``: verify, seal and show the tamper-evident decision ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from harness import log as _log
from harness.cliutil import JsonOpt, listing

__all__ = ["ledger_app"]

ledger_app = typer.Typer(no_args_is_help=True, help="The tamper-evident decision ledger: verify, seal, show.")

LedgerOpt = typer.Option(None, "--path", help="Ledger file (default: $HARNESS_LEDGER or $HARNESS_HOME/ledger/ledger.jsonl).",
                         dir_okay=False)


@ledger_app.command("verify")
def ledger_verify(path: Optional[Path] = LedgerOpt) -> None:
    """Check the hash chain (and, with $HARNESS_LEDGER_KEY, every MAC); report the first edited, deleted, inserted,
    reordered or forged entry (exit 1), and whether the ledger is keyed."""
    from harness import ledger

    check = ledger.verify(path)
    print(json.dumps(check.as_dict(), indent=2))
    if check.ok:
        keyed = {"verified": "keyed and verified", "unchecked": f"keyed, MACs not checked ({ledger.KEY_ENV} not set)",
                 "none": "not keyed"}[check.keyed]
        _log.done(f"{check.path}: {check.entries} entries, chain intact, {keyed}: {check.message}")
    else:
        where = f" (line {check.line})" if check.line else ""
        _log.warn(f"{check.path}: {check.problem}{where}: {check.message}")
        raise typer.Exit(1)


@ledger_app.command("seal")
def ledger_seal(path: Optional[Path] = LedgerOpt,
                actor: str = typer.Option(..., "--by", help="Who vouches for the ledger as it stands (name).")) -> None:
    """Key the ledger from now on with $HARNESS_LEDGER_KEY: appends a 'seal' entry whose MAC vouches for the chain."""
    from harness import ledger

    entry = ledger.seal(actor, path)
    _log.done(f"sealed at entry {entry['seq']} by {actor}: later entries need {ledger.KEY_ENV}, and verify checks their MACs")


@ledger_app.command("show")
def ledger_show(path: Optional[Path] = LedgerOpt, last: int = typer.Option(20, help="Show the last N entries."),
                as_json: bool = JsonOpt) -> None:
    """Print the latest ledger entries."""
    from harness import ledger

    entries = ledger.read_entries(Path(path or ledger.default_path()))[-last:]
    rows = entries if as_json else [{**e, "subject": json.dumps(e.get("subject"), sort_keys=True)} for e in entries]
    listing("ledger", {"seq": "seq", "time": "time", "action": "action", "actor": "actor", "subject": "subject"},
            rows, as_json)
