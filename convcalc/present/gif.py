"""The pictures of `convcalc animate`: a `convcalc.present.frames.Plan` drawn with Pillow.

A frame shows the padded input on the left (padding hatched blue-grey, the real
input outlined), the output on the right and the step's caption below; a layer of
several channels or filters draws its slices side by side and the current filter's
slices between the two. The
step's cells are highlighted amber in both grids (and each tap's kernel weight
written in its corner); the output's cells not yet written are light grey. A
layer whose output channels read only some input channels (a grouped layer, a 2-D
kernel filtering each channel) fades the slices the current one does not read. A
last frame shows the whole output (transposed: the cells padding crops hatched).

Inputs and outputs of at most `NUMBERS_UP_TO` cells a side, in cells of at least
`MIN_DIGITS` pixels, have their values written in the cells; the others are
thumbnails whose cells are grey blocks (min to max: black to white). Nothing
here prints or writes a file: :func:`gif_bytes` returns the bytes to write.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from convcalc.calc.choices import AnimKind
from convcalc.errors import ConvcalcError
from convcalc.present.frames import (
    MAX_FRAMES_RANGE,
    AnimationRequest,
    Array,
    Cell,
    Plan,
    Step,
    box_dims,
    check_range,
    gap_columns,
    mosaic,
    plan,
    real_cells,
    slice_left,
    states,
    value_text,
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

NUMBERS_UP_TO = 12
"""Inputs and outputs with at most this many rows and columns get numbers in their cells."""
THUMB_PIXELS = 320
"""Thumbnail cells shrink until the longest grid side is at most this many pixels."""
CELL_RANGE = (4, 128)
"""A cell's side in pixels."""
DURATION_RANGE = (20, 10_000)
"""How long a frame shows, in milliseconds."""
MEMORY_BUDGET = 2**30
"""The most memory the frames of one animation may take while drawn and encoded."""
BYTES_PER_PIXEL = 6
"""What a frame's pixel costs until the GIF is written: RGB (3 bytes), paletted (1),
and the GIF encoder's working copies (about 2 more)."""
MIN_DIGITS = 16
"""Cells smaller than this many pixels get no numbers: the grid is drawn as a thumbnail."""

WHITE, TEXT, DIM, GRID = (255, 255, 255), (34, 34, 34), (140, 140, 140), (185, 185, 185)
PAD_FILL, HATCH, EMPTY = (226, 232, 241), (186, 198, 216), (244, 244, 244)
HOT_FILL, HOT_EDGE, WEIGHT, EDGE = (255, 221, 128), (222, 134, 0), (170, 85, 0), (80, 80, 80)
FADE = 0.7
"""How far an input channel the current output does not read fades towards white."""


