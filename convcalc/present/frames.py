"""The plan of `convcalc animate`: which cells each frame highlights, what it says.

Convolution and pooling get one step per output position, in raster order: the
window's taps in the padded input (with dilation only the tapped cells, never
the holes) and the output cell being written, with a caption such as
``out[1,2] = 0·1 + 1·0 + 1·1 = 1``; the output fills in row by row. A transposed
convolution gets one step per input position: the input cell and the cells of
the full output (before the padding is cropped) its scaled kernel is added to,
the output accumulating. More positions than ``max_frames`` allows are sampled,
every n-th and the last, with a note.

Numbers come from `convcalc.compute.ops` and sizes from `convcalc.calc.geometry`,
so they agree with `apply` and `shape`. Nothing here draws: `convcalc.present.gif`
turns a `Plan` into pictures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import AnimKind, ChannelMode, PadMode, PadRule, PoolKind
from convcalc.calc.geometry import Axis, Padding
from convcalc.calc.layers import Conv, Pool, Spec
from convcalc.compute import ops, windows
from convcalc.compute.methods import working_array
from convcalc.compute.pipeline import Settings, Stage, kernel_bank, run
from convcalc.errors import ConvcalcError
from convcalc.present.numbers import number

Array = NDArray[Any]
Cell = tuple[int, int]
"""A (row, column) in a grid."""
Box = tuple[int, int, int, int]
"""(top, left, rows, cols) of the real input or output inside its grid."""
KernelLike = Array | tuple[int, int] | tuple[Array, ...]
"""A convolution's weights (one array or one per filter), or a pooling window's size."""

MAX_GRID = 256
"""The most rows or columns an input or output may have (crop or downscale larger ones)."""
MAX_TERMS = 9
"""Captions spell out at most this many products or values."""
LARGE_INPUT = 64
"""An input with more rows or columns is animated on a region (`DEFAULT_REGION` unless given)."""
DEFAULT_REGION = 8
"""The side of the centre crop animated on a large input."""
MAX_CHANNEL_LINES = 4
"""Captions give each channel's products a line for at most this many channels."""
MAX_FRAMES_RANGE = (3, 2_000)
"""How many frames an animation may have: the first, the last and the final whole
output at least; at most a few minutes of GIF (see `convcalc.present.gif.MEMORY_BUDGET`)."""


@dataclass(frozen=True, eq=False)
class AnimationRequest:
    """What to animate.

    ``image`` is HxW or HxWxC. ``kernel`` holds KHxKW weights for ``conv`` and
    ``transposed`` (conv: also KHxKWxC, or a tuple of such arrays, one per
    filter); for pooling it is the window size ``(KH, KW)`` (or an array whose
    shape gives it). Several channels or filters, or a ``bias`` (one value per
    filter), animate the layer as `convcalc apply` runs it: per output channel
    and position, with ``channels`` giving a 2-D kernel's meaning on several
    channels (`convcalc.compute.pipeline.kernel_bank`). A transposed
    convolution animates the mean of several channels, with a note.
    ``region`` (top, left, rows, cols) crops the input first; an input over
    `LARGE_INPUT` a side gets a `DEFAULT_REGION` crop at its centre, with a note.
    ``stride`` defaults to 1 (pooling: the window size). ``padding`` is per axis
    as `convcalc.calc.geometry` takes it: a count, ``(before, after)`` or a `PadRule`.
    ``pad_mode`` fills a convolution's padding; pooling pads as `convcalc.compute.ops.pool`.
    """

    image: Array
    kernel: KernelLike
    kind: AnimKind = AnimKind.CONV
    stride: tuple[int, int] | None = None
    padding: tuple[Padding, Padding] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    pad_mode: PadMode = PadMode.ZERO
    bias: tuple[float, ...] | None = None
    channels: ChannelMode = ChannelMode.EACH
    region: Box | None = None


