"""Signals and volumes drawn in the terminal, for ``convcalc apply --show`` at rank 1 and 3.

Presentation only: the functions build rich renderables and never print.

- **signal** (L or L x C): per channel a small bar plot, :data:`PLOT_ROWS` text rows
  tall, one column per value (repeated up to :data:`MAX_ZOOM` times when there is
  room; a long signal is averaged down to the width, and the title says how many values
  a column holds). Bars rise from the minimum in eighths of a cell (``▁▂▃▄▅▆▇█``); when
  the values straddle 0 a zero line is drawn instead, positive bars rising above it and
  negative ones hanging below it. The axis on the left names the maximum, the minimum,
  and 0 when it lies between them. It reads without colour.
- **volume** (DxHxW or DxHxWxC): per channel its depth slices side by side, each drawn
  as `convcalc.present.pictures` draws a 2-D map (a heatmap of values when at most
  HEATMAP_MAX x HEATMAP_MAX, else a picture), all slices of a channel on one colour
  scale; at most :data:`MAX_SLICES` slices (evenly spaced, first and last included)
  and :data:`MAX_CHANNELS` channels, with a note naming what is left out.

Every line fits in ``width`` columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from convcalc.calc.choices import Scale
from convcalc.io.scaling import to_uint8
from convcalc.present.numbers import number
from convcalc.present.pictures import HEATMAP_MAX, MAX_ROWS, heatmap, picture, resize

PLOT_ROWS = 4
"""A signal's plot is this many text rows tall (32 levels in eighths of a cell)."""
MAX_ZOOM = 4
"""A value of a short signal takes at most this many columns."""
MAX_CHANNELS = 8
"""At most this many channels of a signal or volume are drawn; a note counts the rest."""
MAX_SLICES = 8
"""At most this many depth slices of a volume are drawn."""

_BARS = " ▁▂▃▄▅▆▇█"
_HANGING = " ▔▔▀▀▀▀██"  # 0-8 eighths from the top of a cell, to the nearest block there is
_GAP = 2  # columns between slices


def show_signal(
    input: NDArray[Any],
    output: NDArray[Any],
    *,
    width: int,
    color_system: str | None = None,
    input_title: str = "input",
    output_title: str = "output",
) -> RenderableType:
    """A signal's input and output as bar plots, one under the other, per channel.

    Parameters
    ----------
    input, output : ndarray, L or L x C, any real dtype
    width : int
        Columns available; no line is longer.
    color_system : str or None
        Accepted as `convcalc.present.pictures.show` takes it; the plots use none.
    """
    return Group(
        *_signal_panel(_channels_last(input, 1), input_title, width),
        Text(""),
        *_signal_panel(_channels_last(output, 1), output_title, width),
    )


def show_volume(
    input: NDArray[Any],
    output: NDArray[Any],
    *,
    width: int,
    color_system: str | None,
    input_title: str = "input",
    output_title: str = "output",
) -> RenderableType:
    """A volume's input and output, one under the other, each as its depth slices.

    Parameters
    ----------
    input, output : ndarray, DxHxW or DxHxWxC, any real dtype
    width : int
        Columns available; no line is longer.
    color_system : str or None
        rich's ``console.color_system``, as `convcalc.present.pictures.picture` takes it.
    """
    return Group(
        _volume_panel(_channels_last(input, 3), input_title, width, color_system),
        Text(""),
        _volume_panel(_channels_last(output, 3), output_title, width, color_system),
    )


def signal_plot(values: NDArray[Any], width: int, rows: int = PLOT_ROWS) -> list[Text]:
    """One channel of a signal as ``rows`` lines of bars within ``width`` columns, and
    a zero line between them when the values straddle 0.

    Each line starts with the axis (a value label, then ``┤`` on a labelled row,
    ``┼`` on the zero line, or ``│``). Non-finite values are drawn ``?``.

    Examples
    --------
    >>> [line.plain for line in signal_plot(np.array([0.0, 1, 4, 1, 0]), 8, rows=2)]
    ['4 ┤  █  ', '0 ┤▁▅█▅▁']
    >>> [line.plain for line in signal_plot(np.array([2.0, 0, -2, -1]), 8, rows=2)]
    [' 2 ┤█   ', ' 0 ┼────', '-2 ┤  █▀']
    """
    return _plot(values, width, rows)[0]


