"""The records of ``apply --backward --steps`` (`convcalc.compute.backward_traces`) and the
small rules the layer tracers share: which positions are shown, which output reads a
padded cell with a given tap.

Apart from the tracers so that `backward_traces` (the entry and the JSON), and the
convolution and pooling tracers (`backward_conv`, `backward_pool`) can all use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from convcalc.calc.choices import Activation, PadMode, PoolKind, TraceKind
from convcalc.calc.geometry import Axis
from convcalc.compute.arrays import Array
from convcalc.compute.traces import DEFAULT_SHOWN, SMALL_OUTPUT
from convcalc.errors import ConvcalcError

GradKind = Literal["kernel", "input"]


@dataclass(frozen=True)
class PoolWindow:
    """A pooling window that contains the input cell of a `GradStep`.

    ``output`` is the window's output position (row, column). Max pooling: ``winner``
    is the input cell (row, column) its dL/dY goes to (negative or past the input when
    in the padding) and ``best`` that cell's value. Average pooling: ``count``, what
    the window's sum is divided by.
    """

    output: tuple[int, int]
    winner: tuple[int, int] | None = None
    best: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class GradStep:
    """One gradient value and its terms.

    ``grad`` says which gradient: ``kernel`` (``filter`` set; ``channel`` set when the
    filter has a channel axis of its own) or ``input`` (``channel`` the input's).
    ``position`` is the kernel tap (i, j) or the input cell (row, column). ``terms``
    is N x 2: dL/dY and the input value (kernel), the kernel value (convolution
    input), 1 or 0 (max pooling: the cell is the window's max or not) or 1/count
    (average pooling); ``value`` the sum of their products. ``windows`` names the
    pooling window of each term (empty for a convolution).
    """

    grad: GradKind
    filter: int | None
    channel: int | None
    position: tuple[int, int]
    terms: Array
    value: float
    windows: tuple[PoolWindow, ...] = ()


@dataclass(frozen=True)
class Upstream:
    """Where the traced layer's dL/dY comes from.

    ``grad`` is dL/dY of layer ``layer``'s output (Ho x Wo x C, before the layer's own
    activation), of a pipeline of ``layers`` layers: the pipeline's dL/dY when
    ``layer`` is the last, else dL/dX of layer ``layer + 1``, whose spec is
    ``next_text``, backpropagated from the end of the pipeline.
    """

    grad: Array
    layer: int = 1
    layers: int = 1
    next_text: str | None = None


@dataclass(frozen=True)
class BackwardTrace:
    """The traced layer and its gradient steps (kernel steps first, then input steps).

    Shapes are HxWxC; ``kernel_size`` KH x KW (pooling: the window); ``axes`` the rows'
    and columns' geometry. ``kernel_total``/``input_total`` count the taps and cells,
    ``kernel_omitted``/``input_omitted`` those no step shows (pooling has no kernel:
    0 and 0). ``kind`` is conv, pool or global_pool, ``pool`` the pooling's kind.
    ``integral`` says whether input, kernels and dL/dY are whole numbers.
    """

    layer_text: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel_size: tuple[int, int]
    axes: tuple[Axis, Axis]
    filters: int
    steps: tuple[GradStep, ...]
    kernel_total: int
    kernel_omitted: int
    input_total: int
    input_omitted: int
    pad_mode: PadMode
    activation: Activation
    flip: bool
    integral: bool
    upstream: Upstream
    kind: TraceKind = TraceKind.CONV
    pool: PoolKind | None = None


def chosen(
    at: Sequence[tuple[int, int]], limit: int | None, height: int, width: int
) -> tuple[tuple[int, int], ...]:
    """The positions of an HxW grid to show: those of ``at`` inside it, or the default
    (all up to `SMALL_OUTPUT`, else the first `DEFAULT_SHOWN`), at most ``limit``."""
    if at:
        inside = ((int(r), int(c)) for r, c in at if 0 <= r < height and 0 <= c < width)
        found = tuple(dict.fromkeys(inside))
    else:
        count = height * width
        shown = count if count <= SMALL_OUTPUT else DEFAULT_SHOWN
        found = tuple((i // width, i % width) for i in range(min(shown, count)))
    return found if limit is None else found[:limit]


def refuse_outside(at: Sequence[tuple[int, int]], grids: Sequence[tuple[str, int, int]]) -> None:
    """Refuse a position of ``at`` inside none of the named HxW ``grids``."""
    for r, c in at:
        if not any(0 <= r < h and 0 <= c < w for _, h, w in grids):
            names = " and the ".join(f"{h}x{w} {name}" for name, h, w in grids)
            rows = max(h for _, h, _ in grids) - 1
            cols = max(w for _, _, w in grids) - 1
            within = " within one of them" if len(grids) > 1 else ""
            raise ConvcalcError(
                f"position ({r}, {c}) is outside {'both ' if len(grids) > 1 else ''}the "
                f"{names}; valid: rows 0 to {rows}, columns 0 to {cols}{within}"
            )


def output_at(padded: int, tap: int, axis: Axis) -> int | None:
    """The output whose window reads padded position ``padded`` with tap ``tap``, if any."""
    offset = padded - tap * axis.dilation
    if offset < 0 or offset % axis.stride:
        return None
    out = offset // axis.stride
    return out if out < axis.size else None