@dataclass(frozen=True)
class Step:
    """One frame's position, ``index`` in raster order over all positions.

    ``source``/``target`` are the cells highlighted in the left/right grid;
    ``weights`` the kernel weight of each tap (conv and transposed, else empty);
    ``short`` the caption when ``caption`` is too wide for the frame.
    """

    index: int
    position: Cell
    source: tuple[Cell, ...]
    target: tuple[Cell, ...]
    weights: tuple[float, ...]
    caption: str
    short: str
    panel: int = 0
    """The output channel written (a layer of several channels or filters), else 0."""


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything an animation shows, computed before anything is drawn.

    ``left`` is the padded input (transposed: the input), NaN where padding has
    no value (max pooling). ``right`` is the final output (transposed: the full
    output before cropping, its real part from `convcalc.compute.ops.conv_transpose`).
    A ``*_box`` is (top, left, rows, cols) of the real input/output in its grid.

    A layer of several channels or filters lays its ``left_slices`` input
    channels and ``right_slices`` output channels side by side, one gap column
    (NaN) apart, the box being that of the first slice (see `slice_left`);
    output channel ``o`` reads input channels ``sees[o]`` with the weights
    ``filters[o]`` (KH x KW x len(sees[o])), adds ``bias[o]``, and is named
    ``names[o]``.
    """

    kind: AnimKind
    title: str
    left: Array
    left_box: Box
    right: Array
    right_box: Box
    kernel: Array
    stride: tuple[int, int]
    dilation: tuple[int, int]
    final_caption: str
    notes: tuple[str, ...]
    steps: tuple[Step, ...] = ()
    left_slices: int = 1
    right_slices: int = 1
    filters: tuple[Array, ...] = ()
    sees: tuple[tuple[int, ...], ...] = ()
    bias: tuple[float, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def positions(self) -> int:
        """How many positions there are: output cells (transposed: input cells)."""
        if self.kind == AnimKind.TRANSPOSED:
            return self.left.size
        return self.right_box[2] * self.right_box[3] * self.right_slices


def slice_left(width: int, k: int) -> int:
    """The first column of slice ``k`` in a row of slices ``width`` columns wide."""
    return k * (width + 1)


def gap_columns(columns: int, slices: int) -> NDArray[np.bool_]:
    """Which of a grid's ``columns`` are the gaps between its ``slices`` slices."""
    width = (columns - slices + 1) // slices
    gaps: NDArray[np.bool_] = np.arange(columns) % (width + 1) == width
    return gaps


def plan(request: AnimationRequest, *, max_frames: int = 400) -> Plan:
    """Compute what the frames show: the grids, the highlighted cells, the captions.

    Parameters
    ----------
    request : AnimationRequest
        The input (HxW or HxWxC), the kernel or pooling window, and the layer's
        stride, padding, dilation and kind.
    max_frames : int, keyword-only
        At most this many frames (`MAX_FRAMES_RANGE`: 3 to 2000), the final whole-output frame
        included: with more positions, every n-th and the last are planned.

    Returns
    -------
    Plan
        The padded input (``left``, Hp x Wp), the output (``right``, Ho x Wo;
        transposed: the full output before cropping), one `Step` per frame
        shown, the title and the notes worth telling the user.

    Raises
    ------
    ConvcalcError
        For what geometry and ops refuse (a kernel larger than the padded
        input …), an input that is not HxW/HxWxC, a grid over `MAX_GRID`.
    """
    check_range("max frames", max_frames, *MAX_FRAMES_RANGE, "")
    notes: list[str] = []
    image = _region(request.image, request.region, notes)
    if request.kind not in set(AnimKind):
        raise ConvcalcError(
            f"animation kind {request.kind!r} is not valid; valid: {', '.join(AnimKind)}"
        )
    if request.kind == AnimKind.TRANSPOSED:
        if isinstance(request.kernel, tuple) or request.bias is not None:
            raise ConvcalcError(
                "a transposed convolution is animated with one 2-D kernel and no bias; "
                "valid: one KHxKW kernel"
            )
        p = _transposed_plan(request, _plane(image, notes), notes)
    elif _volume(request, image):
        p = _volume_plan(request, AnimKind(request.kind), image, notes)
    else:
        p = _window_plan(request, AnimKind(request.kind), _plane(image, notes), notes)
    for box, what in ((p.left_box, "input"), (p.right_box, "output")):
        if max(box[2:]) > MAX_GRID:
            raise ConvcalcError(
                f"an {what} of {box_dims(box)} is too large to animate; valid: "
                f"at most {MAX_GRID} rows and columns (crop or downscale the "
                "input)"
            )
    chosen = _sample(p.positions, max_frames)
    if len(chosen) < p.positions:
        what = "input" if p.kind == AnimKind.TRANSPOSED else "output"
        notes.append(
            f"{p.positions} {what} positions: every {_ordinal(chosen[1])} shown and "
            f"the last ({len(chosen) + 1} frames, at most {max_frames})"
        )
    step = _volume_step if p.sees else _step
    return replace(p, notes=tuple(notes), steps=tuple(step(p, k) for k in chosen))


