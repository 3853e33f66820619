"""The frames of `convcalc animate`: a window sliding over the padded input, the output filling in.

A frame shows the padded input on the left (padding hatched blue-grey, the real
input outlined), the output on the right and a caption below, e.g.
``out[1,2] = 0·1 + 1·0 + 1·1 = 1``. Convolution and pooling get one frame per
output position: the window's taps are highlighted amber (with dilation only the
tapped cells, never the holes), and so is the output cell being written; the
output fills in row by row. A transposed convolution gets one frame per input
position: the input cell and the cells of the full output its scaled kernel is
added to, the output accumulating (the cells padding crops are hatched). A last
frame shows the whole output.

Inputs and outputs of at most `NUMBERS_UP_TO` cells a side, in cells of at
least `MIN_DIGITS` pixels, have their values written in the cells (and each
tap's kernel weight in its corner); the others are thumbnails whose cells are
grey blocks (min to max: black to white). More
positions than ``max_frames`` allows are sampled, every n-th and the last, with
a note. Numbers come from `convcalc.compute.ops` and sizes from `convcalc.calc.geometry`, so
they agree with `apply` and `shape`. Nothing here prints or writes a file:
:func:`gif_bytes` returns the bytes to write.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from convcalc.calc.choices import PadMode, PoolKind, StrEnum
from convcalc.calc.geometry import Axis, Padding, PadRule, conv_axis, pool_axis, transposed_axis
from convcalc.compute import ops
from convcalc.compute.methods import working_array
from convcalc.errors import ConvcalcError

Array = NDArray[Any]
Cell = tuple[int, int]
Box = tuple[int, int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

NUMBERS_UP_TO = 12
"""Inputs and outputs with at most this many rows and columns get numbers in their cells."""
MAX_GRID = 256
"""The most rows or columns an input or output may have (crop or downscale larger ones)."""
THUMB_PIXELS = 320
"""Thumbnail cells shrink until the longest grid side is at most this many pixels."""
CELL_RANGE = (4, 128)
DURATION_RANGE = (20, 10_000)
MIN_DIGITS = 16
"""Cells smaller than this many pixels get no numbers: the grid is drawn as a thumbnail."""
MAX_TERMS = 9
"""Captions spell out at most this many products or values."""

WHITE, TEXT, DIM, GRID = (255, 255, 255), (34, 34, 34), (140, 140, 140), (185, 185, 185)
PAD_FILL, HATCH, EMPTY = (226, 232, 241), (186, 198, 216), (244, 244, 244)
HOT_FILL, HOT_EDGE, WEIGHT, EDGE = (255, 221, 128), (222, 134, 0), (170, 85, 0), (80, 80, 80)


class AnimKind(StrEnum):
    """What is animated: a convolution, max or average pooling, a transposed convolution."""

    CONV = "conv"
    POOL_MAX = "pool-max"
    POOL_AVG = "pool-avg"
    TRANSPOSED = "transposed"


@dataclass(frozen=True, eq=False)
class AnimationRequest:
    """What to animate.

    ``image`` is HxW or HxWxC (several channels: their mean is animated, with a
    note). ``kernel`` holds KHxKW weights for ``conv`` and ``transposed``; for
    pooling it is the window size ``(KH, KW)`` (or an array whose shape gives it).
    ``stride`` defaults to 1 (pooling: the window size). ``padding`` is per axis
    as `convcalc.calc.geometry` takes it: a count, ``(before, after)`` or a `PadRule`.
    ``pad_mode`` fills a convolution's padding; pooling pads as `convcalc.compute.ops.pool`.
    """

    image: Array
    kernel: Array | tuple[int, int]
    kind: AnimKind = AnimKind.CONV
    stride: tuple[int, int] | None = None
    padding: tuple[Padding, Padding] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    pad_mode: PadMode = PadMode.ZERO


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


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything an animation shows, computed before anything is drawn.

    ``left`` is the padded input (transposed: the input), NaN where padding has
    no value (max pooling). ``right`` is the final output (transposed: the full
    output before cropping, its real part from `convcalc.compute.ops.conv_transpose`).
    A ``*_box`` is (top, left, rows, cols) of the real input/output in its grid.
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

    @property
    def positions(self) -> int:
        """How many positions there are: output cells (transposed: input cells)."""
        return self.left.size if self.kind == AnimKind.TRANSPOSED else self.right.size


def frames(
    request: AnimationRequest, *, cell: int = 32, max_frames: int = 400
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """Draw the animation: one RGB frame per (sampled) position, then the whole output.

    ``cell`` is a cell's side in pixels (4-128; thumbnails of big inputs use
    smaller cells). At most ``max_frames`` frames (at least 3), all the same size.
    Returns the frames and the notes worth telling the user.
    """
    _check_range("cell size", cell, *CELL_RANGE, " pixels")
    p = plan(request, max_frames=max_frames)
    lay = _layout(p, cell)
    notes = list(p.notes)
    if not lay.numbers:
        notes.append(f"input {_dims(p.left_box)} and output {_dims(p.right_box)} drawn as "
                     f"thumbnails ({lay.px} px per cell, no numbers)")
    base = _base(p, lay)
    images = [_frame(p, lay, base, step, values, shown, caption)
              for (step, values, shown), caption in zip(_states(p), lay.captions, strict=False)]
    everything = np.ones(p.right.shape, dtype=bool)
    images.append(_frame(p, lay, base, None, p.right, everything, lay.captions[-1]))
    return images, tuple(notes)


def plan(request: AnimationRequest, *, max_frames: int = 400) -> Plan:
    """Compute what the frames show: the grids, the highlighted cells, the captions.

    Raises ConvcalcError for what geometry and ops refuse (a kernel larger than
    the padded input …), an input that is not HxW/HxWxC, a grid over `MAX_GRID`.
    """
    _check_range("max frames", max_frames, 3, 100_000, "")
    notes: list[str] = []
    x = np.asarray(working_array(request.image), dtype=np.float64)
    if x.ndim == 3 and x.shape[2] > 1:
        notes.append(f"the input has {x.shape[2]} channels: animating their mean")
    x = x.mean(axis=2) if x.ndim == 3 else x
    if x.ndim != 2 or x.size == 0:
        raise ConvcalcError(f"an input of shape {'x'.join(map(str, np.shape(request.image)))} "
                            "is not valid; valid: HxW or HxWxC")
    if request.kind not in set(AnimKind):
        raise ConvcalcError(f"animation kind {request.kind!r} is not valid; valid: "
                            f"{', '.join(AnimKind)}")
    if request.kind == AnimKind.TRANSPOSED:
        p = _transposed_plan(request, x, notes)
    else:
        p = _window_plan(request, AnimKind(request.kind), x, notes)
    for box, what in ((p.left_box, "input"), (p.right_box, "output")):
        if max(box[2:]) > MAX_GRID:
            raise ConvcalcError(f"an {what} of {_dims(box)} is too large to animate; valid: at "
                                f"most {MAX_GRID} rows and columns (crop or downscale the input)")
    chosen = _sample(p.positions, max_frames)
    if len(chosen) < p.positions:
        what = "input" if p.kind == AnimKind.TRANSPOSED else "output"
        notes.append(f"{p.positions} {what} positions: every {_ordinal(chosen[1])} shown and "
                     f"the last ({len(chosen) + 1} frames, at most {max_frames})")
    return replace(p, notes=tuple(notes), steps=tuple(_step(p, k) for k in chosen))


def gif_bytes(frames: Sequence[Image.Image], *, duration_ms: int = 400, loop: int = 0) -> bytes:
    """Encode frames as an animated GIF: one shared palette, no dithering, optimized.

    Each frame shows for ``duration_ms`` (20-10000) milliseconds, the last one
    three times as long. ``loop`` is GIF's loop count: 0 loops forever.
    """
    _check_range("frame duration", duration_ms, *DURATION_RANGE, " ms")
    _check_range("loop count", loop, 0, 65_535, "")
    if not frames:
        raise ConvcalcError("no frames to encode; valid: at least one frame")
    rgb = [f if f.mode == "RGB" else f.convert("RGB") for f in frames]
    picks = sorted({round(i * (len(rgb) - 1) / 5) for i in range(6)})
    montage = Image.new("RGB", (max(f.width for f in rgb), sum(rgb[i].height for i in picks)))
    for n, i in enumerate(picks):
        montage.paste(rgb[i], (0, sum(rgb[j].height for j in picks[:n])))
    palette = montage.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    paletted = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in rgb]
    out = io.BytesIO()
    paletted[0].save(out, format="GIF", save_all=True, append_images=paletted[1:], loop=loop,
                     duration=[duration_ms] * (len(rgb) - 1) + [duration_ms * 3], optimize=True)
    return out.getvalue()


# -- planning ----------------------------------------------------------------------------


def _window_plan(request: AnimationRequest, kind: AnimKind, x: Array, notes: list[str]) -> Plan:
    """Convolution and pooling: the window slides over the padded input."""
    pooling = kind != AnimKind.CONV
    if pooling:
        shape = request.kernel if isinstance(request.kernel, tuple) else np.shape(request.kernel)
        if len(shape) != 2:
            raise ConvcalcError(f"a pooling window of {shape} is not valid; valid: (KH, KW)")
        kernel = np.ones((int(shape[0]), int(shape[1])))
    else:
        kernel = _weights(request.kernel)
    size = (kernel.shape[0], kernel.shape[1])
    stride = request.stride or (size if pooling else (1, 1))
    axis = pool_axis if pooling else conv_axis
    axes = [axis(x.shape[k], size[k], stride=stride[k], padding=request.padding[k],
                 dilation=request.dilation[k]) for k in (0, 1)]
    pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if pooling:
        how = PoolKind.MAX if kind == AnimKind.POOL_MAX else PoolKind.AVG
        out = ops.pool(x, how, size, stride=stride, padding=request.padding,
                       dilation=request.dilation)
        left = ops.pad(x, pads, PadMode.ZERO, math.nan if how == PoolKind.MAX else 0.0)
        _ignored(request, "pooling", notes)
    else:
        out = ops.correlate(x, kernel, stride=stride, padding=request.padding,
                            dilation=request.dilation, pad_mode=request.pad_mode)
        left = ops.pad(x, pads, request.pad_mode)
    right = np.asarray(out[..., 0], dtype=np.float64)
    name = {AnimKind.CONV: "conv", AnimKind.POOL_MAX: "max pool", AnimKind.POOL_AVG: "avg pool"}
    return Plan(kind, _title(name[kind], size, stride, request, axes), left,
                (pads[0][0], pads[1][0], *x.shape), right, (0, 0, *right.shape), kernel, stride,
                request.dilation, f"the whole output: {right.shape[0]}x{right.shape[1]}",
                tuple(notes))


def _transposed_plan(request: AnimationRequest, x: Array, notes: list[str]) -> Plan:
    """Transposed convolution: each input cell adds its scaled kernel into the output."""
    kernel = _weights(request.kernel)
    size, stride = (kernel.shape[0], kernel.shape[1]), request.stride or (1, 1)
    rows, cols = axes = [
        transposed_axis(x.shape[k], size[k], stride=stride[k], padding=request.padding[k],
                        dilation=request.dilation[k], output_padding=request.output_padding[k])
        for k in (0, 1)
    ]
    out = ops.conv_transpose(x, kernel, stride=stride, padding=request.padding,
                             dilation=request.dilation, output_padding=request.output_padding)
    # the full output as ops builds it, before the padding is cropped
    full = np.zeros([max((a.n - 1) * a.stride + a.span, a.pad_lo + a.size) for a in axes])
    box = (rows.pad_lo, cols.pad_lo, rows.size, cols.size)
    full[box[0] : box[0] + box[2], box[1] : box[1] + box[3]] = out[..., 0]
    _ignored(request, "a transposed convolution", notes)
    title = _title("transposed conv", size, stride, request, axes)
    if request.output_padding != (0, 0):
        title += f" · output padding {_pair_text(request.output_padding)}"
    final = f"the whole output: {_dims(box)}"
    if box[2:] != full.shape:
        final += " (the hatched cells are cropped)"
    return Plan(AnimKind.TRANSPOSED, title, x, (0, 0, *x.shape), full, box, kernel, stride,
                request.dilation, final, tuple(notes))


def _step(p: Plan, k: int) -> Step:
    """The highlighted cells and the captions of position k (raster order)."""
    r, c = divmod(k, (p.left if p.kind == AnimKind.TRANSPOSED else p.right).shape[1])
    (kh, kw), (sh, sw), (dh, dw) = p.kernel.shape, p.stride, p.dilation
    taps = tuple((r * sh + i * dh, c * sw + j * dw) for i in range(kh) for j in range(kw))
    weights = tuple(float(w) for w in p.kernel.ravel())
    if p.kind == AnimKind.TRANSPOSED:
        v, rows, cols = _num(p.left[r, c]), _span(r * sh - p.right_box[0], kh, dh), _span(
            c * sw - p.right_box[1], kw, dw)
        caption = f"in[{r},{c}] = {v}: out rows {rows}, cols {cols} += {v}·kernel"
        return Step(k, (r, c), ((r, c),), taps, weights, caption, f"in[{r},{c}] = {v}")
    values = [float(p.left[t]) for t in taps]
    result = _num(p.right[r, c], 4)
    if p.kind == AnimKind.CONV:
        terms = " + ".join(f"{_num(a, paren=True)}·{_num(w, paren=True)}"
                           for a, w in zip(values, weights, strict=True))
        many = f"sum of {len(taps)} products"
    elif p.kind == AnimKind.POOL_MAX:
        values, weights = [v for v in values if not math.isnan(v)], ()
        terms, many = f"max({', '.join(map(_num, values))})", f"max of {len(values)} values"
    else:
        terms, weights = f"({' + '.join(map(_num, values))})/{len(values)}", ()
        many = f"mean of {len(values)} values"
    caption = f"out[{r},{c}] = {terms if len(taps) <= MAX_TERMS else many} = {result}"
    return Step(k, (r, c), taps, ((r, c),), weights, caption, f"out[{r},{c}] = {result}")


def _states(p: Plan) -> Iterator[tuple[Step, Array, NDArray[np.bool_]]]:
    """Per step, the right grid's values and which of its cells have been written."""
    if p.kind != AnimKind.TRANSPOSED:
        order = np.arange(p.right.size).reshape(p.right.shape)
        for step in p.steps:
            yield step, p.right, order <= step.index
        return
    acc, touched, done = np.zeros_like(p.right), np.zeros(p.right.shape, dtype=bool), 0
    (kh, kw), (sh, sw), (dh, dw) = p.kernel.shape, p.stride, p.dilation
    for step in p.steps:
        for k in range(done, step.index + 1):
            r, c = divmod(k, p.left.shape[1])
            where = np.s_[r * sh : r * sh + (kh - 1) * dh + 1 : dh,
                          c * sw : c * sw + (kw - 1) * dw + 1 : dw]
            acc[where] += p.left[r, c] * p.kernel
            touched[where] = True
        done = step.index + 1
        yield step, acc, touched


