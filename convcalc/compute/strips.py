"""An apply pipeline computed a band of output rows (a strip) at a time.

For the final output rows ``[lo, hi)`` of a 2-D pipeline, each window layer
(convolution, pooling) needs the rows its windows cover: from the first window's
first tap to the last window's last tap (its halo: kernel, stride, dilation,
padding, ceil mode), planned backwards from the last layer to the input;
pointwise layers need the same rows they give. Only the image's true top and
bottom are padded: a strip's layer pads the rows it has at that edge, by as much
of the layer's padding as its windows reach, and takes every other row from the
neighbouring data. A strip is then computed layer by layer
(`convcalc.compute.strip_runner`), and equals the same rows of the whole result:
exactly for the direct method and pooling (every output value is the same
arithmetic on the same numbers), to floating-point tolerance for FFT, im2col and
Winograd (their blocks differ).

Geometry along the rows is the whole input's (`convcalc.compute.windows`, the
`Axis` the whole run computes), so strips never re-derive sizes; a strip's
layer is the stage with its row padding replaced, and its planned geometry is
checked with the same `convcalc.calc.geometry` functions before any work.

Padding fills that need rows other than the windows' are planned too: reflect
needs ``p + 1`` rows at the edge, replicate one, so a strip at an edge is widened
(and cut back after the layer) until it has them; wrap needs the far edge's rows,
read from the input when every layer before is pointwise (the first window
layer), else the pipeline is not row-local here (`NotRowLocal`). Layers that need
the whole input (global pooling, transposed convolution; any layer apply does not run)
are `NotRowLocal` too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from convcalc.calc.choices import Convention, Method, PadMode
from convcalc.calc.geometry import Axis, conv_axis, pool_axis
from convcalc.calc.layers import Conv, Pointwise, Pool
from convcalc.calc.network import two_axes
from convcalc.compute.padding import PaddedInput
from convcalc.compute.pipeline import (
    Settings,
    Stage,
    check_bias,
    in_layer,
    run,
    stage_bank,
)
from convcalc.compute.windows import conv_axes, pool_axes
from convcalc.errors import ConvcalcError

Shape = tuple[int, int, int]
"""An HxWxC shape."""


class NotRowLocal(Exception):
    """The pipeline cannot be computed strip by strip; the message says which layer and why."""


class Rows(NamedTuple):
    """Rows ``[lo, hi)`` of an array; ``far`` marks input rows read from the other edge
    for wrap padding, ahead of the strips that reach them in order."""

    lo: int
    hi: int
    far: bool = False


@dataclass(frozen=True)
class StageRows:
    """One stage's geometry along the rows of the whole input.

    ``axis`` is the rows' `Axis` of a window layer (None for a pointwise one: output
    row i is input row i); ``fill`` the pad mode of a convolution's row padding (None
    when it has none, and for pooling, whose padding never needs rows).
    """

    stage: Stage
    axis: Axis | None
    fill: PadMode | None
    in_shape: Shape
    out_shape: Shape
    convention: Convention = Convention.TORCH


class Span(NamedTuple):
    """One stage's part of a strip: ``rows_in`` of its input (in order) give ``rows_out``
    of its output, with ``top``/``bottom`` padding rows added by the strip's layer."""

    rows_in: tuple[Rows, ...]
    rows_out: tuple[Rows, ...]
    top: int = 0
    bottom: int = 0


class Strip(NamedTuple):
    """Final output rows ``[lo, hi)`` and each stage's span, first to last."""

    lo: int
    hi: int
    spans: tuple[Span, ...]


def stage_rows(stages: Sequence[Stage], settings: Settings, shape: Shape) -> tuple[StageRows, ...]:
    """Each stage's geometry along the rows of a whole HxWxC input, first to last.

    Raises
    ------
    ConvcalcError
        What `convcalc.compute.pipeline.run` raises for a layer that does not fit
        (geometry, kernels, bias), named as it names it.
    NotRowLocal
        A layer that needs the whole input, or wrap padding after a window layer.
    """
    geometry: list[StageRows] = []
    for position, stage in enumerate(stages, start=1):
        try:
            one = _stage_rows(stage, settings, shape)
        except ConvcalcError as exc:
            raise in_layer(exc, position, stage, len(stages)) from None
        if one is None:
            raise NotRowLocal(f"{_where(position, stage, len(stages))} needs the whole input")
        earlier = any(g.axis is not None for g in geometry)
        if one.fill == PadMode.WRAP and earlier:
            raise NotRowLocal(
                f"{_where(position, stage, len(stages))}: wrap padding needs the far rows of "
                "the layer before"
            )
        geometry.append(one)
        shape = one.out_shape
    return tuple(geometry)


