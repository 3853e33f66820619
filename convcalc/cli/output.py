"""What the commands print: data on stdout (JSON or rich), messages on stderr.

rich is imported only when something is drawn with it, so `shape -q` starts fast.
"""

from __future__ import annotations

import math
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


EXACT_INTEGERS = 2**53
"""Floats below this in magnitude are exact integers when whole; larger ones may not be."""


def emit_json(document: dict[str, Any]) -> None:
    """Write one JSON document on stdout.

    JSON has no infinity and no NaN: a number that is not finite (an overflow, a
    NaN in the input) is written as null, and stderr says how many were. Dumping
    with ``allow_nan=False`` makes any other way for one to slip in an error, never
    a document a JSON parser rejects.
    """
    import json

    clean, missing = _finite(document)
    text = json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False)
    if missing:
        what = f"{count_text(missing, 'value')} not finite (overflow, infinity or NaN)"
        say([f"{what}: null in the JSON"])
    click.echo(text)


def json_numbers(array: Any) -> Any:
    """An array's values as nested lists for JSON, never wrapped or rounded.

    Integer arrays give Python ints, exact at any size. Float arrays whose finite
    values are all whole give ints for the values below 2**53 in magnitude (where a
    float64 holds every integer) and keep the larger ones as floats, since the
    integer a float rounds to is not known to be the true one; other float arrays
    give floats. Values that are not finite stay floats, for `emit_json` to write as
    null.
    """
    import numpy as np

    values = np.asarray(array)
    if values.dtype.kind in "iub":
        return values.tolist()
    flat = values.ravel().tolist()
    finite = [v for v in flat if math.isfinite(v)]
    if all(v.is_integer() for v in finite):
        flat = [int(v) if -EXACT_INTEGERS < v < EXACT_INTEGERS else v for v in flat]
    return np.array(flat, dtype=object).reshape(values.shape).tolist()


def count_text(n: int, noun: str) -> str:
    """``1 value``, ``3 values``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


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


def _finite(item: Any) -> tuple[Any, int]:
    """``item`` with every non-finite float replaced by None, and how many were."""
    if isinstance(item, float):
        return (item, 0) if math.isfinite(item) else (None, 1)
    if isinstance(item, dict):
        pairs = [(key, *_finite(value)) for key, value in item.items()]
        return {key: value for key, value, _ in pairs}, sum(n for *_, n in pairs)
    if isinstance(item, list | tuple):
        done = [_finite(value) for value in item]
        return [value for value, _ in done], sum(n for _, n in done)
    if type(item).__module__ == "numpy" and hasattr(item, "item"):
        return _finite(item.item())
    return item, 0
