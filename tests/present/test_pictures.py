"""Tests for convcalc.present.pictures: pictures, heatmaps and grids that fit the terminal width."""

from __future__ import annotations

import doctest
import io
from typing import Any, Literal

import numpy as np
import pytest
from numpy.typing import NDArray
from rich.console import Console, RenderableType
from rich.segment import Segment

from convcalc.present import pictures as show_module
from convcalc.present.pictures import RAMP, fit_size, heatmap, picture, resize, show

RNG = np.random.default_rng(3)
RED, BLUE = (255, 0, 0), (0, 0, 255)


ColorSystem = Literal["standard", "256", "truecolor", "windows"] | None


def render(renderable: RenderableType, width: int, color_system: ColorSystem) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=color_system)
    console.print(renderable)
    return console.export_text()


def segments(renderable: RenderableType, width: int = 80) -> list[list[Segment]]:
    """The styled segments of each rendered line (truecolor)."""
    console = Console(width=width, file=io.StringIO(), color_system="truecolor")
    return list(console.render_lines(renderable, pad=False))


def gradient(height: int, width: int) -> NDArray[np.uint8]:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 90)], axis=2
    ).astype(np.uint8)


PAIRS: dict[str, tuple[NDArray[Any], NDArray[Any]]] = {
    "colour pictures": (gradient(200, 256), (gradient(198, 254) - 100.0) * 3),
    "gray to grid": (gradient(64, 64)[..., :1], RNG.normal(size=(62, 62, 10))),
    "heatmaps": (RNG.integers(-9, 10, size=(5, 5, 1)), RNG.normal(size=(3, 3, 1))),
    "heatmap grids": (RNG.integers(-300, 300, size=(5, 5, 3)), RNG.integers(0, 50, size=(3, 3, 4))),
    "wide heatmap": (RNG.integers(-9999, 9999, size=(16, 16, 1)), gradient(30, 30)),
    "tall and wide": (gradient(1000, 30), gradient(30, 1000)),
    "many channels": (gradient(20, 20), RNG.normal(size=(18, 18, 100))),
}


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("color_system", [None, "truecolor", "256"])
@pytest.mark.parametrize("width", [40, 80, 120])
def test_no_line_is_wider_than_the_width(name: str, color_system: ColorSystem, width: int) -> None:
    before, after = PAIRS[name]
    text = render(show(before, after, width=width, color_system=color_system), width, color_system)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "input" in text and "output" in text


def test_the_width_given_rules_even_on_a_wider_console() -> None:
    text = render(
        show(gradient(100, 300), gradient(100, 300), width=50, color_system=None), 200, None
    )
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 50


def test_half_blocks_show_the_upper_pixel_in_front_and_the_lower_behind() -> None:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[0::2, :2] = RED  # left half: red above blue
    image[1::2, :2] = BLUE
    image[0::2, 2:] = BLUE  # right half: blue above red
    image[1::2, 2:] = RED
    lines = segments(picture(image, width=4, color_system="truecolor"))
    assert len(lines) == 2
    for line in lines:
        cells = [(seg.text, seg.style) for seg in line if seg.text]
        assert [text for text, _ in cells] == ["▀"] * 4
        colours = [
            (s.color.get_truecolor(), s.bgcolor.get_truecolor())
            for _, s in cells
            if s is not None and s.color and s.bgcolor
        ]
        assert [(tuple(fg), tuple(bg)) for fg, bg in colours] == [
            (RED, BLUE),
            (RED, BLUE),
            (BLUE, RED),
            (BLUE, RED),
        ]


def test_an_odd_last_pixel_row_has_no_background() -> None:
    image = np.full((3, 2, 1), 200, dtype=np.uint8)
    lines = segments(picture(image, width=2, color_system="truecolor"))
    last = [seg.style for seg in lines[-1] if seg.text]
    assert all(s is not None and s.bgcolor is None and s.color is not None for s in last)


