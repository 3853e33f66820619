"""The names of spatial axes, one vocabulary for every message and table.

A 1-D input has positions, a 2-D map rows and columns, a 3-D volume slices, rows
and columns; beyond that axes are numbered.
"""

from __future__ import annotations

_NAMES = {1: ("positions",), 2: ("rows", "columns"), 3: ("slices", "rows", "columns")}
_SINGULAR = {"positions": "position", "slices": "slice", "rows": "row", "columns": "column"}


def axis_names(rank: int) -> tuple[str, ...]:
    """The plural names of ``rank`` spatial axes: ``("rows", "columns")`` for 2-D."""
    return _NAMES.get(rank, tuple(f"axis {i}" for i in range(rank)))


def singular(name: str) -> str:
    """One of an axis's cells: ``row`` for ``rows``."""
    return _SINGULAR.get(name, name)
