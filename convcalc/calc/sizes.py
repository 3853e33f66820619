"""Sizes as users type them: input shapes (``32x32x3``), one size or one per axis
(``3`` or ``3x5``), counts of 0 or more, and padding (``1``, ``0+1``, ``same``), read
and written back the same way.

A size is ``N`` or per axis ``HxW``; padding is a count, ``HxW``, ``BEFORE+AFTER`` per
axis, ``same``, ``valid`` or ``full``. Every value is bounded by `MAX_SIZE`, its digits
counted before they are converted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from convcalc.calc.choices import PadRule
from convcalc.calc.geometry import Padding
from convcalc.calc.layers import Shape
from convcalc.errors import ConvcalcError

MAX_SIZE = 10**9
"""Sizes above this are refused: no real tensor axis is that long."""

MAX_DIGITS = len(str(MAX_SIZE))
"""The digits of `MAX_SIZE`: a number written with more is refused unconverted."""


def parse_shape(text: str, rank: int | None = None) -> Shape:
    """Read ``32x32x3`` (HxWxC), ``32x32`` (HxW), ``7`` or ``16x32x32x3`` (DxHxWxC).

    With ``rank`` (the number of spatial axes the layers work on), a shape of
    ``rank`` numbers has no channel count and one of ``rank + 1`` ends with the
    channels. Without it, 1-2 numbers are spatial, 3 are HxWxC and 4 are DxHxWxC.
    A single number is always one axis (a signal, or a flat vector for ``fc``):
    never silently a square.

    Examples
    --------
    >>> str(parse_shape("224x224x3"))
    '224x224x3'
    >>> parse_shape("100x16", rank=1)
    Shape(spatial=(100,), channels=16)
    """
    numbers = parse_dims(text, "input shape")
    if rank is None:
        rank = len(numbers) if len(numbers) <= 2 else len(numbers) - 1
    if len(numbers) == 1 and rank > 1:
        square = "x".join([text.strip()] * rank)
        raise ConvcalcError(
            f"input shape '{text}' is one axis but the layers work on {rank} spatial axes; "
            f"valid: {square} or {square}xC (channels last), or {rank}-D layers replaced "
            "by 1-D ones (conv1d)"
        )
    if len(numbers) == rank:
        return Shape(numbers)
    if len(numbers) == rank + 1:
        return Shape(numbers[:-1], numbers[-1])
    axes = "axis" if rank == 1 else "axes"
    raise ConvcalcError(
        f"input shape '{text}' has {len(numbers)} numbers but the layers work on {rank} "
        f"spatial {axes}; valid: {rank} or {rank + 1} numbers (the last being channels)"
    )


def channels_first_hint(shape: Shape) -> str | None:
    """A note when a channels-last shape reads like a channels-first one, else None.

    ``3x224x224`` (PyTorch's CxHxW) is read as HxWxC: 3 rows, 224 columns and 224
    channels. The pattern is a first axis of at most 4 (an image's channel count)
    and a last spatial axis of 8 or more equal to the channel count (a square
    image); a real 3x3x512 feature map does not match it.

    Examples
    --------
    >>> channels_first_hint(parse_shape("224x224x3")) is None
    True
    >>> channels_first_hint(parse_shape("1x28x28"))
    'input 1x28x28 is read as HxWxC (1x28, 28 channels); channels go last: 28x28x1'
    """
    if shape.channels is None or len(shape.spatial) < 2:
        return None
    first, last = shape.spatial[0], shape.spatial[-1]
    if first > 4 or last != shape.channels or last < 8:
        return None
    given = format_dims([*shape.spatial, shape.channels])
    spatial = format_dims(shape.spatial)
    meant = format_dims([*shape.spatial[1:], shape.channels, first])
    return (
        f"input {given} is read as {'DxHxWxC' if len(shape.spatial) == 3 else 'HxWxC'} "
        f"({spatial}, {shape.channels} channels); channels go last: {meant}"
    )


def parse_dims(text: str, what: str) -> tuple[int, ...]:
    """Read a positive size, or one per axis separated by ``x``: ``3`` or ``3x5``."""
    parts = text.strip().lower().split("x")
    if not 1 <= len(parts) <= 4 or not all(re.fullmatch(r"\+?\d+", p) for p in parts):
        raise ConvcalcError(
            f"{what} '{text}' is not a size; valid: a positive integer or one per axis "
            "separated by x, such as 3 or 3x5"
        )
    values = tuple(_bounded(p, what, text, lowest=1) for p in parts)
    return values


def parse_counts(text: str, what: str) -> tuple[int, ...]:
    """Read a count of 0 or more, or one per axis separated by ``x``: ``0`` or ``1x0``."""
    if not re.fullmatch(r"\+?\d+(x\+?\d+){0,3}", text.strip().lower()):
        raise ConvcalcError(
            f"{what} '{text}' is not valid; valid: a count of 0 or more, or one per axis "
            "such as 1x0"
        )
    return tuple(_bounded(p, what, text, lowest=0) for p in text.strip().lower().split("x"))


def parse_padding(text: str) -> tuple[Padding, ...]:
    """Read padding: ``N``, ``HxW``, ``same``, ``valid`` or ``full``; an axis padded
    unevenly is ``BEFORE+AFTER`` (``0+1x0+1``: one row after, one column after)."""
    word = text.strip().lower()
    if word in {rule.value for rule in PadRule}:
        return (PadRule(word),)
    if re.fullmatch(r"\+?\d+(x\+?\d+){0,3}", word):
        return parse_counts(word, "padding")
    if not re.fullmatch(r"\d+(\+\d+)?(x\d+(\+\d+)?){0,3}", word):
        raise ConvcalcError(
            f"padding '{text}' is not valid; valid: a count of 0 or more, HxW, BEFORE+AFTER "
            "per axis (0+1), same, valid or full"
        )
    return tuple(_uneven(part, text) for part in word.split("x"))


def _uneven(part: str, text: str) -> Padding:
    before, _, after = part.partition("+")
    lo = _bounded(before, "padding", text, lowest=0)
    return lo if not after else (lo, _bounded(after, "padding", text, lowest=0))


def format_dims(values: Sequence[int]) -> str:
    """Per-axis sizes as typed: ``3`` or ``3x5``."""
    return "x".join(str(v) for v in values)


def format_padding(padding: Sequence[Padding]) -> str:
    """Padding as typed: ``1``, ``1x2``, ``0+1`` (before+after), ``same``."""
    return "x".join(
        p.value if isinstance(p, PadRule) else f"{p[0]}+{p[1]}" if isinstance(p, tuple) else str(p)
        for p in padding
    )


def _bounded(digits: str, what: str, text: str, *, lowest: int) -> int:
    """One axis's value, from ``lowest`` to MAX_SIZE; the digits are counted before
    they are converted, so a 5,000-digit number is a bad value, not a crash."""
    shown = text if len(text) <= 24 else f"{text[:20]}…"
    value = int(digits) if len(digits.lstrip("+0")) <= MAX_DIGITS else MAX_SIZE + 1
    if not lowest <= value <= MAX_SIZE:
        raise ConvcalcError(
            f"{what} '{shown}' is not valid: each value must be between {lowest} and {MAX_SIZE:,}"
        )
    return value