def test_the_ramp_maps_black_to_its_first_and_white_to_its_last_character() -> None:
    image = np.zeros((2, 3, 1), dtype=np.uint8)
    image[:, 1] = 128
    image[:, 2] = 255
    text = picture(image, width=3, color_system=None).plain
    assert text == f"{RAMP[0]}{RAMP[5]}{RAMP[-1]}"
    assert (RAMP[0], RAMP[-1]) == (" ", "@")


@pytest.mark.parametrize("color_system", [None, "standard", "windows"])
def test_without_usable_colour_the_ramp_draws_the_picture(color_system: ColorSystem) -> None:
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:, 2:] = 255
    text = render(picture(image, width=4, color_system=color_system), 20, color_system)
    assert text.splitlines() == ["  @@", "  @@"]
    assert "▀" not in text


def test_a_colour_image_goes_to_the_ramp_by_luma() -> None:
    image = np.array([[RED, (0, 255, 0), BLUE]], dtype=np.uint8).repeat(2, axis=0)
    index = [RAMP.index(ch) for ch in picture(image, width=3, color_system=None).plain]
    assert index == [round(v * 9) for v in (0.299, 0.587, 0.114)]


def test_a_heatmap_shows_the_values_and_a_legend() -> None:
    matrix = np.array([[1.0, -2.0, 3.0], [4.0, 1.5, -6.0]])
    text = render(heatmap(matrix, "output 2x3"), 80, None)
    lines = text.splitlines()
    assert lines[0] == "output 2x3"
    assert lines[1].split() == ["1", "-2", "3"]
    assert lines[2].split() == ["4", "1.5", "-6"]
    assert ".0" not in text
    legend = lines[3].split()
    assert (legend[0], legend[-1]) == ("-6", "4")
    assert set(legend[1]) == {"█"}


def cell_background(renderable: RenderableType, value: str) -> tuple[int, int, int]:
    for line in segments(renderable):
        for seg in line:
            if seg.text.strip() == value and seg.style and seg.style.bgcolor:
                triplet = seg.style.bgcolor.triplet
                assert triplet is not None
                return (triplet.red, triplet.green, triplet.blue)
    raise AssertionError(f"no cell {value!r}")


def test_a_heatmap_with_both_signs_is_diverging_around_zero() -> None:
    matrix = np.array([[-4, 0], [2, 4]])
    low, zero, high = (cell_background(heatmap(matrix, "m"), v) for v in ("-4", "0", "4"))
    assert low[2] > low[0] and high[0] > high[2]  # blue below, red above
    assert zero == (221, 221, 221)


def test_a_heatmap_of_one_sign_is_sequential() -> None:
    matrix = np.array([[0, 5], [10, 10]])
    assert cell_background(heatmap(matrix, "m"), "0") == (68, 1, 84)
    assert cell_background(heatmap(matrix, "m"), "10") == (253, 231, 37)


def test_small_arrays_are_heatmaps_and_large_ones_pictures() -> None:
    small = np.arange(9).reshape(3, 3, 1)
    text = render(show(small, small * 2, width=80, color_system=None), 80, None)
    assert "16" in text and "input 3x3" in text and "output 3x3" in text
    big = render(show(gradient(40, 40), gradient(38, 38), width=80, color_system=None), 80, None)
    assert "input 40x40x3 (clip 0…255)" in big


def test_a_heatmap_too_wide_for_half_the_width_is_stacked_or_drawn() -> None:
    wide = RNG.integers(1000, 9999, size=(16, 16, 1))
    at_120 = render(show(wide, wide, width=120, color_system=None), 120, None)
    assert str(wide[0, 0, 0]) in at_120  # stacked, values shown
    at_80 = render(show(wide, wide, width=80, color_system=None), 80, None)
    assert str(wide[0, 0, 0]) not in at_80  # drawn as pictures
    assert "input 16x16 (clip" in at_80 or "input 16x16 (minmax" in at_80


