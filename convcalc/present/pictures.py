"""Input and output drawn in the terminal, for ``convcalc apply --show``.

Presentation only: the functions here build rich renderables and never print.
Three ways to draw an array, chosen by :func:`show`:

- **picture**: one text cell per pixel column. With a colour terminal
  (``"truecolor"`` or ``"256"``, rich's ``console.color_system``) each cell is
  the half block ``▀`` whose foreground is the upper pixel and background the
  lower one, so a text row holds two pixel rows; otherwise a grayscale ramp of
  characters (:data:`RAMP`, dark to light) with one text row per two pixel
  rows. Either way a text cell, about twice as tall as wide, covers a square
  of the picture, so the aspect ratio is kept. Pictures are shrunk by area
  averaging to fit the width (and :data:`MAX_ROWS` text rows), and enlarged by
  at most :data:`MAX_ZOOM` times. Values are mapped to 0-255 per picture by
  :func:`convcalc.io.scaling.to_uint8` with ``Scale.AUTO``, and the title says
  which mapping was used, e.g. ``output 254x254x3 (minmax -832…854)``.
- **heatmap**: a matrix of at most :data:`HEATMAP_MAX` x :data:`HEATMAP_MAX`
  shows its values, each on a background from a colormap (diverging blue-white-
  red centred on 0 when there are values of both signs, sequential viridis
  otherwise), with a legend line ``min ramp max``.
- **grid**: an array whose channel count C is neither 1 nor 3 is drawn channel
  by channel (``channel 0``, ``channel 1``, …), as many per row as fit.

Every line of what :func:`show` returns fits in ``width`` columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.color import Color
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from convcalc.calc.choices import Scale
from convcalc.errors import ConvcalcError
from convcalc.io.scaling import to_uint8
from convcalc.present.numbers import number

RAMP = " .:-=+*#%@"
"""Characters from black to white, used when the terminal has no usable colour."""
HEATMAP_MAX = 16
"""The largest height and width (per channel) drawn as a heatmap of values."""
MAX_ZOOM = 4
"""A picture is never enlarged more than this many times."""
MAX_ROWS = 48
"""A picture is never taller than this many text rows."""
MAX_TILES = 64
"""At most this many channels are drawn in a grid; a note counts the rest."""
HALF_BLOCK_SYSTEMS = ("truecolor", "256")
"""The rich colour systems drawn with half blocks; any other gets :data:`RAMP`."""

_GAP = 3  # columns between input and output
_TILE_GAP = 2  # columns between the pictures of a channel grid
_MIN_TILE = 12  # the narrowest picture in a channel grid, in columns
_HALF_BLOCK = "▀"
_LEGEND_BLOCK = "█"
_DIVERGING = ((59, 76, 192), (141, 176, 254), (221, 221, 221), (244, 154, 123), (180, 4, 38))
_SEQUENTIAL = (
    (68, 1, 84),
    (70, 50, 127),
    (54, 92, 141),
    (39, 127, 142),
    (31, 161, 135),
    (74, 193, 109),
    (160, 218, 57),
    (253, 231, 37),
)
_LUMA = np.array([0.299, 0.587, 0.114])


def show(
    input: NDArray[Any],
    output: NDArray[Any],
    *,
    width: int,
    color_system: str | None,
    input_title: str = "input",
    output_title: str = "output",
) -> RenderableType:
    """Input and output side by side (or one above the other), fitted to ``width``.

    Parameters
    ----------
    input, output : ndarray
        HxWxC (or HxW) arrays of any real dtype. Each is drawn as a heatmap when
        H, W <= HEATMAP_MAX and the values fit, else as a picture (C == 1 or 3)
        or a grid of per-channel pictures (any other C).
    width : int
        Columns available; no rendered line is longer.
    color_system : str or None
        rich's ``console.color_system``: ``"truecolor"`` and ``"256"`` draw
        half blocks, anything else (``"standard"``, ``"windows"``, None) the
        character ramp.
    input_title, output_title : str
        The first word of each title; shape and value mapping follow it.

    Returns
    -------
    RenderableType
        A rich renderable; print it on a console at least ``width`` wide.
    """
    width = max(width, 1)
    pair = _pair(input, output, (input_title, output_title), width, color_system)
    if pair is not None and not (pair[0].cramped or pair[1].cramped):
        return _side_by_side(*pair)
    above = _panel(input, input_title, width, color_system)
    below = _panel(output, output_title, width, color_system)
    if pair is not None and above.cramped + below.cramped >= pair[0].cramped + pair[1].cramped:
        return _side_by_side(*pair)
    return Group(above.renderable, Text(""), below.renderable)


def picture(
    array: NDArray[Any], *, width: int, color_system: str | None, max_rows: int = MAX_ROWS
) -> Text:
    """An image as text: colour half blocks, or the character ramp without colour.

    Parameters
    ----------
    array : ndarray
        HxWx1 or HxWx3 (or HxW); uint8 is used as it is, anything else is first
        mapped to 0-255 by ``to_uint8(array, Scale.AUTO)``.
    width : int
        The most text columns the picture may take (at least 1).
    color_system : str or None
        ``"truecolor"`` or ``"256"``: half blocks ``▀`` styled ``#upper on
        #lower``; anything else: one character of RAMP per cell (gray, from the
        luma ``0.299 R + 0.587 G + 0.114 B`` of colour images).
    max_rows : int
        The most text rows.

    Returns
    -------
    Text
        ``rows`` lines of ``cols`` cells each, ``(rows, cols)`` as
        :func:`fit_size` gives them for HxW and ``width``.
    """
    image = _as_hwc(array)
    if image.size == 0:
        raise ConvcalcError(f"cannot draw an empty {'x'.join(map(str, image.shape))} picture")
    if image.dtype != np.uint8:
        image = to_uint8(image, Scale.AUTO).array
    half_blocks = color_system in HALF_BLOCK_SYSTEMS
    rows, cols = fit_size(image.shape[0], image.shape[1], columns=width, max_rows=max_rows)
    if not half_blocks:
        small = resize(image, rows, cols)
        gray = small @ _LUMA if small.shape[2] == 3 else small[..., 0]
        index = np.rint(gray / 255.0 * (len(RAMP) - 1)).astype(int)
        return Text(
            "\n".join("".join(RAMP[i] for i in line) for line in index),
            no_wrap=True,
            overflow="crop",
        )
    pixel_rows = min(2 * rows, max(round(image.shape[0] * cols / image.shape[1]), 1))
    small = np.rint(resize(image, pixel_rows, cols)).astype(int)
    if small.shape[2] == 1:
        small = np.repeat(small, 3, axis=2)
    text = Text(no_wrap=True, overflow="crop")
    for r in range(0, pixel_rows, 2):
        if r:
            text.append("\n")
        for c in range(cols):
            upper = Color.from_rgb(*small[r, c])
            lower = Color.from_rgb(*small[r + 1, c]) if r + 1 < pixel_rows else None
            text.append(_HALF_BLOCK, Style(color=upper, bgcolor=lower))
    return text


def heatmap(
    matrix: NDArray[Any], title: str, limits: tuple[float, float] | None = None
) -> RenderableType:
    """A small HxW matrix (2-D) as its values on coloured backgrounds, with a legend.

    Values are written as :func:`convcalc.present.numbers.number` writes them (whole
    numbers without ``.0``). Backgrounds come from a diverging blue-white-red
    colormap centred on 0 when the matrix has both negative and positive
    values, else from viridis from its minimum to its maximum. The last line
    is the legend: ``min``, the colour ramp, ``max``. Without colour the values
    still read as a table. ``limits`` (lo, hi) sets the colormap's range instead of
    the matrix's own, so that several matrices (a volume's slices) share one scale.
    """
    return Group(Text(title, overflow="fold"), *_heatmap_lines(np.asarray(matrix), limits))


def fit_size(height: int, width: int, *, columns: int, max_rows: int = MAX_ROWS) -> tuple[int, int]:
    """The text ``(rows, cols)`` an HxW picture takes within ``columns``.

    ``cols = min(W·MAX_ZOOM, columns)`` and ``rows = round(H·cols/W/2)``: a text
    cell is about twice as tall as wide, and holds two pixel rows (half blocks)
    or samples two (the ramp), so the aspect ratio is kept. When ``rows`` would
    pass ``max_rows``, ``cols`` shrinks to keep the ratio. Both are at least 1.

    Examples
    --------
    >>> fit_size(256, 256, columns=40)
    (20, 40)
    >>> fit_size(5, 20, columns=200)
    (10, 80)
    """
    cols = max(min(width * MAX_ZOOM, columns), 1)
    rows = max(round(height * cols / width / 2), 1)
    if rows > max_rows:
        cols = max(min(cols, int(width * 2 * max_rows / height)), 1)
        rows = min(max(round(height * cols / width / 2), 1), max_rows)
    return rows, cols


def resize(image: NDArray[Any], height: int, width: int) -> NDArray[np.float64]:
    """An HxWxC image resampled to height x width x C by area averaging.

    Each output pixel is the mean of the input area it covers (fractional
    pixels weighted by their overlap), so shrinking never aliases and an
    enlargement by a whole factor repeats pixels exactly.
    """
    rows = _area_weights(image.shape[0], height)
    cols = _area_weights(image.shape[1], width)
    planes = np.moveaxis(np.asarray(image, dtype=np.float64), 2, 0)
    return np.moveaxis(rows @ planes @ cols.T, 0, 2)


# ----------------------------------------------------------------- panels


@dataclass(frozen=True)
class _Panel:
    """One titled drawing and its width in columns.

    ``cramped``: drawn worse than with more room (a heatmap that became a
    picture, a grid of several channels with one per row).
    """

    renderable: RenderableType
    width: int
    cramped: bool = False


def _pair(
    input: NDArray[Any],
    output: NDArray[Any],
    titles: tuple[str, str],
    width: int,
    color_system: str | None,
) -> tuple[_Panel, _Panel] | None:
    """Input within half the width, output within the rest; None when too narrow."""
    half = (width - _GAP) // 2
    if half < 1:
        return None
    left = _panel(input, titles[0], half, color_system)
    rest = width - _GAP - left.width
    if rest < 1:
        return None
    return left, _panel(output, titles[1], rest, color_system)


def _panel(array: NDArray[Any], title: str, width: int, color_system: str | None) -> _Panel:
    """The best drawing of an HxWxC array within ``width`` columns."""
    image = _as_hwc(array)
    h, w, c = image.shape
    shape = f"{h}x{w}" if c == 1 else f"{h}x{w}x{c}"
    if image.size == 0:
        return _Panel(Text(f"{title} {shape} (empty)"[:width]), width)
    cramped = False
    if h <= HEATMAP_MAX and w <= HEATMAP_MAX:
        panel = _heatmap_panel(image, f"{title} {shape}", width)
        if panel.width <= width:
            return panel
        cramped = True
    if c in (1, 3):
        scaled = to_uint8(image, Scale.AUTO)
        body = picture(scaled.array, width=width, color_system=color_system)
        heading = f"{title} {shape} ({scaled.scale} {number(scaled.lo)}…{number(scaled.hi)})"
        body_width = max(len(line) for line in body.plain.split("\n"))
        return _Panel(
            Group(Text(heading, overflow="fold"), body),
            min(width, max(body_width, len(heading))),
            cramped,
        )
    return _picture_grid(image, f"{title} {shape}", width, color_system, cramped)


def _heatmap_panel(image: NDArray[Any], title: str, width: int) -> _Panel:
    """One heatmap for HxWx1, a grid of per-channel heatmaps for HxWxC."""
    if image.shape[2] == 1:
        lines = _heatmap_lines(image[..., 0])
        body = max(line.cell_len for line in lines)
        return _Panel(
            Group(Text(title, overflow="fold"), *lines), max(body, min(len(title), width))
        )
    tiles = [
        [Text(f"channel {i}"), *_heatmap_lines(image[..., i])]
        for i in range(min(image.shape[2], MAX_TILES))
    ]
    tile_width = max(line.cell_len for tile in tiles for line in tile)
    return _grid([Group(*tile) for tile in tiles], title, image.shape[2], tile_width, width)


def _picture_grid(
    image: NDArray[Any], title: str, width: int, color_system: str | None, cramped: bool
) -> _Panel:
    """The channels of HxWxC as small pictures titled ``channel i``."""
    _, w, channels = image.shape
    shown = min(channels, MAX_TILES)
    label = max(len(f"channel {shown - 1}"), _MIN_TILE)
    tile_width = max(label, (width - _TILE_GAP * (shown - 1)) // shown)
    tile_width = min(tile_width, w * MAX_ZOOM, width)
    tiles: list[RenderableType] = []
    scales: set[str] = set()
    for i in range(shown):
        scaled = to_uint8(image[..., i : i + 1], Scale.AUTO)
        scales.add(str(scaled.scale))
        tiles.append(
            Group(
                Text(f"channel {i}", no_wrap=True, overflow="ellipsis"),
                picture(
                    scaled.array,
                    width=tile_width,
                    color_system=color_system,
                    max_rows=max(MAX_ROWS // 2, 1),
                ),
            )
        )
    heading = f"{title} ({'/'.join(sorted(scales))} per channel)"
    panel = _grid(tiles, heading, channels, tile_width, width)
    return _Panel(panel.renderable, panel.width, cramped or panel.cramped)


def _grid(
    tiles: Sequence[RenderableType], title: str, channels: int, tile_width: int, width: int
) -> _Panel:
    """Tiles of ``tile_width`` columns, as many per row as fit ``width``, under a title."""
    cols = max(1, min(len(tiles), (width + _TILE_GAP) // (tile_width + _TILE_GAP)))
    table = Table.grid(padding=(0, _TILE_GAP, 1, 0), collapse_padding=False)
    for _ in range(cols):
        table.add_column(width=tile_width, no_wrap=True)
    for start in range(0, len(tiles), cols):
        row = list(tiles[start : start + cols])
        table.add_row(*row, *[""] * (cols - len(row)))
    used = cols * tile_width + (cols - 1) * _TILE_GAP
    parts: list[RenderableType] = [Text(title, overflow="fold"), table]
    if channels > len(tiles):
        parts.append(Text(f"… {channels - len(tiles)} more channels not shown", overflow="fold"))
    return _Panel(Group(*parts), max(used, min(len(title), width)), cols == 1 < len(tiles))


def _side_by_side(left: _Panel, right: _Panel) -> Table:
    table = Table.grid(padding=(0, _GAP, 0, 0))
    table.add_column(width=left.width)
    table.add_column(width=right.width)
    table.add_row(left.renderable, right.renderable)
    return table


# ----------------------------------------------------------------- helpers


def _heatmap_lines(matrix: NDArray[Any], limits: tuple[float, float] | None = None) -> list[Text]:
    """The rows of a heatmap of an HxW matrix, then its legend line; the colours span
    ``limits`` when given, else the matrix's finite values."""
    values = np.asarray(matrix, dtype=np.float64)
    cells = [[number(v) for v in row] for row in matrix]
    cell = max(len(s) for row in cells for s in row)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if limits is not None:
        lo, hi = limits
    colormap = _DIVERGING if lo < 0 < hi else _SEQUENTIAL
    positions = _positions(values, lo, hi, colormap is _DIVERGING)
    lines: list[Text] = []
    for row, texts in zip(positions, cells, strict=True):
        line = Text(no_wrap=True, overflow="crop")
        for t, s in zip(row, texts, strict=True):
            line.append(f" {s:>{cell}} ", _cell_style(colormap, float(t)))
        lines.append(line)
    low, high = number(lo), number(hi)
    steps = max(4, min(12, len(cells[0]) * (cell + 2) - len(low) - len(high) - 2))
    legend = Text(f"{low} ", no_wrap=True, overflow="crop")
    ends = _positions(np.array([lo, hi]), lo, hi, colormap is _DIVERGING)
    for t in np.linspace(ends[0], ends[1], steps):
        legend.append(_LEGEND_BLOCK, Style(color=Color.from_rgb(*_rgb(colormap, float(t)))))
    legend.append(f" {high}")
    return [*lines, legend]


