"""Click's keyword arguments turned into small frozen records, one per concern."""

from __future__ import annotations

from typing import Any, TypeVar

R = TypeVar("R")


def take(record: type[R], kwargs: dict[str, Any]) -> R:
    """Build ``record`` (a NamedTuple) by keyword, popping its fields out of ``kwargs``."""
    names: tuple[str, ...] = getattr(record, "_fields")  # noqa: B009 - a NamedTuple's own API
    return record(**{name: kwargs.pop(name) for name in names})