def states(p: Plan) -> Iterator[tuple[Step, Array, NDArray[np.bool_]]]:
    """The output as it fills in: per step, the right grid's values and its written cells.

    Parameters
    ----------
    p : Plan

    Yields
    ------
    step : Step
        Each of ``p.steps`` in turn.
    values : array, same shape as ``p.right``
        Convolution and pooling: the final output. Transposed: the sum of the
        scaled kernels of the input cells up to ``step.index`` (raster order),
        one array updated in place from step to step.
    shown : bool array, same shape as ``p.right``
        The cells written so far: the output cells up to ``step.index``
        (transposed: the cells some scaled kernel has been added to).
    """
    if p.kind != AnimKind.TRANSPOSED:
        order = np.full(p.right.shape, p.positions)
        h, w = p.right_box[2:]
        for o in range(p.right_slices):
            at = slice_left(w, o)
            order[:h, at : at + w] = np.arange(o * h * w, (o + 1) * h * w).reshape(h, w)
        for step in p.steps:
            yield step, p.right, order <= step.index
        return
    acc, touched, done = np.zeros_like(p.right), np.zeros(p.right.shape, dtype=bool), 0
    (kh, kw), (sh, sw), (dh, dw) = p.kernel.shape, p.stride, p.dilation
    for step in p.steps:
        for k in range(done, step.index + 1):
            r, c = divmod(k, p.left.shape[1])
            where = np.s_[
                r * sh : r * sh + (kh - 1) * dh + 1 : dh, c * sw : c * sw + (kw - 1) * dw + 1 : dw
            ]
            acc[where] += p.left[r, c] * p.kernel
            touched[where] = True
        done = step.index + 1
        yield step, acc, touched


def value_text(v: float, digits: int = 3, *, paren: bool = False) -> str:
    """A value as a caption or a cell writes it: an integer as such, else ``digits``
    significant digits; with ``paren``, a negative value in parentheses."""
    text = number(v, digits)
    return f"({text})" if paren and v < 0 else text


def box_dims(box: Box) -> str:
    """The size of a box's real cells, ``HxW``."""
    return f"{box[2]}x{box[3]}"


def check_range(what: str, value: int, lo: int, hi: int, unit: str) -> None:
    """Raise ConvcalcError unless ``lo <= value <= hi`` (``unit`` ends the message)."""
    if not lo <= value <= hi:
        raise ConvcalcError(f"{what} {value} is not valid; valid: {lo} to {hi}{unit}")


def mosaic(planes: Array) -> Array:
    """An HxWxN array as N HxW slices side by side, one NaN column apart."""
    h, w, n = planes.shape
    out = np.full((h, slice_left(w, n) - 1), math.nan)
    for k in range(n):
        out[:, slice_left(w, k) : slice_left(w, k) + w] = planes[:, :, k]
    return out


def real_cells(shape: tuple[int, ...], box: Box, slices: int) -> NDArray[np.bool_]:
    """Which cells of a grid of ``slices`` slices are real (not padding, not a gap)."""
    inside = np.zeros(shape[:2], dtype=bool)
    top, left, h, w = box
    width = (shape[1] - slices + 1) // slices
    for k in range(slices):
        at = slice_left(width, k) + left
        inside[top : top + h, at : at + w] = True
    return inside


# -- helpers -----------------------------------------------------------------------------


def _plane(image: Array, notes: list[str]) -> Array:
    """The input as one HxW float64 plane: several channels averaged, with a note."""
    x = np.asarray(working_array(image), dtype=np.float64)
    if x.ndim == 3 and x.shape[2] > 1:
        notes.append(f"the input has {x.shape[2]} channels: animating their mean")
    x = x.mean(axis=2) if x.ndim == 3 else x
    if x.ndim != 2 or x.size == 0:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, np.shape(image)))} "
            "is not valid; valid: HxW or HxWxC"
        )
    return x


