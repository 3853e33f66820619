"""Where branches meet: the shape a merge gives and the receptive field of the union.

    concat   equal spatial sizes; the channels add up
    add      equal shapes
    mul      equal shapes, or a 1x1xC gate broadcast over HxWxC (squeeze-and-excitation)

The receptive field of a merged tensor is the union of its inputs' fields: per axis,
the span from the lowest first pixel to the highest last one (a field of size r
centred on c covers c - (r-1)/2 .. c + (r-1)/2). A field that is the whole input
(after a global pool) makes the union the whole input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from convcalc.calc.layers import Shape
from convcalc.errors import ConvcalcError


class ReceptiveField(NamedTuple):
    """Receptive field per spatial axis: size, jump (stride in input pixels), start
    (the centre of the first output's field, in input pixel coordinates)."""

    size: tuple[int, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]


UNTRACKED = ReceptiveField((), (), ())
"""The field of a tensor after a transposed convolution: not tracked (each output
value gathers from a varying number of inputs). Every later layer keeps it, but a
global pool, whose field is the whole input (None)."""


def merged_shape(kind: str, shapes: Sequence[Shape]) -> Shape:
    """The shape of ``kind`` (concat, add, mul) over ``shapes``, HxWxC each.

    Raises ConvcalcError naming the shapes that do not fit together.

    Examples
    --------
    >>> str(merged_shape("concat", [Shape((28, 28), 64), Shape((28, 28), 128)]))
    '28x28x192'
    >>> str(merged_shape("mul", [Shape((16, 16), 32), Shape((1, 1), 32)]))
    '16x16x32'
    """
    first = shapes[0]
    if kind == "concat":
        odd = [s for s in shapes if s.spatial != first.spatial]
        if odd:
            raise ConvcalcError(
                f"concat of {_listed(shapes)}: the sizes differ ({first} and {odd[0]}); "
                "valid: equal HxW, the channels may differ (or crop: concat:NAME,crop)"
            )
        return Shape(first.spatial, sum(s.c for s in shapes))
    if kind == "add":
        odd = [s for s in shapes if s.as_list() != first.as_list()]
        if odd:
            raise ConvcalcError(
                f"add of {_listed(shapes)}: {first} and {odd[0]} differ; valid: equal shapes"
            )
        return first
    full = max(shapes, key=lambda s: s.volume)
    for shape in shapes:
        gate = all(n == 1 for n in shape.spatial) and shape.c == full.c
        if shape.as_list() != full.as_list() and not gate:
            raise ConvcalcError(
                f"mul of {_listed(shapes)}: {shape} neither equals {full} nor is a 1x1x"
                f"{full.c} gate; valid: equal shapes, or a gate (gap … sigmoid) of the same "
                "channels"
            )
    return full


def centre_crop(shape: Shape, size: tuple[int, ...], name: str) -> Shape:
    """``shape`` centre-cropped to the spatial ``size`` (the U-Net's skip connections)."""
    if len(shape.spatial) != len(size) or any(
        n < m for n, m in zip(shape.spatial, size, strict=True)
    ):
        wanted = "x".join(map(str, size))
        raise ConvcalcError(
            f"'{name}' ({shape}) cannot be cropped to {wanted}; valid: a tensor at least as "
            "large as the current one"
        )
    return Shape(size, shape.channels)


def union(fields: Sequence[ReceptiveField | None]) -> ReceptiveField | None:
    """The receptive field covering all of ``fields``; None (the whole input) if any is.

    Examples
    --------
    >>> union([ReceptiveField((3,), (1,), (1.0,)), ReceptiveField((5,), (1,), (2.0,))])
    ReceptiveField(size=(5,), jump=(1,), start=(2.0,))
    """
    if any(field is None for field in fields):
        return None
    known = [field for field in fields if field is not None]
    if any(field == UNTRACKED for field in known):
        return UNTRACKED
    axes = range(len(known[0].size))
    low = [min(f.start[a] - (f.size[a] - 1) / 2 for f in known) for a in axes]
    high = [max(f.start[a] + (f.size[a] - 1) / 2 for f in known) for a in axes]
    return ReceptiveField(
        tuple(round(high[a] - low[a]) + 1 for a in axes),
        tuple(max(f.jump[a] for f in known) for a in axes),
        tuple((low[a] + high[a]) / 2 for a in axes),
    )


def _listed(shapes: Sequence[Shape]) -> str:
    return ", ".join(str(s) for s in shapes)
