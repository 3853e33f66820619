"""The records of ``apply --backward --steps`` (`convcalc.compute.backward_traces`) and the
small rules the layer tracers share: which positions are shown, which output reads a
padded cell with a given tap.

Apart from the tracers so that `backward_traces` (the entry and the JSON), and the
convolution and pooling tracers (`backward_conv`, `backward_pool`) can all use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from convcalc.calc.axes import axis_names, singular
from convcalc.calc.choices import Activation, PadMode, PoolKind, TraceKind
from convcalc.calc.geometry import Axis
from convcalc.compute.arrays import Array
from convcalc.compute.traces import DEFAULT_SHOWN, SMALL_OUTPUT, Position
from convcalc.errors import ConvcalcError

GradKind = Literal["kernel", "input"]


@dataclass(frozen=True)
class PoolWindow:
    """A pooling window that contains the input cell of a `GradStep`.

    ``output`` is the window's output position (row, column; one index per spatial
    axis at every rank). Max pooling: ``winner`` is the input cell its dL/dY goes to
    (negative or past the input when in the padding) and ``best`` that cell's value.
    Average pooling: ``count``, what the window's sum is divided by.
    """

    output: Position
    winner: Position | None = None
    best: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class GradStep:
    """One gradient value and its terms.

    ``grad`` says which gradient: ``kernel`` (``filter`` set; ``channel`` set when the
    filter has a channel axis of its own) or ``input`` (``channel`` the input's).
    ``position`` is the kernel tap (i, j) or the input cell (row, column), one index
    per spatial axis: (i,) for a signal, (slice, row, column) for a volume. ``terms``
    is N x 2: dL/dY and the input value (kernel), the kernel value (convolution
    input), 1 or 0 (max pooling: the cell is the window's max or not) or 1/count
    (average pooling); ``value`` the sum of their products. ``windows`` names the
    pooling window of each term (empty for a convolution).
    """

    grad: GradKind
    filter: int | None
    channel: int | None
    position: Position
    terms: Array
    value: float
    windows: tuple[PoolWindow, ...] = ()


@dataclass(frozen=True)
class Upstream:
    """Where the traced layer's dL/dY comes from.

    ``grad`` is dL/dY of layer ``layer``'s output (Ho x Wo x C; (*O) x C at any rank;
    before the layer's own activation), of a pipeline of ``layers`` layers: the
    pipeline's dL/dY when ``layer`` is the last, else dL/dX of layer ``layer + 1``,
    whose spec is ``next_text``, backpropagated from the end of the pipeline.
    """

    grad: Array
    layer: int = 1
    layers: int = 1
    next_text: str | None = None


@dataclass(frozen=True)
class BackwardTrace:
    """The traced layer and its gradient steps (kernel steps first, then input steps).

    Shapes are HxWxC (L x C, DxHxWxC at rank 1 and 3); ``kernel_size`` KH x KW (K,
    KD x KH x KW; pooling: the window); ``axes`` the geometry per spatial axis.
    ``kernel_total``/``input_total`` count the taps and cells, ``kernel_omitted``/
    ``input_omitted`` those no step shows (pooling has no kernel: 0 and 0). ``kind``
    is conv, pool or global_pool, ``pool`` the pooling's kind. ``integral`` says
    whether input, kernels and dL/dY are whole numbers.
    """

    layer_text: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel_size: tuple[int, ...]
    axes: tuple[Axis, ...]
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
    groups: int = 1
    """A grouped convolution's ``g=`` (filter f reads its group's channels), else 1."""

    @property
    def rank(self) -> int:
        """The spatial axes: 1 (a signal), 2 (an image) or 3 (a volume)."""
        return len(self.axes)


def chosen(
    at: Sequence[Position], limit: int | None, shape: tuple[int, ...]
) -> tuple[Position, ...]:
    """The positions of a grid of ``shape`` (HxW; L, DxHxW) to show: those of ``at``
    inside it, or the default (all up to `SMALL_OUTPUT`, else the first
    `DEFAULT_SHOWN` in row-major order), at most ``limit``."""
    if at:
        inside = (tuple(int(i) for i in p) for p in at if _inside(p, shape))
        found = tuple(dict.fromkeys(inside))
    else:
        count = math.prod(shape)
        shown = min(count if count <= SMALL_OUTPUT else DEFAULT_SHOWN, count)
        found = tuple(tuple(int(i) for i in np.unravel_index(k, shape)) for k in range(shown))
    return found if limit is None else found[:limit]


def refuse_outside(at: Sequence[Position], grids: Sequence[tuple[str, tuple[int, ...]]]) -> None:
    """Refuse a position of ``at`` inside none of the named ``grids`` (each a name and a
    shape: HxW; L, DxHxW), or with another number of indices than they have axes."""
    rank = len(grids[0][1])
    names = axis_names(rank)
    for p in at:
        where = "(" + ", ".join(map(str, p)) + ")"
        if len(p) != rank:
            raise ConvcalcError(
                f"position {where} has {_indices(len(p))} but the layer has {rank} spatial "
                f"ax{'is' if rank == 1 else 'es'}; valid: {_indices(rank)} "
                f"({', '.join(singular(n) for n in names)})"
            )
        if not any(_inside(p, shape) for _, shape in grids):
            both = "both " if len(grids) > 1 else ""
            named = " and the ".join(_grid_text(name, shape) for name, shape in grids)
            valid = ", ".join(
                f"{name} 0 to {max(shape[k] for _, shape in grids) - 1}"
                for k, name in enumerate(names)
            )
            within = " within one of them" if len(grids) > 1 else ""
            raise ConvcalcError(
                f"position {where} is outside {both}the {named}; valid: {valid}{within}"
            )


def output_at(padded: int, tap: int, axis: Axis) -> int | None:
    """The output whose window reads padded position ``padded`` with tap ``tap``, if any."""
    offset = padded - tap * axis.dilation
    if offset < 0 or offset % axis.stride:
        return None
    out = offset // axis.stride
    return out if out < axis.size else None


def _inside(p: Sequence[int], shape: tuple[int, ...]) -> bool:
    return len(p) == len(shape) and all(0 <= i < n for i, n in zip(p, shape, strict=True))


def _grid_text(name: str, shape: tuple[int, ...]) -> str:
    """``3x3 kernel``; a signal's ``kernel of 3``."""
    return f"{name} of {shape[0]}" if len(shape) == 1 else f"{'x'.join(map(str, shape))} {name}"


def _indices(count: int) -> str:
    return f"{count} ind{'ex' if count == 1 else 'ices'}"