def _region(image: Array, region: Box | None, notes: list[str]) -> Array:
    """The part of the input animated: ``region``, or a centre crop of a large input."""
    h, w = np.shape(image)[:2] if np.ndim(image) >= 2 else (0, 0)
    if region is None:
        if max(h, w) <= LARGE_INPUT:
            return image
        rows, cols = min(h, DEFAULT_REGION), min(w, DEFAULT_REGION)
        region = ((h - rows) // 2, (w - cols) // 2, rows, cols)
        notes.append(
            f"the input is {h}x{w}: animating its centre {rows}x{cols} "
            f"(--region {','.join(map(str, region))}; the crop is padded as the layer pads)"
        )
    top, left, rows, cols = region
    if top < 0 or left < 0 or rows < 1 or cols < 1 or top + rows > h or left + cols > w:
        raise ConvcalcError(
            f"region {','.join(map(str, region))} is not valid for an input of {h}x{w}; "
            f"valid: ROW,COL,H,W with H, W >= 1 inside the input"
        )
    return image[top : top + rows, left : left + cols]


def _volume(request: AnimationRequest, image: Array) -> bool:
    """Whether the layer has several channels, filters or a bias (drawn slice by slice)."""
    several = np.ndim(image) == 3 and np.shape(image)[2] > 1
    if request.kind != AnimKind.CONV:
        return several
    kernels = _kernel_list(request.kernel)
    deep = any(k.ndim == 3 for k in kernels)
    return several or deep or len(kernels) > 1 or request.bias is not None


def _volume_plan(request: AnimationRequest, kind: AnimKind, image: Array, notes: list[str]) -> Plan:
    """Several channels or filters: the layer `convcalc apply` runs, per output channel."""
    x = np.asarray(working_array(image), dtype=np.float64)
    x = x[:, :, None] if x.ndim == 2 else x
    if x.ndim != 3 or x.size == 0:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, np.shape(image)))} "
            "is not valid; valid: HxW or HxWxC"
        )
    channels, pooling = x.shape[2], kind != AnimKind.CONV
    if pooling:
        window = _window(request.kernel)
        size = (window.shape[0], window.shape[1])
        how = PoolKind.MAX if kind == AnimKind.POOL_MAX else PoolKind.AVG
        layer: Conv | Pool = Pool(
            kind=how,
            kernel=size,
            stride=request.stride,
            padding=request.padding,
            dilation=request.dilation,
        )
        stage = Stage(Spec(text=f"{how}pool", layer=layer))
        filters = tuple(window[:, :, None] for _ in range(channels))
        sees: tuple[tuple[int, ...], ...] = tuple((c,) for c in range(channels))
        bias, names = (0.0,) * channels, tuple(f"channel {c}" for c in range(channels))
        _ignored(request, "pooling", notes)
    else:
        kernels = tuple(
            np.asarray(working_array(k), dtype=np.float64) for k in _kernel_list(request.kernel)
        )
        given = request.bias
        if given is not None and len(given) != len(kernels):
            raise ConvcalcError(
                f"--bias has {len(given)} values for {len(kernels)} filters; give one per filter"
            )
        b = tuple(float(v) for v in given) if given is not None else (0.0,) * len(kernels)
        bank, _, each = kernel_bank(kernels, channels, request.channels)
        size = (bank.shape[0], bank.shape[1])
        layer = Conv(
            out=len(kernels),
            kernel=size,
            stride=request.stride or (1, 1),
            padding=request.padding,
            dilation=request.dilation,
        )
        stage = Stage(Spec(text="conv", layer=layer), kernels, given)
        if each:  # output channel f·C + c is filter f on channel c
            pairs = [(f, c) for f in range(len(kernels)) for c in range(channels)]
            filters = tuple(bank[:, :, :, c * len(kernels) + f] for f, c in pairs)
            sees = tuple((c,) for _, c in pairs)
            bias, names = (
                tuple(b[f] for f, _ in pairs),
                tuple(f"filter {f} on channel {c}" for f, c in pairs),
            )
        else:
            filters = tuple(bank[:, :, :, f] for f in range(len(kernels)))
            sees = (tuple(range(channels)),) * len(kernels)
            bias = b
            depth = f"x{channels}" if channels > 1 else ""
            names = tuple(
                f"filter {f} ({size[0]}x{size[1]}{depth}, bias {value_text(v)})"
                for f, v in enumerate(b)
            )
    stride = request.stride or (size if pooling else (1, 1))
    axes = _sliding_axes(pooling, x.shape, size, stride, request)
    pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if pooling:
        fill = math.nan if kind == AnimKind.POOL_MAX else 0.0
        padded = ops.pad(x, pads, PadMode.ZERO, fill)
    else:
        padded = ops.pad(x, pads, request.pad_mode)
    out = np.asarray(
        run(x, [stage], Settings(pad_mode=request.pad_mode, channels=request.channels)).output,
        dtype=np.float64,
    )
    name = {AnimKind.CONV: "conv", AnimKind.POOL_MAX: "max pool", AnimKind.POOL_AVG: "avg pool"}
    title = _title(name[kind], size, stride, request, axes)
    if not pooling:
        title += f" · {len(filters)} output channels" if len(filters) > 1 else ""
    return Plan(
        kind,
        title,
        mosaic(padded),
        (pads[0][0], pads[1][0], *x.shape[:2]),
        mosaic(out),
        (0, 0, *out.shape[:2]),
        filters[0][:, :, 0],
        stride,
        request.dilation,
        f"the whole output: {out.shape[0]}x{out.shape[1]}x{out.shape[2]}",
        tuple(notes),
        left_slices=channels,
        right_slices=out.shape[2],
        filters=filters,
        sees=sees,
        bias=bias,
        names=names,
    )


