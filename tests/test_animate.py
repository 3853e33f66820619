"""convcalc.present.animate: frame counts, the cap, layout, the GIF, and what the frames show."""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcalc.calc.choices import PadMode, PoolKind
from convcalc.calc.geometry import PadRule
from convcalc.compute import ops
from convcalc.errors import ConvcalcError
from convcalc.present import animate
from convcalc.present.animate import AnimationRequest, AnimKind, frames, gif_bytes, plan

UFLDL = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0],
                  [0, 1, 1, 0, 0]])
CROSS = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])


def rgb(im: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(im.convert("RGB").getpixel((x, y)))  # type: ignore[arg-type]


def corner(request: AnimationRequest, cell: int, side: str, r: int, c: int) -> tuple[int, int]:
    """A pixel just inside the top-left corner of a cell, clear of grid lines and digits."""
    lay = animate._layout(plan(request), cell)
    x0, y0 = lay.left_xy if side == "left" else lay.right_xy
    return x0 + c * lay.px + 3, y0 + r * lay.px + 3


def dark_pixels(im: Image.Image, box: tuple[int, int, int, int]) -> int:
    gray: NDArray[Any] = np.asarray(im.convert("L").crop(box))
    return int((gray < 100).sum())


# -- frame counts and the cap --------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "count"),
    [
        (AnimationRequest(UFLDL, CROSS), 9 + 1),
        (AnimationRequest(UFLDL, CROSS, stride=(2, 2), padding=(1, 1)), 9 + 1),
        (AnimationRequest(UFLDL, CROSS, dilation=(2, 2)), 1 + 1),
        (AnimationRequest(UFLDL, (2, 2), kind=AnimKind.POOL_MAX), 4 + 1),
        (AnimationRequest(UFLDL, (3, 3), kind=AnimKind.POOL_AVG, stride=(1, 1),
                          padding=(1, 1)), 25 + 1),
        (AnimationRequest(np.array([[1, 2], [3, 4]]), np.ones((2, 2)),
                          kind=AnimKind.TRANSPOSED, stride=(2, 2)), 4 + 1),
    ],
)
def test_one_frame_per_position_and_a_final_one(request_: AnimationRequest, count: int) -> None:
    images, notes = frames(request_, cell=16)
    assert len(images) == count
    assert len({im.size for im in images}) == 1
    assert notes == ()


def test_big_outputs_are_sampled_with_the_last_position_kept_and_a_note() -> None:
    request = AnimationRequest(np.arange(40 * 40).reshape(40, 40), CROSS)
    p = plan(request, max_frames=50)
    indices = [s.index for s in p.steps]
    assert p.positions == 38 * 38
    assert len(indices) + 1 <= 50
    assert indices[-1] == 38 * 38 - 1 and indices[0] == 0
    assert len(set(np.diff(indices[:-1]))) == 1
    assert any("every 31st" in n and "at most 50" in n for n in p.notes)
    images, notes = frames(request, cell=4, max_frames=50)
    assert len(images) == len(indices) + 1
    assert any("thumbnail" in n for n in notes)


@pytest.mark.parametrize(("max_frames", "count"), [(10, 10), (9, 6), (3, 3)])
def test_the_cap_counts_the_final_frame(max_frames: int, count: int) -> None:
    p = plan(AnimationRequest(UFLDL, CROSS), max_frames=max_frames)
    assert len(p.steps) + 1 == count
    assert p.steps[-1].index == 8


def test_the_default_cap_is_400_frames() -> None:
    images, _ = frames(AnimationRequest(np.zeros((30, 30)), np.ones((3, 3))), cell=4)
    assert 28 * 28 + 1 > 400 >= len(images) > 300


def test_small_cells_give_thumbnails_without_numbers() -> None:
    request = AnimationRequest(UFLDL, CROSS)
    images, notes = frames(request, cell=8)
    assert rgb(images[-1], *corner(request, 8, "right", 1, 0)) == (0, 0, 0)  # 2, the minimum
    assert rgb(images[-1], *corner(request, 8, "right", 0, 0)) == animate.WHITE  # 4, the maximum
    assert rgb(images[-1], *corner(request, 8, "right", 0, 1)) == (128, 128, 128)  # 3
    assert any("thumbnails (8 px per cell" in n for n in notes)


def test_frames_grow_with_the_cell_size() -> None:
    small, _ = frames(AnimationRequest(UFLDL, CROSS), cell=16)
    big, _ = frames(AnimationRequest(UFLDL, CROSS), cell=32)
    assert big[0].width > small[0].width and big[0].height > small[0].height


