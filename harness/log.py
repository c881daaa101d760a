"""Console output: progress and plain-words status lines on stderr (stdout stays for results); what
libraries print while they work goes to the run's log files instead (:func:`elsewhere`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

console = Console(stderr=True, highlight=False)


def info(message: str) -> None:
    console.print(f"[bold cyan]•[/] {message}")


def warn(message: str) -> None:
    console.print(f"[bold yellow]![/] {message}")


def done(message: str) -> None:
    console.print(f"[bold green]✓[/] {message}")


@contextlib.contextmanager
def elsewhere(path: Path, description: str) -> Iterator[None]:
    """Run chatty library code (lm-eval's tqdm bars, transformers' loading bars, prints): its stdout and
    stderr are appended to ``path`` (the run's log), and the terminal shows one status line meanwhile."""
    terminal = Console(file=sys.stderr, highlight=False)  # bound to the real terminal before redirecting
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh, terminal.status(description):
        fh.write(f"--- {description}\n")
        fh.flush()
        with contextlib.redirect_stderr(fh), contextlib.redirect_stdout(fh):
            yield