def _volume_step(p: Plan, k: int) -> Step:
    """Output channel o at (r, c): per input channel seen, its products, then the sum."""
    h, w = p.right_box[2:]
    o, (r, c) = k // (h * w), divmod(k % (h * w), w)
    width = (p.left.shape[1] - p.left_slices + 1) // p.left_slices
    kernel = p.filters[o]
    (kh, kw), (sh, sw), (dh, dw) = kernel.shape[:2], p.stride, p.dilation
    taps, weights, lines, sums = [], [], [], []
    for s, ch in enumerate(p.sees[o]):
        cells = [(r * sh + i * dh, c * sw + j * dw) for i in range(kh) for j in range(kw)]
        values = [float(p.left[a, slice_left(width, ch) + b]) for a, b in cells]
        ws = [float(v) for v in kernel[:, :, s].ravel()]
        taps += [(a, slice_left(width, ch) + b) for a, b in cells]
        weights += ws
        if p.kind == AnimKind.CONV:
            total = math.fsum(a * b for a, b in zip(values, ws, strict=True))
            terms = " + ".join(
                f"{value_text(a, paren=True)}·{value_text(b, paren=True)}"
                for a, b in zip(values, ws, strict=True)
            )
            text = terms if len(cells) <= MAX_TERMS else f"sum of {len(cells)} products"
            lines.append(f"  channel {ch}: {text} = {value_text(total, 4)}")
            sums.append(total)
    result = value_text(p.right[r, slice_left(w, o) + c], 4)
    at = f"out[{r},{c},{o}]"
    target = ((r, slice_left(w, o) + c),)
    if p.kind != AnimKind.CONV:
        at_left, at_right = slice_left(width, p.sees[o][0]), slice_left(w, o)
        single = replace(
            p,
            left=p.left[:, at_left : at_left + width],
            right=p.right[:, at_right : at_right + w],
            sees=(),
        )
        caption = _step(single, r * w + c).caption.replace(f"out[{r},{c}]", at, 1)
        return Step(k, (r, c), tuple(taps), target, (), caption, f"{at} = {result}", o)
    bias = p.bias[o]
    parts = [value_text(v, 4, paren=True) for v in sums]
    if len(parts) > MAX_TERMS:
        parts = [f"sum of {len(parts)} channel sums"]
    terms = " + ".join([*parts, f"bias {value_text(bias, 4, paren=True)}"])
    head = f"{at} ({p.names[o]}) = {terms} = {result}"
    caption = "\n".join([head, *lines]) if len(lines) <= MAX_CHANNEL_LINES else head
    return Step(k, (r, c), tuple(taps), target, tuple(weights), caption, f"{at} = {result}", o)


def _kernel_list(kernel: KernelLike) -> tuple[Array, ...]:
    """A convolution's filters: one array, or a tuple of arrays (one per filter)."""
    if isinstance(kernel, tuple):
        if not all(isinstance(k, np.ndarray) for k in kernel):
            raise ConvcalcError(
                f"a kernel of {kernel} is not valid for a convolution; valid: KHxKW(xC) weights"
            )
        return tuple(np.asarray(k) for k in kernel)
    return (np.asarray(kernel),)


