"""A coverage grid for the terminal: the counts, or a heatmap of them (``--show``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

MAX_SHOWN = 64
"""Grids wider or taller than this are summarised rather than drawn."""


def coverage_renderable(
    grid: Sequence[Sequence[int]] | Sequence[int], *, heat: bool = False
) -> Group | Text:
    """How many windows read each input cell, as a grid of counts (rows HxW; a 1-D
    layer is one row), coloured from never read (red) to read most (green) with
    ``heat``; a grid larger than `MAX_SHOWN` is summarised in one line."""
    rows = _rows(grid)
    cells = [value for row in rows for value in row]
    if len(rows) > MAX_SHOWN or len(rows[0]) > MAX_SHOWN:
        return Text(_summary(cells))
    top = max(cells) or 1
    table = Table(show_header=False, box=None, padding=(0, 1))
    for _ in rows[0]:
        table.add_column(justify="right")
    for row in rows:
        table.add_row(*(Text(str(v), style=_heat(v, top) if heat else "") for v in row))
    return Group(table, Text(_summary(cells)))


def _rows(grid: Sequence[Sequence[int]] | Sequence[int]) -> list[list[int]]:
    """The grid as rows of counts (a 1-D layer's counts are one row)."""
    if all(isinstance(value, int) for value in grid):
        return [[int(value) for value in grid if isinstance(value, int)]]
    return [[int(v) for v in row] for row in grid if not isinstance(row, int)]


def _summary(cells: list[int]) -> str:
    never = sum(1 for value in cells if value == 0)
    return (
        f"read by {min(cells)} to {max(cells)} windows each; "
        f"{never:,} of {len(cells):,} cells never read"
    )


def _heat(value: int, top: int) -> str:
    """A background from red (0) through yellow to green (``top``)."""
    share = value / top
    red, green = (255, round(510 * share)) if share < 0.5 else (round(510 * (1 - share)), 255)
    return f"black on rgb({red},{green},60)"
