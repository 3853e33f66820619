"""What the commands print: data on stdout (JSON or rich), messages on stderr.

rich is imported only when something is drawn with it, so `shape -q` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

BUSY_SIZE = 2**22
"""Inputs of at least this many values show a spinner on a terminal while they compute."""


def choice_of(enum: Any) -> click.Choice[str]:
    """A click choice of a StrEnum's values."""
    return click.Choice([member.value for member in enum])


def emit_json(document: dict[str, Any]) -> None:
    """Write one JSON document on stdout."""
    import json

    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def print_rich(*renderables: Any) -> None:
    """Print rich renderables on stdout; off a terminal, wide enough not to wrap."""
    from rich.console import Console

    console = Console(highlight=False)
    for item in renderables:
        if not console.is_terminal:
            wide = console.options.update_width(1000)
            console.width = max(80, console.measure(item, options=wide).maximum)
        console.print(item)


def say(lines: Sequence[str]) -> None:
    """Messages for the user, on stderr: stdout carries data only."""
    for line in lines:
        click.echo(line, err=True)


@contextmanager
def busy(message: str, size: int = BUSY_SIZE) -> Iterator[None]:
    """A spinner on stderr while long work runs: only on a terminal, and only for work
    on at least ``size`` values (rich is imported only then)."""
    if size < BUSY_SIZE or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