def frames(
    request: AnimationRequest, *, cell: int = 32, max_frames: int = 400
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """Plan the animation and draw it: one frame per (sampled) position, then the whole output.

    Parameters
    ----------
    request : AnimationRequest
        What to animate (see `convcalc.present.frames.plan`).
    cell : int, keyword-only
        A cell's side in pixels, 4 to 128 (thumbnails of big inputs use smaller
        cells).
    max_frames : int, keyword-only
        At most this many frames (at least 3), the final one included.

    Returns
    -------
    images : list of PIL.Image.Image
        RGB frames, all the same size: the plan's steps, then the whole output.
    notes : tuple of str
        What is worth telling the user (sampling, channels averaged, thumbnails).

    Raises
    ------
    ConvcalcError
        For a cell size out of range, frames that would take more than
        `MEMORY_BUDGET` (see `check_memory`), and whatever
        `convcalc.present.frames.plan` refuses.
    """
    check_range("cell size", cell, *CELL_RANGE, " pixels")
    p = plan(request, max_frames=max_frames)
    lay = _layout(p, cell)
    check_memory(len(p.steps) + 1, lay.size)
    notes = list(p.notes)
    if not lay.numbers:
        notes.append(
            f"input {box_dims(p.left_box)} and output {box_dims(p.right_box)} drawn "
            f"as thumbnails ({lay.px} px per cell, no numbers)"
        )
    base = _base(p, lay)
    images = [
        _frame(p, lay, base, step, values, shown, caption)
        for (step, values, shown), caption in zip(states(p), lay.captions, strict=False)
    ]
    everything = np.ones(p.right.shape, dtype=bool)
    images.append(_frame(p, lay, base, None, p.right, everything, lay.captions[-1]))
    return images, tuple(notes)


def check_memory(count: int, size: tuple[int, int]) -> None:
    """Refuse, before drawing, ``count`` frames of ``size`` (width, height) pixels that
    would take more than `MEMORY_BUDGET`, naming the frame count that would fit."""
    width, height = size
    per_frame = width * height * BYTES_PER_PIXEL
    needed = count * per_frame
    if needed > MEMORY_BUDGET:
        fits = MEMORY_BUDGET // per_frame
        advice = (
            f"--max-frames {fits} or fewer, or a smaller --cell"
            if fits >= MAX_FRAMES_RANGE[0]
            else "a smaller --cell or a smaller input"
        )
        raise ConvcalcError(
            f"{count:,} frames of {width}x{height} pixels need about "
            f"{needed / 2**20:,.0f} MiB while drawn; valid: at most "
            f"{MEMORY_BUDGET / 2**20:,.0f} MiB: {advice}"
        )


def gif_bytes(frames: Sequence[Image.Image], *, duration_ms: int = 400, loop: int = 0) -> bytes:
    """Encode frames as an animated GIF: one shared palette, no dithering, optimized.

    Parameters
    ----------
    frames : sequence of PIL.Image.Image
        At least one frame; frames of other modes are converted to RGB.
    duration_ms : int, keyword-only
        How long each frame shows, 20 to 10000 milliseconds; the last one three
        times as long.
    loop : int, keyword-only
        GIF's loop count, 0 to 65535: 0 loops forever.

    Returns
    -------
    bytes
        The GIF file. The palette (256 colours, median cut) is taken from up to
        six frames spread over the animation.
    """
    check_range("frame duration", duration_ms, *DURATION_RANGE, " ms")
    check_range("loop count", loop, 0, 65_535, "")
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
    paletted[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=paletted[1:],
        loop=loop,
        duration=[duration_ms] * (len(rgb) - 1) + [duration_ms * 3],
        optimize=True,
    )
    return out.getvalue()


# -- layout ------------------------------------------------------------------------------


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
    ranges: tuple[tuple[float, float], ...]  # left, right, middle (the filters)
    fonts: tuple[Font, Font, Font]  # text, cell values, kernel weights
    inside: tuple[NDArray[np.bool_], NDArray[np.bool_]]  # the real cells, left and right
    middle: tuple[Array, ...] = ()  # per output channel: its filter's slices side by side
    middle_xy: tuple[int, int] = (0, 0)


def _layout(p: Plan, cell: int) -> _Layout:
    """Cell size, grid and text positions, captions that fit, fonts and grey ranges."""
    numbers = max(*p.left_box[2:], *p.right_box[2:]) <= NUMBERS_UP_TO and cell >= MIN_DIGITS
    px = cell if numbers else max(1, min(cell, THUMB_PIXELS // max(*p.left.shape, *p.right.shape)))
    tsize = min(18, max(12, round(cell * 0.42)))
    text, line, margin = _font(tsize), tsize * 3 // 2, tsize
    labels = _labels(p)
    left_w = max(p.left.shape[1] * px, round(text.getlength(labels[0])) + tsize)
    right_w = max(p.right.shape[1] * px, round(text.getlength(labels[1])))
    gap = max(3 * tsize, px)
    weighted = p.kind in (AnimKind.CONV, AnimKind.TRANSPOSED)
    middle = tuple(mosaic(f) for f in p.filters) if weighted else ()
    middle_w = 0
    if middle:
        names = (round(text.getlength(n)) + tsize for n in p.names)
        middle_w = max(middle[0].shape[1] * px, *names) + gap
    limit = max(left_w + gap + middle_w + right_w, 50 * tsize)
    fitting = (s.caption if _text_width(text, s.caption) <= limit else s.short for s in p.steps)
    captions = (*fitting, p.final_caption)
    width = max(
        left_w + gap + middle_w + right_w,
        *(_text_width(text, s) for s in (*captions, p.title)),
    )
    rows = [p.left.shape[0], p.right.shape[0], *(m.shape[0] for m in middle[:1])]
    grid_h = max(rows) * px
    grids_y = margin + 2 * line
    lines = max(c.count("\n") + 1 for c in captions)
    inside = (
        real_cells(p.left.shape, p.left_box, p.left_slices),
        real_cells(p.right.shape, p.right_box, p.right_slices),
    )
    ranges = [_value_range(p.left, inside[0]), _value_range(p.right, inside[1])]
    if middle:
        ranges.append(_value_range(np.concatenate(middle, axis=1), np.ones(1, dtype=bool)))
    return _Layout(
        px,
        numbers,
        (width + 2 * margin, grids_y + grid_h + line * (2 * lines + 1) // 2 + margin),
        (margin, grids_y + (grid_h - p.left.shape[0] * px) // 2),
        (margin + left_w + gap + middle_w, grids_y + (grid_h - p.right.shape[0] * px) // 2),
        (margin, margin + line, grids_y + grid_h + line // 2),
        captions,
        tuple(ranges),
        (text, _font(max(9, round(px * 0.42))), _font(max(6, round(px * 0.3)))),
        inside,
        middle,
        (margin + left_w + gap, grids_y + (grid_h - rows[-1] * px) // 2),
    )


def _text_width(font: Font, text: str) -> int:
    """The width in pixels of a (multi-line) text's longest line."""
    return max(round(font.getlength(line)) for line in text.split("\n"))


def _labels(p: Plan) -> tuple[str, str]:
    """The grids' labels: ``input 5x5, padded 7x7`` and ``output 3x3``."""
    left, right = f"input {box_dims(p.left_box)}", f"output {box_dims(p.right_box)}"
    if p.sees:
        left += f"x{p.left_slices}"
        right += f"x{p.right_slices}"
    if p.left_slices > 1:
        left += " (channels side by side)"
    width = (p.left.shape[1] - p.left_slices + 1) // p.left_slices
    if p.left_box[2:] != (p.left.shape[0], width):
        left += f", padded {p.left.shape[0]}x{width}"
    width = (p.right.shape[1] - p.right_slices + 1) // p.right_slices
    if p.right_box[2:] != (p.right.shape[0], width):
        right += f", cropped from {p.right.shape[0]}x{width}"
    return left, right


# -- drawing -----------------------------------------------------------------------------


def _base(p: Plan, lay: _Layout) -> Image.Image:
    """Title, labels, arrow and the left grid without highlights."""
    im = Image.new("RGB", lay.size, WHITE)
    d, text = ImageDraw.Draw(im), lay.fonts[0]
    d.text((lay.text_y[0], lay.text_y[0]), p.title, font=text, fill=TEXT)
    for (x, _), label in zip((lay.left_xy, lay.right_xy), _labels(p), strict=True):
        d.text((x, lay.text_y[1]), label, font=text, fill=DIM)
    x0, x1 = lay.left_xy[0] + p.left.shape[1] * lay.px, lay.right_xy[0]
    if lay.middle:
        x0 = lay.middle_xy[0] + lay.middle[0].shape[1] * lay.px
    y = lay.left_xy[1] + p.left.shape[0] * lay.px // 2
    a, b, head = x0 + (x1 - x0) // 5, x1 - (x1 - x0) // 5, lay.text_y[0] // 2
    d.line([(a, y), (b - head, y)], fill=GRID, width=2)
    d.polygon([(b, y), (b - head, y - head), (b - head, y + head)], fill=GRID)
    _grid(im, lay, lay.left_xy, p.left, np.ones(p.left.shape, dtype=bool), 0, p.left_slices)
    return im


def _frame(
    p: Plan,
    lay: _Layout,
    base: Image.Image,
    step: Step | None,
    values: Array,
    shown: NDArray[np.bool_],
    caption: str,
) -> Image.Image:
    """One frame: the base, the right grid, the highlighted cells and the caption."""
    im = base.copy()
    if step is not None and p.sees:
        _dim_unseen(im, p, lay, p.sees[step.panel])
    d = ImageDraw.Draw(im)
    _grid(im, lay, lay.right_xy, values, shown, 1, p.right_slices)
    if step is not None and lay.middle:
        kernel = lay.middle[step.panel]
        everything = np.ones(kernel.shape, dtype=bool)
        slices = len(p.sees[step.panel])
        _grid(im, lay, lay.middle_xy, kernel, everything, 2, slices)
        label = p.names[step.panel]
        d.text((lay.middle_xy[0], lay.text_y[1]), label, font=lay.fonts[0], fill=DIM)
    if step is not None:
        transposed = p.kind == AnimKind.TRANSPOSED
        _hot(
            d,
            lay,
            lay.left_xy,
            p.left,
            0,
            step.source,
            () if transposed else step.weights,
            p.left_slices,
        )
        _hot(
            d,
            lay,
            lay.right_xy,
            values,
            1,
            step.target,
            step.weights if transposed else (),
            p.right_slices,
        )
    spacing = lay.fonts[0].size // 2 if isinstance(lay.fonts[0], ImageFont.FreeTypeFont) else 4
    d.multiline_text(
        (lay.text_y[0], lay.text_y[2]), caption, font=lay.fonts[0], fill=TEXT, spacing=spacing
    )
    return im


def _dim_unseen(im: Image.Image, p: Plan, lay: _Layout, seen: Sequence[int]) -> None:
    """Fade the input's channel slices the current output channel does not read (a
    grouped layer's other groups, ``--channels each``'s other channels) towards white."""
    width = (p.left.shape[1] - p.left_slices + 1) // p.left_slices
    (x0, y0), px = lay.left_xy, lay.px
    for k in sorted(set(range(p.left_slices)) - set(seen)):
        x = x0 + slice_left(width, k) * px
        box = (x, y0, x + width * px + 1, y0 + p.left.shape[0] * px + 1)
        faded = Image.blend(im.crop(box), Image.new("RGB", (box[2] - x, box[3] - y0), WHITE), FADE)
        im.paste(faded, box[:2])


def _grid(
    im: Image.Image,
    lay: _Layout,
    xy: tuple[int, int],
    values: Array,
    shown: NDArray[np.bool_],
    side: int,
    slices: int = 1,
) -> None:
    """Paint a grid of ``slices`` slices a gap apart: the cell fills as one block
    image, then lines, hatching (padding), numbers and each real part's outline."""
    (x0, y0), px = xy, lay.px
    rows, cols = values.shape
    inside = lay.inside[side] if side < 2 else np.ones(values.shape, dtype=bool)
    gaps = np.broadcast_to(gap_columns(cols, slices) if slices > 1 else False, values.shape)
    fill = np.empty((*values.shape, 3), dtype=np.uint8)
    fill[...] = WHITE if lay.numbers else _gray(values, lay.ranges[side])[..., None]
    fill[~shown], fill[~inside] = EMPTY, PAD_FILL
    fill[gaps] = WHITE
    im.paste(Image.fromarray(fill.repeat(px, axis=0).repeat(px, axis=1)), xy)
    d = ImageDraw.Draw(im)
    width = (cols - slices + 1) // slices
    starts = [k * (width + 1) for k in range(slices)]
    if px >= 6:
        for a in starts:
            for r in range(rows + 1):
                d.line(
                    [(x0 + a * px, y0 + r * px), (x0 + (a + width) * px, y0 + r * px)], fill=GRID
                )
            for c in range(a, a + width + 1):
                d.line([(x0 + c * px, y0), (x0 + c * px, y0 + rows * px)], fill=GRID)
    for r, c in np.argwhere(~inside & ~gaps):
        _hatch(d, x0 + c * px, y0 + r * px, px)
    if lay.numbers:
        for r, c in np.argwhere(shown & ~gaps):
            _digits(d, lay, x0 + c * px, y0 + r * px, values[r, c], TEXT if inside[r, c] else DIM)
    for a in starts:
        real = np.argwhere(inside[:, a : a + width])
        if real.size and real.shape[0] != rows * width:
            (top, left), (bottom, right) = real.min(axis=0), real.max(axis=0) + 1
            d.rectangle(
                [x0 + (a + left) * px, y0 + top * px, x0 + (a + right) * px, y0 + bottom * px],
                outline=EDGE,
                width=2 if px >= 6 else 1,
            )


def _hot(
    d: ImageDraw.ImageDraw,
    lay: _Layout,
    xy: tuple[int, int],
    grid: Array,
    side: int,
    cells: Sequence[Cell],
    weights: Sequence[float],
    slices: int = 1,
) -> None:
    """Highlight cells: amber (thumbnails: amber over the grey), a border, the weight;
    cells too small for a border get one box around them per slice of the grid."""
    (x0, y0), px = xy, lay.px
    for n, (r, c) in enumerate(cells):
        x, y = x0 + c * px, y0 + r * px
        inside = bool(lay.inside[side][r, c])
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
    width = (grid.shape[1] - slices + 1) // slices
    for k in sorted({c // (width + 1) for _, c in cells} if px < 6 else ()):
        rs = [r for r, c in cells if c // (width + 1) == k]
        cs = [c for _, c in cells if c // (width + 1) == k]
        d.rectangle(
            [
                x0 + min(cs) * px - 2,
                y0 + min(rs) * px - 2,
                x0 + (max(cs) + 1) * px + 1,
                y0 + (max(rs) + 1) * px + 1,
            ],
            outline=HOT_EDGE,
            width=2,
        )


def _hatch(d: ImageDraw.ImageDraw, x: int, y: int, px: int) -> None:
    """Diagonal stripes across one padding cell (cells under 8 px stay plain)."""
    if px >= 8:
        for k in range(px // 3, 2 * px, max(4, px // 3)):
            a, b = min(k, px - 1), max(0, k - px + 1)
            d.line([(x + a, y + b), (x + b, y + a)], fill=HATCH)


def _digits(
    d: ImageDraw.ImageDraw, lay: _Layout, x: int, y: int, v: float, fill: RGB, *, shift: float = 0.5
) -> None:
    """The value centred in its cell (``shift`` < 0.5: up and left, clear of a weight)."""
    text = _cell_text(float(v), lay.fonts[1], lay.px - 3)
    if text:
        xy = (x + lay.px * shift, y + lay.px * shift)
        d.text(xy, text, font=lay.fonts[1], fill=fill, anchor="mm")


# -- cells and fonts ---------------------------------------------------------------------


def _cell_text(v: float, font: Font, room: int) -> str | None:
    """The value as written in a cell, shortened to fit ``room`` pixels, or None."""
    if math.isnan(v):
        return None
    for text in (value_text(v, 3), f"{v:.2f}", f"{v:.2g}", f"{v:.1f}", f"{v:.0f}"):
        if font.getlength(text) <= room:
            return text
    return None


def _value_range(values: Array, inside: NDArray[np.bool_]) -> tuple[float, float]:
    """The values drawn black and white in a thumbnail: the real cells' min and max."""
    real = values[np.broadcast_to(inside, values.shape)]
    finite = real[np.isfinite(real)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def _gray(values: Array, value_range: tuple[float, float]) -> NDArray[np.uint8]:
    """Values as grey levels 0-255, ``value_range`` black to white (NaN black)."""
    lo, hi = value_range
    with np.errstate(invalid="ignore", over="ignore"):
        g = (values - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
    return np.rint(np.clip(np.nan_to_num(g), 0, 255)).astype(np.uint8)


@lru_cache(maxsize=16)
def _font(size: int) -> Font:
    """Pillow's built-in font at ``size`` pixels: no font file from the system needed."""
    return ImageFont.load_default(size=size)
