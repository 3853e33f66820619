"""convcalc.present.gif: frame counts, layout, what the pictures show, the GIF."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcalc.calc.choices import AnimKind
from convcalc.errors import ConvcalcError
from convcalc.present import gif
from convcalc.present.frames import AnimationRequest, plan
from convcalc.present.gif import frames, gif_bytes

UFLDL = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)
CROSS = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])


def rgb(im: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(im.convert("RGB").getpixel((x, y)))  # type: ignore[arg-type]


def corner(request: AnimationRequest, cell: int, side: str, r: int, c: int) -> tuple[int, int]:
    """A pixel just inside the top-left corner of a cell, clear of grid lines and digits."""
    lay = gif._layout(plan(request), cell)
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
        (
            AnimationRequest(UFLDL, (3, 3), kind=AnimKind.POOL_AVG, stride=(1, 1), padding=(1, 1)),
            25 + 1,
        ),
        (
            AnimationRequest(
                np.array([[1, 2], [3, 4]]), np.ones((2, 2)), kind=AnimKind.TRANSPOSED, stride=(2, 2)
            ),
            4 + 1,
        ),
    ],
)
def test_one_frame_per_position_and_a_final_one(request_: AnimationRequest, count: int) -> None:
    images, notes = frames(request_, cell=16)
    assert len(images) == count
    assert len({im.size for im in images}) == 1
    assert notes == ()


def test_big_outputs_draw_the_sampled_positions_as_thumbnails() -> None:
    request = AnimationRequest(np.arange(40 * 40).reshape(40, 40), CROSS)
    indices = [s.index for s in plan(request, max_frames=50).steps]
    images, notes = frames(request, cell=4, max_frames=50)
    assert len(images) == len(indices) + 1
    assert any("thumbnail" in n for n in notes)


def test_the_default_cap_is_400_frames() -> None:
    images, _ = frames(AnimationRequest(np.zeros((30, 30)), np.ones((3, 3))), cell=4)
    assert 28 * 28 + 1 > 400 >= len(images) > 300


def test_small_cells_give_thumbnails_without_numbers() -> None:
    request = AnimationRequest(UFLDL, CROSS)
    images, notes = frames(request, cell=8)
    assert rgb(images[-1], *corner(request, 8, "right", 1, 0)) == (0, 0, 0)  # 2, the minimum
    assert rgb(images[-1], *corner(request, 8, "right", 0, 0)) == gif.WHITE  # 4, the maximum
    assert rgb(images[-1], *corner(request, 8, "right", 0, 1)) == (128, 128, 128)  # 3
    assert any("thumbnails (8 px per cell" in n for n in notes)


def test_frames_grow_with_the_cell_size() -> None:
    small, _ = frames(AnimationRequest(UFLDL, CROSS), cell=16)
    big, _ = frames(AnimationRequest(UFLDL, CROSS), cell=32)
    assert big[0].width > small[0].width and big[0].height > small[0].height


# -- what the frames show ----------------------------------------------------------------


def test_the_current_output_cell_is_highlighted_and_the_rest_fill_in() -> None:
    request = AnimationRequest(UFLDL, CROSS)
    images, _ = frames(request, cell=24)
    fourth = images[4]
    assert rgb(fourth, *corner(request, 24, "right", 1, 1)) == gif.HOT_FILL
    assert rgb(fourth, *corner(request, 24, "right", 0, 0)) == gif.WHITE
    assert rgb(fourth, *corner(request, 24, "right", 2, 2)) == gif.EMPTY
    assert rgb(images[-1], *corner(request, 24, "right", 2, 2)) == gif.WHITE


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
        assert rgb(first, *corner(request, 16, "left", r, c)) == gif.HOT_FILL
    for r, c in [(0, 1), (1, 1), (3, 2), (0, 5)]:
        assert rgb(first, *corner(request, 16, "left", r, c)) == gif.WHITE


def test_padding_cells_look_different() -> None:
    request = AnimationRequest(UFLDL, CROSS, padding=(2, 2), stride=(3, 3))
    first = frames(request, cell=16)[0][0]
    assert rgb(first, *corner(request, 16, "left", 4, 0)) == gif.PAD_FILL
    assert rgb(first, *corner(request, 16, "left", 4, 2)) == gif.WHITE
    assert gif.HATCH in {tuple(p) for p in np.asarray(first).reshape(-1, 3)}


def test_thumbnails_keep_the_highlight_visible() -> None:
    x = np.add.outer(np.arange(30), np.arange(30)).astype(float)
    request = AnimationRequest(x, (2, 2), kind=AnimKind.POOL_AVG)
    images, _ = frames(request, cell=8)
    lay = gif._layout(plan(request), 8)
    assert not lay.numbers and lay.px == 8
    tap = rgb(images[0], *corner(request, 8, "left", 0, 0))
    plain = rgb(images[0], *corner(request, 8, "left", 5, 5))
    assert tap[0] > tap[2] + 40 and plain[0] == plain[1] == plain[2]


# -- the GIF -----------------------------------------------------------------------------


def test_gif_decodes_with_every_frame_and_the_last_held_longer() -> None:
    request = AnimationRequest(UFLDL, CROSS, stride=(2, 2))
    images, _ = frames(request, cell=20)
    data = gif_bytes(images, duration_ms=100)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "GIF" and decoded.n_frames == len(images) == 5
        assert decoded.size == images[0].size
        durations = []
        for i in range(decoded.n_frames):
            decoded.seek(i)
            durations.append(decoded.info["duration"])
            if i == 0:
                x, y = corner(request, 20, "left", 0, 0)
                assert (
                    max(abs(a - b) for a, b in zip(rgb(decoded, x, y), gif.HOT_FILL, strict=True))
                    <= 8
                )
        assert durations == [100] * 4 + [300]
        assert decoded.info.get("loop") == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: frames(AnimationRequest(UFLDL, CROSS), cell=3), "cell size 3 .*4 to 128"),
        (lambda: frames(AnimationRequest(UFLDL, CROSS), cell=129), "cell size 129"),
        (lambda: gif_bytes([Image.new("RGB", (4, 4))], duration_ms=10), "duration 10 .*20 to"),
        (lambda: gif_bytes([]), "at least one frame"),
    ],
)
def test_bad_values_raise_convcalc_errors(call: Any, message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        call()


def test_a_layer_of_several_channels_and_filters_draws_the_filter_between() -> None:
    x = np.arange(5 * 5 * 3).reshape(5, 5, 3) % 4
    kernels = (np.ones((3, 3, 3)), -np.ones((3, 3, 3)))
    request = AnimationRequest(x, kernels, stride=(2, 2), padding=(1, 1), bias=(1.0, 0.0))
    images, _ = gif.frames(request, cell=20)
    assert len(images) == 2 * 3 * 3 + 1
    assert len({im.size for im in images}) == 1
    lay = gif._layout(plan(request), 20)
    assert len(lay.middle) == 2 and lay.middle[0].shape == (3, 11)
    assert lay.left_xy[0] < lay.middle_xy[0] < lay.right_xy[0]


def test_a_transposed_colour_layer_draws_its_filter_and_scatters_into_its_slice() -> None:
    x = np.arange(3 * 3 * 2).reshape(3, 3, 2) % 3
    kernels = (np.ones((2, 2, 2)), -np.ones((2, 2, 2)))
    request = AnimationRequest(x, kernels, kind=AnimKind.TRANSPOSED, stride=(2, 2), bias=(1.0, 0.0))
    images, _ = gif.frames(request, cell=20)
    assert len(images) == 3 * 3 * 2 + 1
    lay = gif._layout(plan(request), 20)
    assert len(lay.middle) == 2 and lay.middle[0].shape == (2, 5)
    assert lay.left_xy[0] < lay.middle_xy[0] < lay.right_xy[0]
    assert gif._labels(plan(request)) == ("input 3x3x2 (channels side by side)", "output 6x6x2")
    tenth = images[10]  # output channel 1 (slice from column 7), input cell (0, 1)
    for r, c in [(0, 9), (0, 10), (1, 9), (1, 10)]:
        assert rgb(tenth, *corner(request, 20, "right", r, c)) == gif.HOT_FILL
    assert rgb(tenth, *corner(request, 20, "right", 0, 2)) != gif.HOT_FILL
    for r, c in [(0, 1), (0, 5)]:  # the input cell in both channel slices
        assert rgb(tenth, *corner(request, 20, "left", r, c)) == gif.HOT_FILL
    padded = AnimationRequest(x, kernels, kind=AnimKind.TRANSPOSED, stride=(2, 2), padding=(1, 1))
    assert gif._labels(plan(padded))[1] == "output 4x4x2, cropped from 6x6"
