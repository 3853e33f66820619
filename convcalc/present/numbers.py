"""Numbers as text: the one home of every number format convcalc prints."""

from __future__ import annotations

from collections.abc import Sequence


def count(n: int) -> str:
    """An integer with thousands separators: ``138,357,544``."""
    return f"{n:,}"


def si(n: float, unit: str = "") -> str:
    """A large number with an SI prefix: ``15.47 G``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def size_bytes(n: int) -> str:
    """A byte count in binary units: ``3.06 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"


def number(value: float, digits: int = 4) -> str:
    """A value: an integer when it is whole (``3``, not ``3.0``), else ``digits``
    significant digits."""
    v = float(value)
    return str(int(v) + 0) if v.is_integer() and abs(v) < 1e15 else f"{v:.{digits}g}"


def per_axis(values: Sequence[object]) -> str:
    """Per-axis values: one when every axis agrees (``3``), else ``3x5``."""
    if len(set(values)) == 1:
        return str(values[0])
    return "x".join(str(v) for v in values)
