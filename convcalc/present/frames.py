"""The plan of `convcalc animate`: which cells each frame highlights, what it says.

Convolution and pooling get one step per output position, in raster order: the
window's taps in the padded input (with dilation only the tapped cells, never
the holes) and the output cell being written, with a caption such as
``out[1,2] = 0·1 + 1·0 + 1·1 = 1``; the output fills in row by row. A transposed
convolution gets one step per input position: the input cell and the cells of
the full output (before the padding is cropped) its scaled kernel is added to,
the output accumulating. A layer of several channels, filters or a bias is laid out
slice by slice and stepped output channel by output channel (`volume_frames`,
`transposed_frames`). More positions than ``max_frames`` allows are sampled, every
n-th and the last, with a note.

Numbers come from `convcalc.compute.ops` and sizes from `convcalc.calc.geometry`,
so they agree with `apply` and `shape`. Nothing here draws: `convcalc.present.gif`
turns a `Plan` into pictures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import AnimKind
from convcalc.errors import ConvcalcError
from convcalc.present.frame_parts import (
    DEFAULT_REGION,
    LARGE_INPUT,
    MAX_FRAMES_RANGE,
    MAX_GRID,
    AnimationRequest,
    Array,
    Box,
    Cell,
    Plan,
    Step,
    box_dims,
    check_range,
    gap_columns,
    mosaic,
    plane,
    real_cells,
    slice_left,
    value_text,
)
from convcalc.present.plane_frames import plane_step, window_plan
from convcalc.present.transposed_frames import (
    contribution,
    transposed_plan,
    transposed_volume_plan,
    transposed_volume_step,
)
from convcalc.present.volume_frames import is_volume, volume_plan, volume_step

__all__ = [
    "DEFAULT_REGION",
    "LARGE_INPUT",
    "MAX_FRAMES_RANGE",
    "MAX_GRID",
    "AnimationRequest",
    "Array",
    "Cell",
    "Plan",
    "Step",
    "box_dims",
    "check_range",
    "gap_columns",
    "mosaic",
    "plan",
    "real_cells",
    "slice_left",
    "states",
    "value_text",
]


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
    if request.groups != 1 and request.kind != AnimKind.CONV:
        raise ConvcalcError(
            f"groups {request.groups} is a grouped convolution; valid: groups 1 with "
            f"{request.kind} (apply runs grouped convolutions, not grouped pooling or "
            "transposed ones)"
        )
    several = is_volume(request, image)
    if request.kind == AnimKind.TRANSPOSED:
        if several:
            p = transposed_volume_plan(request, image, notes)
        else:
            p = transposed_plan(request, plane(image), notes)
    elif several:
        p = volume_plan(request, AnimKind(request.kind), image, notes)
    else:
        p = window_plan(request, AnimKind(request.kind), plane(image), notes)
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
    step = plane_step
    if p.sees:
        step = transposed_volume_step if p.kind == AnimKind.TRANSPOSED else volume_step
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
        scaled kernels of the input cells up to ``step.index`` (raster order;
        with several output channels, channel by channel, each starting at its
        bias), one array updated in place from step to step.
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
    (dh, dw), (h, w) = p.dilation, p.left_box[2:]
    width = (p.right.shape[1] - p.right_slices + 1) // p.right_slices
    for step in p.steps:
        for k in range(done, step.index + 1):
            o, _, (top, left), added = contribution(p, k)
            if p.bias and k % (h * w) == 0:  # an output channel starts at its bias
                acc[:, slice_left(width, o) : slice_left(width, o) + width] += p.bias[o]
            kh, kw = added.shape
            where = np.s_[top : top + (kh - 1) * dh + 1 : dh, left : left + (kw - 1) * dw + 1 : dw]
            acc[where] += added
            touched[where] = True
        done = step.index + 1
        yield step, acc, touched


# -- helpers -----------------------------------------------------------------------------


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


def _sample(n: int, max_frames: int) -> list[int]:
    """Positions shown: all, or every k-th and the last, leaving room for the final frame."""
    if n + 1 <= max_frames:
        return list(range(n))
    chosen = list(range(0, n, -(-n // (max_frames - 2))))
    return chosen if chosen[-1] == n - 1 else [*chosen, n - 1]


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, … 11th, 12th, … 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
