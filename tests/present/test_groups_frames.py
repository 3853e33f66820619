"""Animating a grouped convolution: each filter reads its group's channels, the others fade."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import AnimKind
from convcalc.errors import ConvcalcError
from convcalc.present import gif
from convcalc.present.frames import AnimationRequest, plan

X = np.arange(4 * 4 * 4).reshape(4, 4, 4) % 3
KERNELS = tuple(np.full((2, 2, 2), v, dtype=float) for v in (1.0, -1.0, 2.0, 0.5))
GROUPED = AnimationRequest(X, KERNELS, bias=(1.0, 0.0, 0.0, -1.0), groups=2)


def brute(f: int, r: int, c: int) -> float:
    """Output (r, c) of filter f: its group's two channels, the 2x2 window, the bias."""
    first = 2 * (f // 2)
    window = X[r : r + 2, c : c + 2, first : first + 2]
    return float(np.sum(window * KERNELS[f])) + (1.0, 0.0, 0.0, -1.0)[f]


def test_each_filter_sees_its_groups_channels_and_captions_give_the_sum() -> None:
    p = plan(GROUPED)
    assert p.sees == ((0, 1), (0, 1), (2, 3), (2, 3))
    assert p.names[3] == "filter 3 (2x2x2, bias -1) sees channels 2-3 (group 1)"
    assert p.title.endswith("· 4 output channels · 2 groups")
    assert len(p.steps) == 3 * 3 * 4
    for step in p.steps:
        (r, c), f = step.position, step.panel
        head, *lines = step.caption.split("\n")
        assert head.startswith(f"out[{r},{c},{f}] ({p.names[f]}) = ")
        assert float(head.rsplit(" = ", 1)[1]) == brute(f, r, c)
        assert [line.split(":")[0].strip() for line in lines] == [f"channel {k}" for k in p.sees[f]]
        width = 4 + 1  # an input slice and the gap after it
        assert {col // width for _, col in step.source} == set(p.sees[f])


def brightness(image: Any, request: AnimationRequest, cell: int, slice_: int) -> float:
    """The mean grey level of input channel ``slice_``'s slice, its bottom-right cell
    (never a tap in the frames compared) left out."""
    lay = gif._layout(plan(request), cell)
    x, y = lay.left_xy[0] + slice_ * 5 * lay.px, lay.left_xy[1]
    grey = np.asarray(image.convert("L").crop((x, y, x + 4 * lay.px, y + 3 * lay.px)))
    return float(grey.mean())


@pytest.mark.parametrize("cell", [32, 6])  # numbers in the cells, and thumbnails
def test_the_channels_a_filter_does_not_see_are_faded(cell: int) -> None:
    images, _ = gif.frames(GROUPED, cell=cell)
    first, later, whole = images[0], images[3 * 3 * 2], images[-1]  # filters 0, 2; the end
    for k in (0, 1, 2, 3):
        plain = 255 - brightness(whole, GROUPED, cell, k)  # how dark, unfaded
        group_0 = 255 - brightness(first, GROUPED, cell, k)
        group_1 = 255 - brightness(later, GROUPED, cell, k)
        faded, seen = (group_1, group_0) if k < 2 else (group_0, group_1)
        assert faded < 0.5 * plain  # towards white (by gif.FADE)
        assert seen > 0.75 * plain  # as drawn, but where the window's taps are lit amber


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (AnimationRequest(X, KERNELS[:3], groups=2), "g=2 needs a filter count divisible by 2"),
        (AnimationRequest(X, KERNELS, groups=3), "g=3 does not divide the input's 4 channels"),
        (
            AnimationRequest(X, (np.ones((2, 2)),) * 2, groups=2),
            "a kernel of depth 1 does not fit g=2 on 4 channels",
        ),
        (
            AnimationRequest(X, KERNELS, AnimKind.TRANSPOSED, groups=2),
            "groups 2 is a grouped convolution; valid: groups 1 with transposed",
        ),
        (AnimationRequest(X, (2, 2), AnimKind.POOL_MAX, groups=2), "valid: groups 1 with"),
    ],
)
def test_what_apply_refuses_is_refused(request_: AnimationRequest, message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        plan(request_)


def test_tiny_cells_box_the_taps_in_each_slice_not_across_the_gap() -> None:
    x = np.arange(40 * 40 * 4).reshape(40, 40, 4) % 7
    request = AnimationRequest(x, KERNELS[:2], groups=2)
    lay = gif._layout(plan(request), 8)
    assert lay.px < 6  # thumbnails without cell borders: the taps get a box
    images, _ = gif.frames(request, cell=8, max_frames=3)
    frame = np.asarray(images[1].convert("RGB"))  # the last position: taps (37-38, 37-38)
    x0, y0 = lay.left_xy
    hot = np.all(frame[y0 : y0 + 40 * lay.px] == gif.HOT_EDGE, axis=2)

    def boxed(column: int) -> bool:  # grid column (slice k starts at column 41·k)
        return bool(hot[:, x0 + column * lay.px + lay.px // 2].any())

    assert boxed(82 + 38) and boxed(123 + 38)  # the taps in channels 2 and 3
    assert not boxed(82 + 20) and not boxed(123 + 20)  # one box per slice: none between
    assert not boxed(38) and not boxed(41 + 38)  # channels 0-1 are not read