def _plot(values: NDArray[Any], width: int, rows: int) -> tuple[list[Text], int]:
    """`signal_plot`'s lines and how many columns hold the values (fewer than the
    values when a long signal is averaged down to the width)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if lo < 0 < hi and rows > 1:
        return _signed_plot(v, width, rows, lo, hi)
    labels = {0: number(hi), rows - 1: number(lo)}
    margin = max(len(text) for text in labels.values())
    shown = _fit(v, max(width - margin - 2, 1))
    span = hi - lo
    levels = rows * 8
    lines = []
    for r in range(rows):
        line = Text(labels.get(r, "").rjust(margin) + (" ┤" if r in labels else " │"))
        base = (rows - 1 - r) * 8
        for value in shown:
            if not np.isfinite(value):
                line.append("?" if r == rows - 1 else " ")
                continue
            eighths = levels // 2 if span == 0 else 1 + round((value - lo) / span * (levels - 1))
            line.append(_BARS[min(max(eighths - base, 0), 8)])
        lines.append(line)
    return lines, len(shown)


def _signed_plot(
    v: NDArray[np.float64], width: int, rows: int, lo: float, hi: float
) -> tuple[list[Text], int]:
    """A signal whose values straddle 0: a zero line (``0 ┼───``), bars rising above it
    for positive values and hanging below it for negative ones, on one scale.

    The ``rows`` rows are shared in proportion to the maximum and the minimum (at least
    one each); when that rounding favours one side, the scale is the one both fit in
    and the other side keeps only the rows it reaches, so a small value never looks
    large. Hanging bars end in halves and eighths of a cell (``▀``, ``▔``), the
    top-aligned blocks there are; the labels give the values.
    """
    share = min(max(round(hi / (hi - lo) * rows), 1), rows - 1)
    per_unit = 8 * min(share / hi, (rows - share) / -lo)  # eighths of a cell per unit

    def eighths(value: float) -> int:
        return max(1, round(abs(value) * per_unit))

    up, down = (math.ceil(eighths(end) / 8) for end in (hi, lo))
    labels = {0: number(hi), up: "0", up + down: number(lo)}
    margin = max(len(text) for text in labels.values())
    shown = _fit(v, max(width - margin - 2, 1))
    lines = []
    for r in range(up + down + 1):
        tick = " ┼" if r == up else " ┤" if r in labels else " │"
        line = Text(labels.get(r, "").rjust(margin) + tick)
        for value in shown:
            if r == up:
                line.append("─" if np.isfinite(value) else "?")
            elif not np.isfinite(value) or value == 0 or (value > 0) != (r < up):
                line.append(" ")
            elif r < up:  # the row just above the line holds the first eighths
                line.append(_BARS[min(max(eighths(value) - (up - 1 - r) * 8, 0), 8)])
            else:
                line.append(_HANGING[min(max(eighths(value) - (r - up - 1) * 8, 0), 8)])
        lines.append(line)
    return lines, len(shown)


# -- panels --------------------------------------------------------------------------


def _signal_panel(signal: NDArray[Any], title: str, width: int) -> list[Text]:
    """A titled plot per channel of an L x C signal (at most MAX_CHANNELS)."""
    length, channels = signal.shape
    heading = Text(f"{title} {_shape(signal)}", overflow="fold")
    lines = [heading]
    columns = length
    for c in range(min(channels, MAX_CHANNELS)):
        if channels > 1:
            lines.append(Text(f"channel {c}"))
        plot, columns = _plot(signal[:, c], width, PLOT_ROWS)
        lines += plot
    if columns < length:
        heading.append(f", each column the mean of ~{length / columns:.3g} values")
    if channels > MAX_CHANNELS:
        lines.append(Text(f"… {channels - MAX_CHANNELS} more channels not shown", overflow="fold"))
    return lines


def _volume_panel(
    volume: NDArray[Any], title: str, width: int, color_system: str | None
) -> RenderableType:
    """A titled grid of depth slices per channel of a DxHxWxC volume."""
    depth, channels = volume.shape[0], volume.shape[-1]
    shown = chosen_slices(depth)
    heading = f"{title} {_shape(volume)}"
    if len(shown) < depth:
        heading += f"; {len(shown)} of {depth} slices drawn ({', '.join(map(str, shown))})"
    parts: list[RenderableType] = [Text(heading, overflow="fold")]
    for c in range(min(channels, MAX_CHANNELS)):
        grid, scale = _slices(volume[..., c], shown, width, color_system)
        label = ", ".join(([f"channel {c}"] if channels > 1 else []) + ([scale] if scale else []))
        if label:
            parts.append(Text(label, overflow="fold"))
        parts.append(grid)
    if channels > MAX_CHANNELS:
        parts.append(Text(f"… {channels - MAX_CHANNELS} more channels not shown", overflow="fold"))
    return Group(*parts)


def chosen_slices(depth: int, most: int = MAX_SLICES) -> list[int]:
    """The depth slices drawn: all up to ``most``, else ``most`` evenly spaced ones,
    the first and last included.

    Examples
    --------
    >>> chosen_slices(5)
    [0, 1, 2, 3, 4]
    >>> chosen_slices(20, most=4)
    [0, 6, 13, 19]
    """
    if depth <= most:
        return list(range(depth))
    return sorted({round(float(k)) for k in np.linspace(0, depth - 1, most)})


def _slices(
    channel: NDArray[Any], shown: Sequence[int], width: int, color_system: str | None
) -> tuple[RenderableType, str | None]:
    """The chosen DxHxW slices on one colour scale, as many side by side as fit, and
    the value mapping of pictures (None for heatmaps, whose legends say it).

    Pictures map the channel's minimum..maximum to black..white (``minmax``): a
    volume's values are seldom 0-255 pixels, and one mapping keeps slices comparable.
    """
    _, height, cols = channel.shape
    values = np.asarray(channel, dtype=np.float64)
    tiles: list[RenderableType] = []
    scale = None
    if height <= HEATMAP_MAX and cols <= HEATMAP_MAX:
        finite = values[np.isfinite(values)]
        limits = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        maps = [heatmap(values[d], f"slice {d}", limits) for d in shown]
        tile_width = max(_width(tile) for tile in maps)
        tiles = list(maps)
    else:
        scaled = to_uint8(values, Scale.MINMAX)  # one mapping for every slice
        count = len(shown)
        tile_width = max(12, (width - _GAP * (count - 1)) // count)
        tile_width = min(tile_width, cols * 4, width)
        tiles = [
            Group(
                Text(f"slice {d}"),
                picture(
                    scaled.array[d][..., None],
                    width=tile_width,
                    color_system=color_system,
                    max_rows=MAX_ROWS // 2,
                ),
            )
            for d in shown
        ]
        scale = f"{scaled.scale} {number(scaled.lo)}…{number(scaled.hi)}"
    tile_width = min(tile_width, width)
    per_row = max(1, min(len(tiles), (width + _GAP) // (tile_width + _GAP)))
    grid = Table.grid(padding=(0, _GAP, 1, 0), collapse_padding=False)
    for _ in range(per_row):
        grid.add_column(width=tile_width, no_wrap=True)
    for start in range(0, len(tiles), per_row):
        row = list(tiles[start : start + per_row])
        grid.add_row(*row, *[""] * (per_row - len(row)))
    return grid, scale


# -- helpers -------------------------------------------------------------------------


def _fit(values: NDArray[np.float64], columns: int) -> NDArray[np.float64]:
    """The values over at most ``columns`` columns: repeated (at most MAX_ZOOM times)
    when short, averaged by area when long."""
    length = values.size
    if length <= columns:
        return np.repeat(values, max(1, min(MAX_ZOOM, columns // length)))
    return resize(values[None, :, None], 1, columns)[0, :, 0]


def _channels_last(array: NDArray[Any], rank: int) -> NDArray[Any]:
    values = np.asarray(array)
    return values[..., None] if values.ndim == rank else values


def _shape(array: NDArray[Any]) -> str:
    """(*N) x C as text, without the channel count when it is 1."""
    shape = array.shape[:-1] if array.shape[-1] == 1 else array.shape
    return "x".join(map(str, shape))


def _width(group: RenderableType) -> int:
    """The widest line of a group of Text lines (a heatmap)."""
    lines = group.renderables if isinstance(group, Group) else [group]
    return max((line.cell_len for line in lines if isinstance(line, Text)), default=1)
