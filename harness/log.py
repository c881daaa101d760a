"""Console output: progress and plain-words status lines on stderr (stdout stays for results)."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, highlight=False)


def info(message: str) -> None:
    console.print(f"[bold cyan]•[/] {message}")


def warn(message: str) -> None:
    console.print(f"[bold yellow]![/] {message}")


def done(message: str) -> None:
    console.print(f"[bold green]✓[/] {message}")