def _window_plan(request: AnimationRequest, kind: AnimKind, x: Array, notes: list[str]) -> Plan:
    """Convolution and pooling: the window slides over the padded input."""
    pooling = kind != AnimKind.CONV
    kernel = _window(request.kernel) if pooling else _weights(request.kernel)
    size = (kernel.shape[0], kernel.shape[1])
    stride = request.stride or (size if pooling else (1, 1))
    axes = _sliding_axes(pooling, x.shape, size, stride, request)
    pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if pooling:
        how = PoolKind.MAX if kind == AnimKind.POOL_MAX else PoolKind.AVG
        out = ops.pool(
            x, how, size, stride=stride, padding=request.padding, dilation=request.dilation
        )
        left = ops.pad(x, pads, PadMode.ZERO, math.nan if how == PoolKind.MAX else 0.0)
        _ignored(request, "pooling", notes)
    else:
        out = ops.correlate(
            x,
            kernel,
            stride=stride,
            padding=request.padding,
            dilation=request.dilation,
            pad_mode=request.pad_mode,
        )
        left = ops.pad(x, pads, request.pad_mode)
    right = np.asarray(out[..., 0], dtype=np.float64)
    name = {AnimKind.CONV: "conv", AnimKind.POOL_MAX: "max pool", AnimKind.POOL_AVG: "avg pool"}
    return Plan(
        kind,
        _title(name[kind], size, stride, request, axes),
        left,
        (pads[0][0], pads[1][0], *x.shape),
        right,
        (0, 0, *right.shape),
        kernel,
        stride,
        request.dilation,
        f"the whole output: {right.shape[0]}x{right.shape[1]}",
        tuple(notes),
    )


def _sliding_axes(
    pooling: bool, shape: tuple[int, ...], size: Cell, stride: Cell, request: AnimationRequest
) -> tuple[Axis, Axis]:
    """The rows' and columns' geometry of the window `apply` slides (`compute.windows`)."""
    if pooling:
        return windows.pool_axes(
            shape, size, stride=stride, padding=request.padding, dilation=request.dilation
        )
    return windows.conv_axes(
        shape, size, stride=stride, padding=request.padding, dilation=request.dilation
    )


def _transposed_plan(request: AnimationRequest, x: Array, notes: list[str]) -> Plan:
    """Transposed convolution: each input cell adds its scaled kernel into the output."""
    kernel = _weights(request.kernel)
    size, stride = (kernel.shape[0], kernel.shape[1]), request.stride or (1, 1)
    rows, cols = axes = windows.transposed_axes(
        x.shape,
        size,
        stride=stride,
        padding=request.padding,
        dilation=request.dilation,
        output_padding=request.output_padding,
    )
    out = ops.conv_transpose(
        x,
        kernel,
        stride=stride,
        padding=request.padding,
        dilation=request.dilation,
        output_padding=request.output_padding,
    )
    full = np.zeros([windows.transposed_full_size(a) for a in axes])
    box = (rows.pad_lo, cols.pad_lo, rows.size, cols.size)
    full[box[0] : box[0] + box[2], box[1] : box[1] + box[3]] = out[..., 0]
    _ignored(request, "a transposed convolution", notes)
    title = _title("transposed conv", size, stride, request, axes)
    if request.output_padding != (0, 0):
        title += f" · output padding {_pair_text(request.output_padding)}"
    final = f"the whole output: {box_dims(box)}"
    if box[2:] != full.shape:
        final += " (the hatched cells are cropped)"
    return Plan(
        AnimKind.TRANSPOSED,
        title,
        x,
        (0, 0, *x.shape),
        full,
        box,
        kernel,
        stride,
        request.dilation,
        final,
        tuple(notes),
    )