# -- what the frames show ----------------------------------------------------------------


def test_captions_add_up_to_the_output_of_ops() -> None:
    request = AnimationRequest(UFLDL, SOBEL, stride=(2, 2), padding=(1, 1))
    p = plan(request)
    expected = ops.correlate(UFLDL, SOBEL, stride=(2, 2), padding=(1, 1))[..., 0]
    np.testing.assert_array_equal(p.right, expected)
    for step in p.steps:
        found = re.fullmatch(r"(out\[\d,\d\]) = (.*) = (-?\d+)", step.caption)
        assert found is not None
        lhs, terms, result = found.groups()
        products = [a * b for a, b in (map(float, re.findall(r"-?\d+", t)) for t in
                                       terms.split(" + "))]
        assert lhs == "out[{},{}]".format(*step.position)
        assert sum(products) == float(result) == expected[step.position]
    assert p.steps[0].caption == (
        "out[0,0] = 0·1 + 0·0 + 0·(-1) + 0·2 + 1·0 + 1·(-2) + 0·1 + 0·0 + 1·(-1) = -3")


def test_pooling_captions() -> None:
    x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    p = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_MAX))
    assert [s.caption for s in p.steps] == [
        "out[0,0] = max(1, 3, 2, 9) = 9", "out[0,1] = max(2, 1, 1, 1) = 2",
        "out[1,0] = max(1, 3, 5, 6) = 6", "out[1,1] = max(2, 3, 1, 2) = 3"]
    padded = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_MAX, padding=(1, 1)))
    assert padded.steps[0].caption == "out[0,0] = max(1) = 1"  # padding never wins
    avg = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_AVG, padding=(1, 1)))
    assert avg.steps[0].caption == "out[0,0] = (0 + 0 + 0 + 1)/4 = 0.25"
    assert avg.right[0, 0] == ops.pool(x, PoolKind.AVG, (2, 2), padding=(1, 1))[0, 0, 0]


def test_the_current_output_cell_is_highlighted_and_the_rest_fill_in() -> None:
    request = AnimationRequest(UFLDL, CROSS)
    images, _ = frames(request, cell=24)
    fourth = images[4]
    assert rgb(fourth, *corner(request, 24, "right", 1, 1)) == animate.HOT_FILL
    assert rgb(fourth, *corner(request, 24, "right", 0, 0)) == animate.WHITE
    assert rgb(fourth, *corner(request, 24, "right", 2, 2)) == animate.EMPTY
    assert rgb(images[-1], *corner(request, 24, "right", 2, 2)) == animate.WHITE


def test_numbers_are_written_in_filled_cells_only() -> None:
    request = AnimationRequest(UFLDL, CROSS)
    images, _ = frames(request, cell=24)
    x, y = corner(request, 24, "right", 0, 0)
    filled = dark_pixels(images[0], (x, y, x + 18, y + 18))
    x, y = corner(request, 24, "right", 2, 2)
    empty = dark_pixels(images[0], (x, y, x + 18, y + 18))
    assert filled > 0 and empty == 0


def test_dilation_highlights_the_taps_and_not_the_holes() -> None:
    request = AnimationRequest(np.arange(49).reshape(7, 7), CROSS, dilation=(2, 2))
    first = frames(request, cell=16)[0][0]
    for r, c in [(0, 0), (0, 2), (2, 4), (4, 4)]:
        assert rgb(first, *corner(request, 16, "left", r, c)) == animate.HOT_FILL
    for r, c in [(0, 1), (1, 1), (3, 2), (0, 5)]:
        assert rgb(first, *corner(request, 16, "left", r, c)) == animate.WHITE


def test_padding_cells_look_different() -> None:
    request = AnimationRequest(UFLDL, CROSS, padding=(2, 2), stride=(3, 3))
    first = frames(request, cell=16)[0][0]
    assert rgb(first, *corner(request, 16, "left", 4, 0)) == animate.PAD_FILL
    assert rgb(first, *corner(request, 16, "left", 4, 2)) == animate.WHITE
    assert animate.HATCH in {tuple(p) for p in np.asarray(first).reshape(-1, 3)}


def test_thumbnails_keep_the_highlight_visible() -> None:
    x = np.add.outer(np.arange(30), np.arange(30)).astype(float)
    request = AnimationRequest(x, (2, 2), kind=AnimKind.POOL_AVG)
    images, _ = frames(request, cell=8)
    lay = animate._layout(plan(request), 8)
    assert not lay.numbers and lay.px == 8
    tap = rgb(images[0], *corner(request, 8, "left", 0, 0))
    plain = rgb(images[0], *corner(request, 8, "left", 5, 5))
    assert tap[0] > tap[2] + 40 and plain[0] == plain[1] == plain[2]


