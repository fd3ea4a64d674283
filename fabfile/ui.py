"""Readable runs: one rich console, one line per step, tables for summaries."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fabfile.config.secrets import redact

console = Console(highlight=False, soft_wrap=True,
                  force_terminal=None if sys.stdout.isatty() else False,
                  no_color="NO_COLOR" in os.environ)


def step(message: str) -> None:
    console.print(f"[bold cyan]>[/] {redact(message)}")


def ok(message: str) -> None:
    console.print(f"[green]ok[/] {redact(message)}")


def warn(message: str) -> None:
    console.print(f"[yellow]warning[/] {redact(message)}")


def fail(message: str) -> None:
    console.print(f"[red]failed[/] {redact(message)}")


def table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """Build a rich table (caller prints it) with every cell passed through `redact`."""
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*(redact(str(cell)) for cell in row))
    return out


def confirm(question: str, *, assume_yes: bool) -> bool:
    """Ask on a terminal; without one (CI) and without --yes, the answer is no."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    answer = console.input(escape(f"{question} [y/N] "))
    return answer.strip().lower() in ("y", "yes")