def plan_strips(geometry: Sequence[StageRows], rows: int) -> list[Strip]:
    """The strips of at most ``rows`` final output rows (but for widening at the edges)
    that cover the whole output, in order, each checked against the stages' geometry.

    Raises NotRowLocal when a strip's layer would not give exactly its planned rows.
    """
    size = geometry[-1].out_shape[0]
    count = -(-size // max(1, rows))
    strips = [
        plan_strip(geometry, k * size // count, (k + 1) * size // count) for k in range(count)
    ]
    for strip in strips:
        for g, span in zip(geometry, strip.spans, strict=True):
            _check_span(g, span)
    return strips


def plan_strip(geometry: Sequence[StageRows], lo: int, hi: int) -> Strip:
    """The rows each stage reads and gives for the final output rows ``[lo, hi)``."""
    want: tuple[Rows, ...] = (Rows(lo, hi),)
    spans: list[Span] = []
    for g in reversed(geometry):
        span = _span(g, want)
        spans.append(span)
        want = span.rows_in
    return Strip(lo, hi, tuple(reversed(spans)))


def strip_height(
    geometry: Sequence[StageRows], budget: int, working: Callable[[Shape], int]
) -> int:
    """The most final output rows a strip may have for its working set, ``working(shape)``
    of its input strip, to stay within ``budget`` bytes; at least 1 (one row and its halo).
    """
    size = geometry[-1].out_shape[0]
    _, width, channels = geometry[0].in_shape
    low, high = 1, size
    while low < high:  # the largest height that fits (the working set grows with it)
        mid = (low + high + 1) // 2
        if working((rows_needed(geometry, mid), width, channels)) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def rows_needed(geometry: Sequence[StageRows], rows: int) -> int:
    """Input rows a strip of ``rows`` final output rows reads away from the edges."""
    for g in reversed(geometry):
        if g.axis is not None:
            rows = (rows - 1) * g.axis.stride + g.axis.span
    return rows


def strip_stage(g: StageRows, span: Span) -> Stage:
    """The stage as a strip runs it: its row padding is the strip's (none inside)."""
    layer = g.stage.spec.layer
    if g.axis is None or not isinstance(layer, Conv | Pool):
        return g.stage
    _, columns = two_axes(layer.padding, "padding")
    strip_layer = replace(layer, padding=((span.top, span.bottom), columns))
    return replace(g.stage, spec=replace(g.stage.spec, layer=strip_layer))


# -- helpers ---------------------------------------------------------------


def _stage_rows(stage: Stage, settings: Settings, shape: Shape) -> StageRows | None:
    """One stage's row geometry on an input of ``shape``; None if it is not row-local.

    Checks the stage as `run` does, in its order, so that the first error is its.
    """
    layer = stage.spec.layer
    convention = settings.convention
    if isinstance(layer, Pointwise):
        try:  # what run refuses (lrn), on one pixel
            run(np.zeros((1, 1, shape[2])), [stage], settings)
        except ConvcalcError:
            raise
        except Exception:  # left to the whole run, which says what it says
            return None
        return StageRows(stage, None, None, shape, shape, convention=convention)
    if isinstance(layer, Pool):
        rows, cols = pool_axes(
            shape,
            two_axes(layer.kernel, "kernel"),
            stride=None if layer.stride is None else two_axes(layer.stride, "stride"),
            padding=two_axes(layer.padding, "padding"),
            dilation=two_axes(layer.dilation, "dilation"),
            ceil=layer.ceil,
            convention=convention,
        )
        out = (rows.size, cols.size, shape[2])
        return StageRows(stage, rows, None, shape, out, convention=convention)
    if not isinstance(layer, Conv):
        return None
    bank = stage_bank(stage, shape[2], settings)[0]

    def axes() -> tuple[Axis, Axis]:
        return conv_axes(
            shape,
            bank.shape,
            stride=two_axes(layer.stride, "stride"),
            padding=two_axes(layer.padding, "padding"),
            dilation=two_axes(layer.dilation, "dilation"),
            convention=convention,
        )

    if settings.method == Method.AUTO:
        axes()  # auto sizes the layer before its bias is checked
    check_bias(stage)
    rows, cols = axes()
    if settings.pad_mode != PadMode.WRAP:  # the pad sizes reflect allows, on the whole input
        pads = [(rows.pad_lo, rows.pad_hi), (cols.pad_lo, cols.pad_hi)]
        PaddedInput(np.broadcast_to(np.zeros(()), shape), pads, settings.pad_mode)
    out = (rows.size, cols.size, bank.shape[3])
    fill = settings.pad_mode if rows.pad_lo or rows.pad_hi else None
    return StageRows(stage, rows, fill, shape, out, convention)


def _where(position: int, stage: Stage, count: int) -> str:
    return f"layer {position} ({stage.spec.text})" if count > 1 else stage.spec.text


def _span(g: StageRows, want: tuple[Rows, ...]) -> Span:
    """What stage ``g`` reads and gives for the rows ``want`` of its output."""
    if g.axis is None:
        return Span(want, want)
    assert len(want) == 1, "a window layer gives one run of rows"
    lo, hi = _widened(g, want[0].lo, want[0].hi)
    if g.fill == PadMode.WRAP:
        return Span(_wrapped(g.axis, lo, hi), (Rows(lo, hi),))
    start, stop, top, bottom = _reach(g.axis, lo, hi)
    return Span((Rows(start, stop),), (Rows(lo, hi),), top, bottom)


def _reach(axis: Axis, lo: int, hi: int) -> tuple[int, int, int, int]:
    """The real input rows ``[start, stop)`` and the padding rows before and after them
    that the windows of output rows ``[lo, hi)`` cover.

    The last window's strip takes every row to the end and the whole bottom padding,
    so that it rounds (floor, or ceil mode's overhang) as the whole input does.
    """
    first = lo * axis.stride - axis.pad_lo  # input row of the first tap; < 0 in the padding
    last = (hi - 1) * axis.stride + axis.span - axis.pad_lo
    if hi == axis.size:
        stop, bottom = axis.n, axis.pad_hi
    else:
        stop, bottom = min(axis.n, last), max(0, last - axis.n)
    return max(0, first), stop, max(0, -first), bottom


def _widened(g: StageRows, lo: int, hi: int) -> tuple[int, int]:
    """Output rows ``[lo, hi)`` widened until the strip has the rows its padding fill
    needs (reflect: one more than the padding, every mode: one)."""
    assert g.axis is not None
    size = g.axis.size
    while not _fits(g, lo, hi) and (lo, hi) != (0, size):
        if hi < size:
            hi += 1
        else:
            lo -= 1
    return lo, hi


def _fits(g: StageRows, lo: int, hi: int) -> bool:
    assert g.axis is not None
    if g.fill == PadMode.WRAP:
        return True  # its rows are gathered: always the windows' whole reach
    start, stop, top, bottom = _reach(g.axis, lo, hi)
    need = max(top, bottom) + 1 if g.fill == PadMode.REFLECT else 1
    return stop - start >= need


def _wrapped(axis: Axis, lo: int, hi: int) -> tuple[Rows, ...]:
    """The input rows the windows of output rows ``[lo, hi)`` cover with wrap padding:
    padded row t is input row ``t mod n``, in runs; rows past an edge are ``far``."""
    n = axis.n
    t = lo * axis.stride - axis.pad_lo
    end = (hi - 1) * axis.stride + axis.span - axis.pad_lo
    runs = []
    while t < end:
        period = t // n
        stop = min(end, (period + 1) * n)
        runs.append(Rows(t - period * n, stop - period * n, far=period != 0))
        t = stop
    return tuple(runs)


def _check_span(g: StageRows, span: Span) -> None:
    """Refuse (NotRowLocal) a strip whose layer would not give exactly its planned rows."""
    if g.axis is None:
        return
    rows = sum(r.hi - r.lo for r in span.rows_in)
    layer = g.stage.spec.layer
    padding = (span.top, span.bottom)
    try:
        if isinstance(layer, Pool):
            size = pool_axis(
                rows,
                g.axis.kernel,
                stride=g.axis.stride,
                padding=padding,
                dilation=g.axis.dilation,
                ceil=layer.ceil,
                convention=g.convention,
            ).size
        else:
            size = conv_axis(
                rows,
                g.axis.kernel,
                stride=g.axis.stride,
                padding=padding,
                dilation=g.axis.dilation,
                convention=g.convention,
            ).size
    except ConvcalcError as exc:
        raise NotRowLocal(f"{g.stage.spec.text} cannot be cut into strips here ({exc})") from None
    (out,) = span.rows_out
    if size != out.hi - out.lo:
        raise NotRowLocal(f"{g.stage.spec.text} cannot be cut into strips exactly here")