def _positions(
    values: NDArray[np.float64], lo: float, hi: float, diverging: bool
) -> NDArray[np.float64]:
    """Where each value falls on its colormap, 0..1 (NaN stays NaN)."""
    if diverging:
        return 0.5 + values / (2 * max(-lo, hi))
    span = hi - lo
    return (values - lo) / span if span > 0 else np.full_like(values, 0.5)


def _cell_style(colormap: Sequence[tuple[int, int, int]], t: float) -> Style:
    if not np.isfinite(t):
        return Style(color="black", bgcolor=Color.from_rgb(128, 128, 128))
    r, g, b = _rgb(colormap, t)
    ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
    return Style(color=ink, bgcolor=Color.from_rgb(r, g, b))


def _rgb(colormap: Sequence[tuple[int, int, int]], t: float) -> tuple[int, int, int]:
    """The colour at ``t`` in 0..1, interpolated linearly between the anchors."""
    at = min(max(t, 0.0), 1.0) * (len(colormap) - 1)
    i = min(int(at), len(colormap) - 2)
    f = at - i
    r, g, b = (round(a + (z - a) * f) for a, z in zip(colormap[i], colormap[i + 1], strict=True))
    return r, g, b


def _area_weights(source: int, target: int) -> NDArray[np.float64]:
    """The target x source matrix that averages ``source`` cells into ``target`` ones."""
    edges = np.arange(target + 1) * (source / target)
    cells = np.arange(source)
    overlap = np.minimum(edges[1:, None], cells + 1) - np.maximum(edges[:-1, None], cells)
    weights: NDArray[np.float64] = np.clip(overlap, 0.0, None) * (target / source)
    return weights


def _as_hwc(array: NDArray[Any]) -> NDArray[Any]:
    """HxW as HxWx1; HxWxC unchanged."""
    values = np.asarray(array)
    if values.ndim == 2:
        return values[..., None]
    if values.ndim != 3:
        raise ConvcalcError(f"expected an HxW or HxWxC array, got shape {values.shape}")
    return values