def test_transposed_accumulates_to_the_output_of_ops() -> None:
    x, w = np.array([[1, 2, 0], [3, -1, 2]]), np.array([[1, 2], [0, -1]])
    request = AnimationRequest(x, w, kind=AnimKind.TRANSPOSED, stride=(2, 2), padding=(1, 1),
                               dilation=(2, 1), output_padding=(1, 0))
    p = plan(request)
    expected = ops.conv_transpose(x, w, stride=(2, 2), padding=(1, 1), dilation=(2, 1),
                                  output_padding=(1, 0))[..., 0]
    *_, (last, accumulated, touched) = animate._states(p)
    top, left, h, wd = p.right_box
    np.testing.assert_array_equal(accumulated[top : top + h, left : left + wd], expected)
    np.testing.assert_array_equal(p.right[top : top + h, left : left + wd], expected)
    assert last.index == x.size - 1 and touched.any()
    assert p.steps[1].target == ((0, 2), (0, 3), (2, 2), (2, 3))
    assert p.steps[1].caption == "in[0,1] = 2: out rows -1 to 1 step 2, cols 1 to 2 += 2·kernel"
    assert "cropped" in p.final_caption


def test_colour_input_animates_the_channel_mean() -> None:
    x = np.stack([UFLDL, UFLDL * 3, UFLDL * 2], axis=2)
    p = plan(AnimationRequest(x, CROSS))
    np.testing.assert_array_equal(p.right, 2 * ops.correlate(UFLDL, CROSS)[..., 0])
    assert any("3 channels" in n for n in p.notes)


def test_same_padding_and_reflect_mode_are_in_the_title() -> None:
    p = plan(AnimationRequest(UFLDL, CROSS, padding=(PadRule.SAME, PadRule.SAME),
                              pad_mode=PadMode.REFLECT))
    assert p.title == "conv 3x3 · stride 1 · reflect padding same 1"
    assert p.left[0, 0] == UFLDL[1, 1]
    pooled = plan(AnimationRequest(UFLDL, (2, 2), kind=AnimKind.POOL_AVG, padding=(1, 1),
                                   pad_mode=PadMode.REFLECT))
    assert pooled.title == "avg pool 2x2 · stride 2 · padding 1"
    assert any("reflect does not apply to pooling" in n for n in pooled.notes)


# -- the GIF -----------------------------------------------------------------------------


def test_gif_decodes_with_every_frame_and_the_last_held_longer() -> None:
    request = AnimationRequest(UFLDL, CROSS, stride=(2, 2))
    images, _ = frames(request, cell=20)
    data = gif_bytes(images, duration_ms=100)
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(images) == 5
        assert gif.size == images[0].size
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            if i == 0:
                x, y = corner(request, 20, "left", 0, 0)
                assert max(abs(a - b) for a, b in zip(rgb(gif, x, y), animate.HOT_FILL,
                                                      strict=True)) <= 8
        assert durations == [100] * 4 + [300]
        assert gif.info.get("loop") == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: frames(AnimationRequest(UFLDL, CROSS), cell=3), "cell size 3 .*4 to 128"),
        (lambda: frames(AnimationRequest(UFLDL, CROSS), cell=129), "cell size 129"),
        (lambda: gif_bytes([Image.new("RGB", (4, 4))], duration_ms=10), "duration 10 .*20 to"),
        (lambda: gif_bytes([]), "at least one frame"),
        (lambda: plan(AnimationRequest(UFLDL, np.ones((7, 7)))), "kernel 7"),
        (lambda: plan(AnimationRequest(UFLDL, np.ones((3, 3, 2)))), "KHxKW"),
        (lambda: plan(AnimationRequest(UFLDL, CROSS), max_frames=2), "max frames 2"),
        (lambda: plan(AnimationRequest(np.zeros((300, 4)), CROSS)), "at most 256"),
        (lambda: plan(AnimationRequest(UFLDL, np.ones((2, 2, 2)), kind=AnimKind.POOL_MAX)),
         "window"),
        (lambda: plan(AnimationRequest(UFLDL, CROSS, kind="blur")),  # type: ignore[arg-type]
         "kind 'blur' .*conv, pool-max"),
    ],
)
def test_bad_values_raise_convcalc_errors(call: Any, message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        call()