def _step(p: Plan, k: int) -> Step:
    """The highlighted cells and the captions of position k (raster order)."""
    r, c = divmod(k, (p.left if p.kind == AnimKind.TRANSPOSED else p.right).shape[1])
    (kh, kw), (sh, sw), (dh, dw) = p.kernel.shape, p.stride, p.dilation
    taps = tuple((r * sh + i * dh, c * sw + j * dw) for i in range(kh) for j in range(kw))
    weights = tuple(float(w) for w in p.kernel.ravel())
    if p.kind == AnimKind.TRANSPOSED:
        v = value_text(p.left[r, c])
        rows = _span(r * sh - p.right_box[0], kh, dh)
        cols = _span(c * sw - p.right_box[1], kw, dw)
        caption = f"in[{r},{c}] = {v}: out rows {rows}, cols {cols} += {v}·kernel"
        return Step(k, (r, c), ((r, c),), taps, weights, caption, f"in[{r},{c}] = {v}")
    values = [float(p.left[t]) for t in taps]
    result = value_text(p.right[r, c], 4)
    if p.kind == AnimKind.CONV:
        terms = " + ".join(
            f"{value_text(a, paren=True)}·{value_text(w, paren=True)}"
            for a, w in zip(values, weights, strict=True)
        )
        many = f"sum of {len(taps)} products"
    elif p.kind == AnimKind.POOL_MAX:
        values, weights = [v for v in values if not math.isnan(v)], ()
        terms = f"max({', '.join(map(value_text, values))})"
        many = f"max of {len(values)} values"
    else:
        terms, weights = f"({' + '.join(map(value_text, values))})/{len(values)}", ()
        many = f"mean of {len(values)} values"
    caption = f"out[{r},{c}] = {terms if len(taps) <= MAX_TERMS else many} = {result}"
    return Step(k, (r, c), taps, ((r, c),), weights, caption, f"out[{r},{c}] = {result}")


def _sample(n: int, max_frames: int) -> list[int]:
    """Positions shown: all, or every k-th and the last, leaving room for the final frame."""
    if n + 1 <= max_frames:
        return list(range(n))
    chosen = list(range(0, n, -(-n // (max_frames - 2))))
    return chosen if chosen[-1] == n - 1 else [*chosen, n - 1]


def _window(kernel: KernelLike) -> Array:
    """A pooling window as a KHxKW array of ones, from ``(KH, KW)`` or an array's shape."""
    shape = kernel if isinstance(kernel, tuple) else np.shape(kernel)
    if not all(isinstance(n, int | np.integer) for n in shape):
        raise ConvcalcError("a pooling window of several kernels is not valid; valid: (KH, KW)")
    if len(shape) != 2:
        raise ConvcalcError(f"a pooling window of {shape} is not valid; valid: (KH, KW)")
    return np.ones((int(shape[0]), int(shape[1])))


def _weights(kernel: KernelLike) -> Array:
    """A convolution's kernel as KHxKW float64 weights."""
    w = np.asarray(working_array(kernel), dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise ConvcalcError(
            f"a kernel of shape {'x'.join(map(str, w.shape))} is not valid "
            "for an animation; valid: KHxKW weights (one channel)"
        )
    return w


def _ignored(request: AnimationRequest, what: str, notes: list[str]) -> None:
    """Note a pad mode the layer does not use."""
    if request.pad_mode != PadMode.ZERO:
        notes.append(f"pad mode {request.pad_mode} does not apply to {what}: ignored")


def _title(
    name: str, size: Cell, stride: Cell, request: AnimationRequest, axes: Sequence[Axis]
) -> str:
    """``conv 3x3 · stride 1 · reflect padding same 1 · dilation 2``."""
    parts = [f"{name} {size[0]}x{size[1]}", f"stride {_pair_text(stride)}"]
    (top, bottom), (left, right) = pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if top or bottom or left or right:
        rules = sorted({f"{p} " for p in request.padding if isinstance(p, PadRule)})
        conv = request.kind == AnimKind.CONV and request.pad_mode != PadMode.ZERO
        mode = f"{request.pad_mode} " if conv else ""
        same = top == bottom == left == right
        counts = str(top) if same else "({},{})x({},{})".format(*pads[0], *pads[1])
        parts.append(f"{mode}padding {''.join(rules)}{counts}")
    if request.dilation != (1, 1):
        parts.append(f"dilation {_pair_text(request.dilation)}")
    return " · ".join(parts)


def _pair_text(pair: Cell) -> str:
    """One number when both axes agree, else ``a,b``."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


def _span(start: int, f: int, d: int) -> str:
    """The output rows (or columns) a scaled kernel covers: ``-1 to 1 step 2``."""
    return f"{start} to {start + (f - 1) * d}" + (f" step {d}" if d > 1 and f > 1 else "")


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, … 11th, 12th, … 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
