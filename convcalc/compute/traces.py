"""The arithmetic behind each output value of one apply layer (``apply --steps``).

`trace` runs the layers before the chosen one with `convcalc.compute.pipeline.run`, then
works out, for a few output positions, the window of the (padded) input that the
kernel meets, the kernel as applied, the products and their sums, the bias and
the activation; for pooling the window and its max, average or L2 norm. Every
step's ``value`` equals the feature map `pipeline.run` computes at that position
and channel (exactly for integer values; to rounding for others, since the step
sums in float64 while the pipeline may use float32 or FFT).

Positions: all of them when the output has at most `SMALL_OUTPUT` positions per
channel, else the first `DEFAULT_SHOWN` in row-major order; ``at`` picks
positions, ``limit`` caps how many. Steps come output channel by output channel
(filter-major, the pipeline's channel order), positions row-major within one.

A window is KH x KW: the cells the kernel taps, so with dilation d the tapped
cells are d apart in the input and the cells between them (holes) are skipped.
A transposed convolution is shown as the equivalent stride-1 correlation: the
input stretched by s-1 zeros between cells, padded by d(f-1) - p, and the
kernel rotated by 180°; the inserted zeros are marked as padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import Activation, PadMode, PoolKind, TraceKind
from convcalc.calc.geometry import Axis
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pool
from convcalc.calc.network import two_axes
from convcalc.compute import ops, windows
from convcalc.compute.pipeline import (
    Settings,
    Stage,
    check_bias,
    kernel_bank,
    refuse_groups,
    run,
)
from convcalc.errors import ConvcalcError

Array = NDArray[Any]

SMALL_OUTPUT = 36
"""Outputs with at most this many positions per channel show every position."""

DEFAULT_SHOWN = 4
"""How many positions (the first, row-major) larger outputs show by default."""


@dataclass(frozen=True)
class ChannelStep:
    """One input channel's part of a convolution output: window · kernel summed.

    ``window``, ``padding`` and ``kernel`` are KH x KW (the tapped cells only);
    ``padding`` is True where the tap falls outside the input (in the padding, or
    a zero inserted by a transposed convolution's stride).
    """

    channel: int
    window: Array
    padding: Array
    kernel: Array
    sum: float

    @property
    def products(self) -> Array:
        """KH x KW: each window value times its kernel value."""
        products: Array = self.window * self.kernel
        return products


@dataclass(frozen=True)
class ConvStep:
    """One output value of a (transposed) convolution.

    ``total`` is the sum over ``channels`` plus ``bias``; ``value`` is the total
    after the layer's activation (the total itself when there is none).
    ``origin`` is the input row and column of the window's top-left tap (negative
    inside the padding; in stretched coordinates for a transposed convolution).
    """

    position: tuple[int, int]
    filter: int
    output_channel: int
    origin: tuple[int, int]
    channels: tuple[ChannelStep, ...]
    bias: float
    total: float
    value: float


@dataclass(frozen=True)
class PoolStep:
    """One output value of a pooling layer.

    ``window`` (KH x KW) holds the values the pooling uses: -inf in max pooling's
    padding, 0 in avg/l2 padding. ``argmax`` is the (first) largest tap for max;
    ``divisor`` the number of cells averaged for avg.
    """

    position: tuple[int, int]
    channel: int
    origin: tuple[int, int]
    window: Array
    padding: Array
    op: PoolKind
    value: float
    argmax: tuple[int, int] | None = None
    divisor: int | None = None


Step = ConvStep | PoolStep


@dataclass(frozen=True)
class Trace:
    """The traced layer and its steps.

    Shapes are HxWxC; ``axes`` the rows' and columns' geometry (kernel or
    window, stride, dilation, padding before/after). ``total_positions`` counts
    positions per output channel, ``omitted`` those no step shows; ``filters``
    counts the kernels (0 for pooling); ``integral`` says whether the layer's
    input, kernels and bias are all whole numbers (whole results then print as
    integers).
    """

    layer: int
    layer_text: str
    kind: TraceKind
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    axes: tuple[Axis, Axis]
    filters: int
    steps: tuple[Step, ...]
    positions: tuple[tuple[int, int], ...]
    total_positions: int
    omitted: int
    pad_mode: PadMode
    activation: Activation
    has_bias: bool
    integral: bool


def trace(
    x: Array,
    stages: Sequence[Stage],
    settings: Settings,
    *,
    layer: int = 1,
    at: Sequence[tuple[int, int]] = (),
    limit: int | None = None,
) -> Trace:
    """Work out the arithmetic of some output values of layer ``layer`` (1-based).

    Parameters
    ----------
    x : array, HxWxC (or HxW)
        The pipeline's input; layers ``1 .. layer-1`` run on it first.
    stages : sequence of Stage
    settings : Settings
        Padding mode, channel mode, flip, exclude_pad and convention, as in `run`.
    layer : int
        The layer to trace: a conv, deconv, pooling or global pooling stage.
    at : sequence of (row, col)
        Output positions to show (duplicates dropped); default as the module says.
    limit : int, optional
        At most this many positions.

    Returns
    -------
    Trace
        Steps filter-major (all positions of output channel 0, then 1 …).

    Raises
    ------
    ConvcalcError
        A layer number out of range or naming a layer without windows, a
        position outside the output, a limit below 1, or anything `run` refuses.
    """
    if not 1 <= layer <= len(stages):
        raise ConvcalcError(f"layer {layer} is not valid; valid: 1 to {len(stages)}")
    if limit is not None and limit < 1:
        raise ConvcalcError(f"limit {limit} is not valid; valid: 1 or more")
    xa = ops.as_image(x)
    if layer > 1:
        xa = ops.as_image(run(xa, stages[: layer - 1], settings).output)
    stage = stages[layer - 1]
    try:
        layout = _layout(xa, stage, settings)
    except ConvcalcError as exc:
        if len(stages) == 1:
            raise
        raise ConvcalcError(f"layer {layer} ({stage.spec.text}): {exc}", exc.hint) from None
    if layout is None:
        raise ConvcalcError(
            f"layer {layer} ({stage.spec.text}) has no windows to show; valid: a conv, deconv "
            f"or pooling layer among 1 to {len(stages)}"
        )
    height, width, channels = layout.output_shape
    positions = _positions(at, limit, height, width)
    steps = tuple(layout.step(p, o) for o in range(channels) for p in positions)
    return Trace(
        layer,
        stage.spec.text,
        layout.kind,
        (xa.shape[0], xa.shape[1], xa.shape[2]),
        layout.output_shape,
        layout.axes,
        layout.filters,
        steps,
        positions,
        height * width,
        height * width - len(positions),
        settings.pad_mode,
        stage.activation,
        stage.bias is not None,
        layout.integral,
    )


def trace_json(t: Trace) -> dict[str, Any]:
    """The JSON document of a trace.

    ``{"output_shape": [H, W, C], "steps": [...]}`` and the layer, the input
    shape and position counts. A convolution step holds ``position``, ``filter``,
    ``output_channel``, ``channels`` (each ``channel``, ``window``, ``kernel``,
    ``sum``, ``padding_mask``), ``bias`` and ``value`` (and ``pre_activation``
    with an activation); a pooling step ``position``, ``channel``, ``window``
    (null for max pooling's padding), ``op``, ``value``, ``padding_mask`` and
    ``argmax`` (max) or ``divisor`` (avg). Whole values are integers when the
    layer's inputs were.
    """

    def num(v: float) -> float | int | None:
        return plain_number(v, t.integral)

    def grid(a: Array) -> list[list[Any]]:
        return [[num(v) for v in row] for row in a]

    def step(s: Step) -> dict[str, Any]:
        doc: dict[str, Any] = {"position": list(s.position)}
        if isinstance(s, PoolStep):
            doc |= {
                "channel": s.channel,
                "origin": list(s.origin),
                "window": grid(s.window),
                "op": str(s.op),
                "value": num(s.value),
                "padding_mask": s.padding.tolist(),
            }
            if s.argmax is not None:
                doc["argmax"] = list(s.argmax)
            if s.divisor is not None:
                doc["divisor"] = s.divisor
            return doc
        doc |= {
            "filter": s.filter,
            "output_channel": s.output_channel,
            "origin": list(s.origin),
            "channels": [
                {
                    "channel": c.channel,
                    "window": grid(c.window),
                    "kernel": grid(c.kernel),
                    "sum": num(c.sum),
                    "padding_mask": c.padding.tolist(),
                }
                for c in s.channels
            ],
            "bias": num(s.bias),
            "value": num(s.value),
        }
        if t.activation != Activation.NONE:
            doc["pre_activation"] = num(s.total)
        return doc

    return {
        "layer": t.layer,
        "layer_text": t.layer_text,
        "kind": str(t.kind),
        "input_shape": list(t.input_shape),
        "output_shape": list(t.output_shape),
        "total_positions": t.total_positions,
        "omitted": t.omitted,
        "steps": [step(s) for s in t.steps],
    }


# -- layouts: what each kind of layer computes at one position ----------------

StepFn = Callable[[tuple[int, int], int], Step]


@dataclass(frozen=True)
class _Layout:
    kind: TraceKind
    output_shape: tuple[int, int, int]
    axes: tuple[Axis, Axis]
    filters: int
    integral: bool
    step: StepFn


def _layout(xa: Array, stage: Stage, settings: Settings) -> _Layout | None:
    """What the stage computes at one position, or None for a layer without windows."""
    layout = _LAYOUTS.get(type(stage.spec.layer))
    return None if layout is None else layout(stage.spec.layer, xa, stage, settings)


def _conv_layout(layer: Conv, xa: Array, stage: Stage, settings: Settings) -> _Layout:
    bank, each = _bank(layer, xa, stage, settings)
    axes = windows.conv_axes(
        xa.shape,
        bank.shape,
        stride=two_axes(layer.stride, "stride"),
        dilation=two_axes(layer.dilation, "dilation"),
        padding=two_axes(layer.padding, "padding"),
        convention=settings.convention,
    )
    return _correlation_layout(xa, stage, settings, bank, each, axes, transposed=False)


def _deconv_layout(layer: Deconv, xa: Array, stage: Stage, settings: Settings) -> _Layout:
    bank, each = _bank(layer, xa, stage, settings)
    axes = windows.transposed_axes(
        xa.shape,
        bank.shape,
        stride=two_axes(layer.stride, "stride"),
        dilation=two_axes(layer.dilation, "dilation"),
        padding=two_axes(layer.padding, "padding"),
        output_padding=two_axes(layer.output_padding, "output_padding"),
    )
    return _correlation_layout(xa, stage, settings, bank, each, axes, transposed=True)


def _correlation_layout(
    xa: Array,
    stage: Stage,
    settings: Settings,
    bank: Array,
    each: bool,
    axes: tuple[Axis, Axis],
    *,
    transposed: bool,
) -> _Layout:
    """A (transposed) convolution's steps: window · kernel per input channel, plus bias."""
    rows, cols = axes
    channels, filters = xa.shape[2], len(stage.kernels)
    kh, kw = bank.shape[:2]
    if settings.flip:
        bank = bank[::-1, ::-1]
    if transposed:  # shown as a correlation over the stretched input: kernel rotated 180°
        bank = bank[::-1, ::-1]
    if each:  # output channel c·F + f (before filter_major) is filter f on channel c
        bank = bank[:, :, 0, :].reshape(kh, kw, channels, filters)
    source = (
        xa if transposed else ops.pad(xa, [(a.pad_lo, a.pad_hi) for a in axes], settings.pad_mode)
    )
    bias = stage.bias or (0.0,) * filters
    out_channels = filters * channels if each else filters

    def step(position: tuple[int, int], o: int) -> Step:
        f, inputs = (o // channels, (o % channels,)) if each else (o, tuple(range(channels)))
        (ri, rreal, r0), (ci, creal, c0) = (_taps(position[k], axes[k], transposed) for k in (0, 1))
        mask = ~np.outer(rreal, creal)
        parts = []
        for c in inputs:
            window = source[np.ix_(ri, ci)][:, :, c].astype(np.float64)
            window[mask & transposed] = 0.0  # the stretched input's zeros
            kernel = bank[:, :, c, f].astype(np.float64)
            parts.append(ChannelStep(c, window, mask, kernel, float(np.sum(window * kernel))))
        total = sum(p.sum for p in parts) + float(bias[f])
        value = float(ops.activate(np.array([total]), stage.activation)[0])
        return ConvStep(position, f, o, (r0, c0), tuple(parts), float(bias[f]), total, value)

    integral = all_whole(xa) and all_whole(bank) and all_whole(np.asarray(bias, np.float64))
    kind = TraceKind.DECONV if transposed else TraceKind.CONV
    return _Layout(
        kind, (rows.size, cols.size, out_channels), (rows, cols), filters, integral, step
    )


def _pool_layout(
    layer: Pool, xa: Array, stage: Stage, settings: Settings, kind: TraceKind = TraceKind.POOL
) -> _Layout:
    size = two_axes(layer.kernel, "kernel")
    stride = size if layer.stride is None else two_axes(layer.stride, "stride")
    padding, dilation = two_axes(layer.padding, "padding"), two_axes(layer.dilation, "dilation")
    rows, cols = axes = windows.pool_axes(
        xa.shape,
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil=layer.ceil,
        convention=settings.convention,
    )
    divisors = windows.avg_counts(
        axes, exclude_pad=settings.exclude_pad, convention=settings.convention
    )
    fill = -np.inf if layer.kind == PoolKind.MAX else 0.0

    def step(position: tuple[int, int], channel: int) -> Step:
        (ri, rreal, r0), (ci, creal, c0) = (_taps(position[k], axes[k]) for k in (0, 1))
        real = np.outer(rreal, creal)
        values = xa[
            np.ix_(
                np.clip(ri - rows.pad_lo, 0, rows.n - 1), np.clip(ci - cols.pad_lo, 0, cols.n - 1)
            )
        ][:, :, channel]
        window = np.where(real, values, fill).astype(np.float64)
        done = PoolStep(position, channel, (r0, c0), window, ~real, layer.kind, 0.0)
        if layer.kind == PoolKind.MAX:
            flat = int(np.argmax(window))
            argmax = (flat // window.shape[1], flat % window.shape[1])
            return replace(done, value=float(window[argmax]), argmax=argmax)
        if layer.kind == PoolKind.AVG:
            counted = int(divisors[0][position[0]] * divisors[1][position[1]])
            return replace(done, value=float(np.sum(window)) / counted, divisor=counted)
        return replace(done, value=float(np.sqrt(np.sum(window * window))))

    return _Layout(kind, (rows.size, cols.size, xa.shape[2]), (rows, cols), 0, all_whole(xa), step)


def _global_pool_layout(layer: GlobalPool, xa: Array, stage: Stage, settings: Settings) -> _Layout:
    whole = Pool(layer.kind, (xa.shape[0], xa.shape[1]))  # a window the size of the map
    return _pool_layout(whole, xa, stage, settings, TraceKind.GLOBAL_POOL)


_LAYOUTS: dict[type, Callable[[Any, Array, Stage, Settings], _Layout]] = {
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


def _positions(
    at: Sequence[tuple[int, int]], limit: int | None, height: int, width: int
) -> tuple[tuple[int, int], ...]:
    for r, c in at:
        if not (0 <= r < height and 0 <= c < width):
            raise ConvcalcError(
                f"position ({r}, {c}) is outside the {height}x{width} output; valid: rows 0 to "
                f"{height - 1}, columns 0 to {width - 1}"
            )
    if at:
        chosen = tuple(dict.fromkeys((int(r), int(c)) for r, c in at))
    else:
        count = height * width
        if limit is None:
            limit = count if count <= SMALL_OUTPUT else DEFAULT_SHOWN
        chosen = tuple((i // width, i % width) for i in range(min(limit, count)))
    return chosen if limit is None else chosen[:limit]


def _bank(layer: Conv | Deconv, xa: Array, stage: Stage, settings: Settings) -> tuple[Array, bool]:
    """The stage's KH x KW x depth x F bank and whether it filters channel by channel,
    after what apply refuses in a (transposed) convolution stage."""
    refuse_groups(layer)
    bank, _, each = kernel_bank(stage.kernels, xa.shape[2], settings.channels)
    check_bias(stage)
    return bank, each


def all_whole(a: Array) -> bool:
    return bool(np.all(np.isfinite(a) & (a == np.round(a))))


def plain_number(v: float, integral: bool) -> float | int | None:
    value = float(v)
    if not np.isfinite(value):
        return None
    # beyond 2**53 a float64 sum no longer vouches for every digit of an integer
    return int(value) if integral and value.is_integer() and abs(value) < 2**53 else value