def test_titles_say_the_mapping() -> None:
    output = np.linspace(-832, 854, 20 * 20 * 3).reshape(20, 20, 3)
    text = render(show(gradient(22, 22), output, width=120, color_system=None), 120, None)
    first = text.splitlines()[0]
    assert "input 22x22x3 (clip 0…255)" in first  # side by side: both on one line
    assert "output 20x20x3 (minmax -832…854)" in first


def test_several_channels_make_a_grid_of_titled_pictures() -> None:
    output = RNG.normal(size=(30, 30, 5))
    text = render(show(gradient(32, 32), output, width=120, color_system=None), 120, None)
    for i in range(5):
        assert f"channel {i}" in text
    assert any("channel 0" in line and "channel 1" in line for line in text.splitlines())
    assert "output 30x30x5 (minmax per channel)" in text


def test_small_channels_make_a_grid_of_heatmaps() -> None:
    output = np.stack([np.eye(3) * 7, -np.eye(3) * 5], axis=2)
    text = render(show(np.ones((4, 4)), output, width=80, color_system=None), 80, None)
    assert "channel 0" in text and "channel 1" in text
    assert "7" in text and "-5" in text


def test_a_grid_says_how_many_channels_it_left_out() -> None:
    text = render(
        show(gradient(20, 20), RNG.normal(size=(18, 18, 100)), width=120, color_system=None),
        120,
        None,
    )
    assert "channel 63" in text and "channel 64" not in text
    assert "36 more channels not shown" in text


def test_a_256_square_at_width_40_is_40_wide_and_20_rows() -> None:
    assert fit_size(256, 256, columns=40) == (20, 40)
    for color_system in (None, "truecolor"):
        lines = render(
            picture(gradient(256, 256), width=40, color_system=color_system), 40, color_system
        ).splitlines()
        assert len(lines) == 20
        assert max(len(line) for line in lines) == 40


def test_show_keeps_the_aspect_ratio_of_a_big_square() -> None:
    text = render(
        show(gradient(256, 256), gradient(256, 256), width=40, color_system=None), 40, None
    )
    body = [line for line in text.splitlines() if not any(ch.isalnum() for ch in line)]
    assert max(len(line) for line in body) <= 40
    # side by side: the input gets half of 40 minus the gap, 18 columns, and a text cell
    # being about twice as tall as wide, 9 rows; the output the other 19 columns, 10 rows
    left = [line[:18] for line in body if line[:18].strip()]
    right = [line[21:] for line in body if line[21:].strip()]
    assert ({len(line) for line in left}, len(left)) == ({18}, 9)
    assert ({len(line) for line in right}, len(right)) == ({19}, 10)


@pytest.mark.parametrize(
    ("shape", "columns", "expected"),
    [
        ((100, 300), 60, (10, 60)),  # rows = H·cols/W/2
        ((5, 20), 200, (10, 80)),  # enlarged at most MAX_ZOOM = 4 times
        ((1000, 30), 80, (33, 2)),  # at most MAX_ROWS rows, narrower to keep the ratio
        ((1, 1), 80, (2, 4)),
        ((3, 10_000), 40, (1, 40)),  # never fewer than one row
    ],
)
def test_fit_size(shape: tuple[int, int], columns: int, expected: tuple[int, int]) -> None:
    assert fit_size(*shape, columns=columns) == expected


def test_resize_averages_areas_and_repeats_on_enlarging() -> None:
    image = np.arange(16, dtype=float).reshape(4, 4, 1)
    assert resize(image, 2, 2)[..., 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert (
        resize(image, 8, 8)[..., 0].tolist()
        == np.repeat(np.repeat(image[..., 0], 2, 0), 2, 1).tolist()
    )
    odd = RNG.normal(size=(7, 5, 3))
    assert resize(odd, 3, 2).mean(axis=(0, 1)) == pytest.approx(odd.mean(axis=(0, 1)))


def test_an_empty_array_is_named_not_drawn() -> None:
    text = render(show(np.zeros((0, 4)), np.ones((2, 2)), width=40, color_system=None), 40, None)
    assert "input 0x4 (empty)" in text


def test_docstring_examples() -> None:
    assert doctest.testmod(show_module).failed == 0
