"""What an animation plan is made of: the request, the steps and the plan (records),
and the small rules every plan uses (grids of slices side by side, captions' numbers,
titles, kernels and windows read from the request).

Apart from the planning (`convcalc.present.frames`, `plane_frames`, `volume_frames`) so
that each of those modules can use them. Nothing here draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import AnimKind, ChannelMode, PadMode, PadRule
from convcalc.calc.geometry import Axis, Padding
from convcalc.compute import windows
from convcalc.compute.methods import working_array
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
    ``transposed`` (also KHxKWxC, or a tuple of such arrays, one per filter);
    for pooling it is the window size ``(KH, KW)`` (or an array whose shape
    gives it). Several channels or filters, or a ``bias`` (one value per
    filter), animate the layer as `convcalc apply` runs it: per output channel
    and position (transposed: input position), with ``channels`` giving a 2-D
    kernel's meaning on several channels (`convcalc.compute.pipeline.kernel_bank`).
    ``groups`` > 1 is a grouped convolution (PyTorch's rule, as `convcalc apply
    --groups`): filter f, C/groups deep, sees only its group's input channels.
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
    groups: int = 1


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
    output before cropping, its real part as `convcalc apply` computes it).
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
            return self.left_box[2] * self.left_box[3] * self.right_slices
        return self.right_box[2] * self.right_box[3] * self.right_slices


def slice_left(width: int, k: int) -> int:
    """The first column of slice ``k`` in a row of slices ``width`` columns wide."""
    return k * (width + 1)


def gap_columns(columns: int, slices: int) -> NDArray[np.bool_]:
    """Which of a grid's ``columns`` are the gaps between its ``slices`` slices."""
    width = (columns - slices + 1) // slices
    gaps: NDArray[np.bool_] = np.arange(columns) % (width + 1) == width
    return gaps


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


def plane(image: Array) -> Array:
    """The input as one HxW float64 plane (an input of several channels is animated
    slice by slice, see `convcalc.present.volume_frames`)."""
    x = np.asarray(working_array(image), dtype=np.float64)
    x = x[:, :, 0] if x.ndim == 3 and x.shape[2] == 1 else x
    if x.ndim != 2 or x.size == 0:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, np.shape(image)))} "
            "is not valid; valid: HxW or HxWxC"
        )
    return x


def kernel_list(kernel: KernelLike) -> tuple[Array, ...]:
    """A convolution's filters: one array, or a tuple of arrays (one per filter)."""
    if isinstance(kernel, tuple):
        if not all(isinstance(k, np.ndarray) for k in kernel):
            raise ConvcalcError(
                f"a kernel of {kernel} is not valid for a convolution; valid: KHxKW(xC) weights"
            )
        return tuple(np.asarray(k) for k in kernel)
    return (np.asarray(kernel),)


def sliding_axes(
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


def window_of(kernel: KernelLike) -> Array:
    """A pooling window as a KHxKW array of ones, from ``(KH, KW)`` or an array's shape."""
    shape = kernel if isinstance(kernel, tuple) else np.shape(kernel)
    if not all(isinstance(n, int | np.integer) for n in shape):
        raise ConvcalcError("a pooling window of several kernels is not valid; valid: (KH, KW)")
    if len(shape) != 2:
        raise ConvcalcError(f"a pooling window of {shape} is not valid; valid: (KH, KW)")
    return np.ones((int(shape[0]), int(shape[1])))


def weights_of(kernel: KernelLike) -> Array:
    """A convolution's kernel as KHxKW float64 weights."""
    w = np.asarray(working_array(kernel), dtype=np.float64)
    if w.ndim != 2 or w.size == 0:
        raise ConvcalcError(
            f"a kernel of shape {'x'.join(map(str, w.shape))} is not valid "
            "for an animation; valid: KHxKW weights (one channel)"
        )
    return w


def note_ignored(request: AnimationRequest, what: str, notes: list[str]) -> None:
    """Note a pad mode the layer does not use."""
    if request.pad_mode != PadMode.ZERO:
        notes.append(f"pad mode {request.pad_mode} does not apply to {what}: ignored")


def title_text(
    name: str, size: Cell, stride: Cell, request: AnimationRequest, axes: Sequence[Axis]
) -> str:
    """``conv 3x3 · stride 1 · reflect padding same 1 · dilation 2``."""
    parts = [f"{name} {size[0]}x{size[1]}", f"stride {pair_text(stride)}"]
    (top, bottom), (left, right) = pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if top or bottom or left or right:
        rules = sorted({f"{p} " for p in request.padding if isinstance(p, PadRule)})
        conv = request.kind == AnimKind.CONV and request.pad_mode != PadMode.ZERO
        mode = f"{request.pad_mode} " if conv else ""
        same = top == bottom == left == right
        counts = str(top) if same else "({},{})x({},{})".format(*pads[0], *pads[1])
        parts.append(f"{mode}padding {''.join(rules)}{counts}")
    if request.dilation != (1, 1):
        parts.append(f"dilation {pair_text(request.dilation)}")
    return " · ".join(parts)


def pair_text(pair: Cell) -> str:
    """One number when both axes agree, else ``a,b``."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


def span_text(start: int, f: int, d: int) -> str:
    """The output rows (or columns) a scaled kernel covers: ``-1 to 1 step 2``."""
    return f"{start} to {start + (f - 1) * d}" + (f" step {d}" if d > 1 and f > 1 else "")
