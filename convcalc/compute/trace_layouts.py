"""What each kind of window layer computes at one output position, for `apply --steps`.

`layout` reads a stage (convolution, transposed convolution, pooling, global pooling)
on its input and returns how to build the `ConvStep` or `PoolStep` of any output
position and channel: the window of the (padded) input the kernel meets, the kernel as
applied, the products and sums; `convcalc.compute.traces` picks the positions.

Every rank: an input is HxWxC (L x C at rank 1, DxHxWxC at rank 3), a position has
one index per spatial axis, and a window or kernel is KH x KW (K, KD x KH x KW): the
cells the kernel taps, so with dilation d the tapped cells are d apart in the input.
A transposed convolution is shown as the equivalent stride-1 correlation over the
input stretched by s-1 zeros between cells, with the kernel rotated by 180°.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import reduce
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import PoolKind, TraceKind
from convcalc.calc.geometry import Axis
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pool
from convcalc.calc.network import per_axis
from convcalc.compute import ops, windows
from convcalc.compute.pipeline import Settings, Stage, check_bias, group_channels, stage_bank

Array = NDArray[Any]
Position = tuple[int, ...]
"""An output position: one index per spatial axis, (row, col) for an image."""


@dataclass(frozen=True)
class ChannelStep:
    """One input channel's part of a convolution output: window · kernel summed.

    ``window``, ``padding`` and ``kernel`` are KH x KW (K at rank 1, KD x KH x KW at
    rank 3; the tapped cells only); ``padding`` is True where the tap falls outside the
    input (in the padding, or a zero inserted by a transposed convolution's stride).
    """

    channel: int
    window: Array
    padding: Array
    kernel: Array
    sum: float

    @property
    def products(self) -> Array:
        """The window's shape: each window value times its kernel value."""
        products: Array = self.window * self.kernel
        return products


@dataclass(frozen=True)
class ConvStep:
    """One output value of a (transposed) convolution.

    ``total`` is the sum over ``channels`` plus ``bias``; ``value`` is the total
    after the layer's activation (the total itself when there is none).
    ``origin`` is the input index of the window's first tap per axis (row and column
    for an image; negative inside the padding; in stretched coordinates for a
    transposed convolution).
    """

    position: Position
    filter: int
    output_channel: int
    origin: Position
    channels: tuple[ChannelStep, ...]
    bias: float
    total: float
    value: float


@dataclass(frozen=True)
class PoolStep:
    """One output value of a pooling layer.

    ``window`` (KH x KW; K, KD x KH x KW) holds the values the pooling uses: -inf in
    max pooling's padding, 0 in avg/l2 padding. ``argmax`` is the index of the (first,
    in row-major order) largest tap for max; ``divisor`` the number of cells averaged
    for avg.
    """

    position: Position
    channel: int
    origin: Position
    window: Array
    padding: Array
    op: PoolKind
    value: float
    argmax: Position | None = None
    divisor: int | None = None


Step = ConvStep | PoolStep

StepFn = Callable[[Position, int], Step]


@dataclass(frozen=True)
class Layout:
    """What a stage computes: its kind, output shape ((*O) x channels), geometry per
    axis, filter count, whether every number is whole, and `step(position, channel)`."""

    kind: TraceKind
    output_shape: tuple[int, ...]
    axes: tuple[Axis, ...]
    filters: int
    integral: bool
    step: StepFn
    groups: int = 1
    """A grouped convolution's ``g=`` (filter f reads its group's channels), else 1."""


def layout(xa: Array, stage: Stage, settings: Settings) -> Layout | None:
    """What the stage computes at one position of the (*N) x C input ``xa`` (in its
    working dtype), or None for a layer without windows."""
    build = _LAYOUTS.get(type(stage.spec.layer))
    return None if build is None else build(stage.spec.layer, xa, stage, settings)


def all_whole(a: Array) -> bool:
    """True when every value of ``a`` is a finite whole number."""
    return bool(np.all(np.isfinite(a) & (a == np.round(a))))


# -- each kind of layer -----------------------------------------------------------


def _conv_layout(layer: Conv, xa: Array, stage: Stage, settings: Settings) -> Layout:
    bank, groups, each = _bank(stage, xa, settings)
    rank = settings.rank
    axes = windows.conv_axes_nd(
        xa.shape,
        bank.shape[:rank],
        stride=per_axis(layer.stride, rank, "stride"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        padding=per_axis(layer.padding, rank, "padding"),
        convention=settings.convention,
    )
    grouped = 1 if each else groups
    return _correlation_layout(
        xa, stage, settings, bank, each, axes, transposed=False, groups=grouped
    )


def _deconv_layout(layer: Deconv, xa: Array, stage: Stage, settings: Settings) -> Layout:
    bank, _, each = _bank(stage, xa, settings)
    rank = settings.rank
    axes = windows.transposed_axes_nd(
        xa.shape,
        bank.shape[:rank],
        stride=per_axis(layer.stride, rank, "stride"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        padding=per_axis(layer.padding, rank, "padding"),
        output_padding=per_axis(layer.output_padding, rank, "output_padding"),
    )
    return _correlation_layout(xa, stage, settings, bank, each, axes, transposed=True)


def _correlation_layout(
    xa: Array,
    stage: Stage,
    settings: Settings,
    bank: Array,
    each: bool,
    axes: tuple[Axis, ...],
    *,
    transposed: bool,
    groups: int = 1,
) -> Layout:
    """A (transposed) convolution's steps: window · kernel per input channel, plus bias.

    A grouped layer's (``g=``) bank is (*K) x (C/groups) x F: filter f reads the
    channels of its group (`convcalc.compute.pipeline.group_channels`)."""
    rank = len(axes)
    channels, filters = xa.shape[-1], len(stage.kernels)
    rotate = (slice(None, None, -1),) * rank
    if settings.flip:
        bank = bank[rotate]
    if transposed:  # shown as a correlation over the stretched input: kernel rotated 180°
        bank = bank[rotate]
    if each:  # output channel c·F + f (before filter_major) is filter f on channel c
        bank = bank[..., 0, :].reshape(*bank.shape[:rank], channels, filters)
    source = (
        xa if transposed else ops.pad(xa, [(a.pad_lo, a.pad_hi) for a in axes], settings.pad_mode)
    )
    bias = stage.bias or (0.0,) * filters
    out_channels = filters * channels if each else filters

    def step(position: Position, o: int) -> Step:
        f, inputs = (o // channels, (o % channels,)) if each else (o, tuple(range(channels)))
        if groups > 1:
            inputs = tuple(group_channels(f, filters, channels, groups))
        taps = [_taps(i, a, transposed) for i, a in zip(position, axes, strict=True)]
        mask = ~_outer([real for _, real, _ in taps])
        cells = source[np.ix_(*(at for at, _, _ in taps))]
        parts = []
        for c in inputs:
            window = cells[..., c].astype(np.float64)
            window[mask & transposed] = 0.0  # the stretched input's zeros
            kernel = bank[..., c - inputs[0] if groups > 1 else c, f].astype(np.float64)
            parts.append(ChannelStep(c, window, mask, kernel, float(np.sum(window * kernel))))
        total = sum(p.sum for p in parts) + float(bias[f])
        value = float(ops.activate(np.array([total]), stage.activation)[0])
        origin = tuple(start for _, _, start in taps)
        return ConvStep(position, f, o, origin, tuple(parts), float(bias[f]), total, value)

    integral = all_whole(xa) and all_whole(bank) and all_whole(np.asarray(bias, np.float64))
    kind = TraceKind.DECONV if transposed else TraceKind.CONV
    shape = (*(a.size for a in axes), out_channels)
    return Layout(kind, shape, axes, filters, integral, step, groups)


def _pool_layout(
    layer: Pool, xa: Array, stage: Stage, settings: Settings, kind: TraceKind = TraceKind.POOL
) -> Layout:
    rank = settings.rank
    size = per_axis(layer.kernel, rank, "kernel")
    axes = windows.pool_axes_nd(
        xa.shape,
        size,
        stride=size if layer.stride is None else per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        ceil=layer.ceil,
        convention=settings.convention,
    )
    divisors = windows.avg_divisors(
        axes, exclude_pad=settings.exclude_pad, convention=settings.convention
    )
    fill = -np.inf if layer.kind == PoolKind.MAX else 0.0

    def step(position: Position, channel: int) -> Step:
        taps = [_taps(i, a) for i, a in zip(position, axes, strict=True)]
        real = _outer([inside for _, inside, _ in taps])
        inner = (
            np.clip(at - a.pad_lo, 0, a.n - 1) for (at, _, _), a in zip(taps, axes, strict=True)
        )
        values = xa[np.ix_(*inner)][..., channel]
        window = np.where(real, values, fill).astype(np.float64)
        origin = tuple(start for _, _, start in taps)
        done = PoolStep(position, channel, origin, window, ~real, layer.kind, 0.0)
        if layer.kind == PoolKind.MAX:
            argmax = tuple(int(i) for i in np.unravel_index(int(np.argmax(window)), window.shape))
            return replace(done, value=float(window[argmax]), argmax=argmax)
        if layer.kind == PoolKind.AVG:
            counted = int(divisors[position])
            return replace(done, value=float(np.sum(window)) / counted, divisor=counted)
        return replace(done, value=float(np.sqrt(np.sum(window * window))))

    shape = (*(a.size for a in axes), xa.shape[-1])
    return Layout(kind, shape, axes, 0, all_whole(xa), step)


def _global_pool_layout(layer: GlobalPool, xa: Array, stage: Stage, settings: Settings) -> Layout:
    whole = Pool(layer.kind, tuple(xa.shape[:-1]))  # a window the size of the map
    return _pool_layout(whole, xa, stage, settings, TraceKind.GLOBAL_POOL)


_LAYOUTS: dict[type, Callable[[Any, Array, Stage, Settings], Layout]] = {
    Conv: _conv_layout,
    Deconv: _deconv_layout,
    Pool: _pool_layout,
    GlobalPool: _global_pool_layout,
}
"""The layers `trace` shows, by kind; any other kind has no windows."""


# -- helpers ---------------------------------------------------------------------


def _taps(out: int, a: Axis, transposed: bool = False) -> tuple[Array, Array, int]:
    """Along one axis, where output ``out``'s window taps read, which taps meet an input
    cell, and the first tap's input index (negative in the padding).

    The taps read padded-input indices ``out·s + i·d``; transposed, input indices:
    in stretched coordinates input cell k sits at k·s and the taps are
    ``out + p_lo - d(f-1) + i·d``, the first of them returned as the origin.
    """
    if transposed:
        start = out + a.pad_lo - (a.span - 1)
        at = start + np.arange(a.kernel) * a.dilation
        real = (at >= 0) & (at % a.stride == 0) & (at // a.stride < a.n)
        return np.clip(at // a.stride, 0, a.n - 1), real, start
    at = out * a.stride + np.arange(a.kernel) * a.dilation
    return at, (at >= a.pad_lo) & (at < a.pad_lo + a.n), out * a.stride - a.pad_lo


def _outer(per_axis_flags: list[Array]) -> Array:
    """The window-shaped AND of per-axis flags (one array per axis)."""
    result: Array = reduce(np.logical_and.outer, per_axis_flags)
    return np.asarray(result, dtype=bool)


def _bank(stage: Stage, xa: Array, settings: Settings) -> tuple[Array, int, bool]:
    """The stage's (*K) x depth x F bank, its groups (> 1 for ``g=``; ``each`` is a
    grouping too) and whether it filters channel by channel, after what apply refuses
    in a (transposed) convolution stage."""
    bank, groups, each = stage_bank(stage, xa.shape[-1], settings)
    check_bias(stage)
    return bank, groups, each