def _sample(n: int, max_frames: int) -> list[int]:
    """Positions shown: all, or every k-th and the last, leaving room for the final frame."""
    if n + 1 <= max_frames:
        return list(range(n))
    chosen = list(range(0, n, -(-n // (max_frames - 2))))
    return chosen if chosen[-1] == n - 1 else [*chosen, n - 1]


def _weights(kernel: Array | tuple[int, int]) -> Array:
    w = np.asarray(working_array(kernel), dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise ConvcalcError(f"a kernel of shape {'x'.join(map(str, w.shape))} is not valid "
                            "for an animation; valid: KHxKW weights (one channel)")
    return w


def _ignored(request: AnimationRequest, what: str, notes: list[str]) -> None:
    if request.pad_mode != PadMode.ZERO:
        notes.append(f"pad mode {request.pad_mode} does not apply to {what}: ignored")


def _title(name: str, size: Cell, stride: Cell, request: AnimationRequest,
           axes: Sequence[Axis]) -> str:
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
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


def _span(start: int, f: int, d: int) -> str:
    return f"{start} to {start + (f - 1) * d}" + (f" step {d}" if d > 1 and f > 1 else "")


def _num(v: float, digits: int = 3, *, paren: bool = False) -> str:
    """A value in a caption: an integer as such, else ``digits`` significant digits."""
    text = str(int(v) + 0) if float(v).is_integer() and abs(v) < 1e9 else f"{v:.{digits}g}"
    return f"({text})" if paren and v < 0 else text


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _dims(box: Box) -> str:
    return f"{box[2]}x{box[3]}"


def _check_range(what: str, value: int, lo: int, hi: int, unit: str) -> None:
    if not lo <= value <= hi:
        raise ConvcalcError(f"{what} {value} is not valid; valid: {lo} to {hi}{unit}")


# -- drawing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where everything goes, the same in every frame; ``ranges`` map values to grey."""

    px: int
    numbers: bool
    size: tuple[int, int]
    left_xy: tuple[int, int]
    right_xy: tuple[int, int]
    text_y: tuple[int, int, int]
    captions: tuple[str, ...]
    ranges: tuple[tuple[float, float], tuple[float, float]]
    fonts: tuple[Font, Font, Font]  # text, cell values, kernel weights


def _layout(p: Plan, cell: int) -> _Layout:
    numbers = max(*p.left_box[2:], *p.right_box[2:]) <= NUMBERS_UP_TO and cell >= MIN_DIGITS
    px = cell if numbers else max(1, min(cell, THUMB_PIXELS // max(*p.left.shape, *p.right.shape)))
    tsize = min(18, max(12, round(cell * 0.42)))
    text, line, margin = _font(tsize), tsize * 3 // 2, tsize
    labels = _labels(p)
    left_w = max(p.left.shape[1] * px, round(text.getlength(labels[0])) + tsize)
    right_w = max(p.right.shape[1] * px, round(text.getlength(labels[1])))
    gap = max(3 * tsize, px)
    limit = max(left_w + gap + right_w, 50 * tsize)
    fitting = (s.caption if text.getlength(s.caption) <= limit else s.short for s in p.steps)
    captions = (*fitting, p.final_caption)
    width = max(left_w + gap + right_w, *(round(text.getlength(s)) for s in (*captions, p.title)))
    grid_h = max(p.left.shape[0], p.right.shape[0]) * px
    grids_y = margin + 2 * line
    return _Layout(
        px, numbers, (width + 2 * margin, grids_y + grid_h + line * 3 // 2 + margin),
        (margin, grids_y + (grid_h - p.left.shape[0] * px) // 2),
        (margin + left_w + gap, grids_y + (grid_h - p.right.shape[0] * px) // 2),
        (margin, margin + line, grids_y + grid_h + line // 2), captions,
        (_value_range(p.left, p.left_box), _value_range(p.right, p.right_box)),
        (text, _font(max(9, round(px * 0.42))), _font(max(6, round(px * 0.3)))),
    )


def _labels(p: Plan) -> tuple[str, str]:
    left, right = f"input {_dims(p.left_box)}", f"output {_dims(p.right_box)}"
    if p.left_box[2:] != p.left.shape:
        left += f", padded {p.left.shape[0]}x{p.left.shape[1]}"
    if p.right_box[2:] != p.right.shape:
        right += f", cropped from {p.right.shape[0]}x{p.right.shape[1]}"
    return left, right


def _base(p: Plan, lay: _Layout) -> Image.Image:
    """Title, labels, arrow and the left grid without highlights."""
    im = Image.new("RGB", lay.size, WHITE)
    d, text = ImageDraw.Draw(im), lay.fonts[0]
    d.text((lay.text_y[0], lay.text_y[0]), p.title, font=text, fill=TEXT)
    for (x, _), label in zip((lay.left_xy, lay.right_xy), _labels(p), strict=True):
        d.text((x, lay.text_y[1]), label, font=text, fill=DIM)
    x0, x1 = lay.left_xy[0] + p.left.shape[1] * lay.px, lay.right_xy[0]
    y = lay.left_xy[1] + p.left.shape[0] * lay.px // 2
    a, b, head = x0 + (x1 - x0) // 5, x1 - (x1 - x0) // 5, lay.text_y[0] // 2
    d.line([(a, y), (b - head, y)], fill=GRID, width=2)
    d.polygon([(b, y), (b - head, y - head), (b - head, y + head)], fill=GRID)
    _grid(im, lay, lay.left_xy, p.left, np.ones(p.left.shape, dtype=bool), p.left_box, 0)
    return im


def _frame(p: Plan, lay: _Layout, base: Image.Image, step: Step | None, values: Array,
           shown: NDArray[np.bool_], caption: str) -> Image.Image:
    """One frame: the base, the right grid, the highlighted cells and the caption."""
    im = base.copy()
    d = ImageDraw.Draw(im)
    _grid(im, lay, lay.right_xy, values, shown, p.right_box, 1)
    if step is not None:
        transposed = p.kind == AnimKind.TRANSPOSED
        _hot(d, lay, lay.left_xy, p.left, p.left_box, 0, step.source,
             () if transposed else step.weights)
        _hot(d, lay, lay.right_xy, values, p.right_box, 1, step.target,
             step.weights if transposed else ())
    d.text((lay.text_y[0], lay.text_y[2]), caption, font=lay.fonts[0], fill=TEXT)
    return im


def _grid(im: Image.Image, lay: _Layout, xy: tuple[int, int], values: Array,
          shown: NDArray[np.bool_], box: Box, side: int) -> None:
    """Paint a grid: the cell fills as one block image, then lines, hatching, numbers."""
    (x0, y0), px, (top, left, h, w) = xy, lay.px, box
    inside = np.zeros(values.shape, dtype=bool)
    inside[top : top + h, left : left + w] = True
    fill = np.empty((*values.shape, 3), dtype=np.uint8)
    fill[...] = WHITE if lay.numbers else _gray(values, lay.ranges[side])[..., None]
    fill[~shown], fill[~inside] = EMPTY, PAD_FILL
    im.paste(Image.fromarray(fill.repeat(px, axis=0).repeat(px, axis=1)), xy)
    d = ImageDraw.Draw(im)
    rows, cols = values.shape
    if px >= 6:
        for r in range(rows + 1):
            d.line([(x0, y0 + r * px), (x0 + cols * px, y0 + r * px)], fill=GRID)
        for c in range(cols + 1):
            d.line([(x0 + c * px, y0), (x0 + c * px, y0 + rows * px)], fill=GRID)
    for r, c in np.argwhere(~inside):
        _hatch(d, x0 + c * px, y0 + r * px, px)
    if lay.numbers:
        for r, c in np.argwhere(shown):
            _digits(d, lay, x0 + c * px, y0 + r * px, values[r, c], TEXT if inside[r, c] else DIM)
    if (h, w) != values.shape:
        d.rectangle([x0 + left * px, y0 + top * px, x0 + (left + w) * px, y0 + (top + h) * px],
                    outline=EDGE, width=2 if px >= 6 else 1)


def _hot(d: ImageDraw.ImageDraw, lay: _Layout, xy: tuple[int, int], grid: Array, box: Box,
         side: int, cells: Sequence[Cell], weights: Sequence[float]) -> None:
    """Highlight cells: amber (thumbnails: amber over the grey), a border, the weight."""
    (x0, y0), px, (top, left, h, w) = xy, lay.px, box
    for n, (r, c) in enumerate(cells):
        x, y = x0 + c * px, y0 + r * px
        inside = top <= r < top + h and left <= c < left + w
        fill = HOT_FILL
        if not lay.numbers:  # keep a third of the grey, so the value still shows
            g = int(_gray(grid[r : r + 1, c : c + 1], lay.ranges[side])[0, 0]) if inside else 220
            fill = (round(0.35 * g + 166), round(0.35 * g + 144), round(0.35 * g + 83))
        d.rectangle([x, y, x + px - 1, y + px - 1], fill=fill)
        if not inside:
            _hatch(d, x, y, px)
        if px >= 6:
            d.rectangle([x, y, x + px, y + px], outline=HOT_EDGE, width=2 if px >= 12 else 1)
        if lay.numbers:
            shift = 0.42 if weights and px >= 24 else 0.5
            _digits(d, lay, x, y, grid[r, c], TEXT if inside else DIM, shift=shift)
            label = _cell_text(weights[n], lay.fonts[2], px // 2) if weights and px >= 24 else None
            if label:
                d.text((x + px - 3, y + px - 2), label, font=lay.fonts[2], fill=WEIGHT, anchor="rd")
    if cells and px < 6:
        rs, cs = [r for r, _ in cells], [c for _, c in cells]
        d.rectangle([x0 + min(cs) * px - 2, y0 + min(rs) * px - 2, x0 + (max(cs) + 1) * px + 1,
                     y0 + (max(rs) + 1) * px + 1], outline=HOT_EDGE, width=2)


def _hatch(d: ImageDraw.ImageDraw, x: int, y: int, px: int) -> None:
    """Diagonal stripes across one padding cell (cells under 8 px stay plain)."""
    if px >= 8:
        for k in range(px // 3, 2 * px, max(4, px // 3)):
            a, b = min(k, px - 1), max(0, k - px + 1)
            d.line([(x + a, y + b), (x + b, y + a)], fill=HATCH)


def _digits(d: ImageDraw.ImageDraw, lay: _Layout, x: int, y: int, v: float, fill: RGB,
            *, shift: float = 0.5) -> None:
    """The value centred in its cell (``shift`` < 0.5: up and left, clear of a weight)."""
    text = _cell_text(float(v), lay.fonts[1], lay.px - 3)
    if text:
        xy = (x + lay.px * shift, y + lay.px * shift)
        d.text(xy, text, font=lay.fonts[1], fill=fill, anchor="mm")


def _cell_text(v: float, font: Font, room: int) -> str | None:
    """The value as written in a cell, shortened to fit ``room`` pixels, or None."""
    if math.isnan(v):
        return None
    for text in (_num(v, 3), f"{v:.2f}", f"{v:.2g}", f"{v:.1f}", f"{v:.0f}"):
        if font.getlength(text) <= room:
            return text
    return None


def _value_range(values: Array, box: Box) -> tuple[float, float]:
    """The values drawn black and white in a thumbnail: the real cells' min and max."""
    real = values[box[0] : box[0] + box[2], box[1] : box[1] + box[3]]
    finite = real[np.isfinite(real)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def _gray(values: Array, value_range: tuple[float, float]) -> NDArray[np.uint8]:
    lo, hi = value_range
    with np.errstate(invalid="ignore", over="ignore"):
        g = (values - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
    return np.rint(np.clip(np.nan_to_num(g), 0, 255)).astype(np.uint8)


@lru_cache(maxsize=16)
def _font(size: int) -> Font:
    """Pillow's built-in font at ``size`` pixels: no font file from the system needed."""
    return ImageFont.load_default(size=size)
