"""`apply --steps` and `--show` at rank 1 (signals) and 3 (volumes): golden step tables,
and the plots and slices drawn in the terminal.

`pytest --update-golden` rewrites tests/golden/*.txt from the current output.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from convcalc.calc.grammar import parse_spec
from convcalc.compute.pipeline import Settings, Stage
from convcalc.compute.traces import trace
from convcalc.present.ranked_pictures import (
    MAX_SLICES,
    chosen_slices,
    show_signal,
    show_volume,
    signal_plot,
)
from convcalc.present.steps import steps_renderable

SIGNAL = np.array([0, 0, 1, 5, 1, 0, 0, 3, 0])
VOLUME = (np.arange(27) % 5).reshape(3, 3, 3)


def stage(text: str, *kernels: Any) -> Stage:
    return Stage(parse_spec(text), tuple(np.asarray(k, float) for k in kernels))


def render(renderable: Any, width: int = 100, color_system: str | None = None) -> str:
    console = Console(
        width=width, color_system=color_system, record=True, file=io.StringIO(), no_color=True
    )
    console.print(renderable)
    return console.export_text()


# -- golden step tables ---------------------------------------------------------------


def test_golden_signal_steps(golden) -> None:
    t = trace(SIGNAL, [stage("conv1d:k=1,2,1,s=2,p=1", [1, 2, 1])], Settings(rank=1))
    golden("signal_steps", render(steps_renderable(t)))


def test_golden_volume_steps(golden) -> None:
    kernel = [[[1, 0], [0, 1]], [[0, -1], [-1, 0]]]
    at = [(0, 0, 0), (1, 1, 1)]
    t = trace(VOLUME, [stage("conv3d:k=w,s=2,p=1", kernel)], Settings(rank=3), at=at)
    golden("volume_steps", render(steps_renderable(t)))


def test_signal_steps_read_as_the_arithmetic() -> None:
    t = trace(SIGNAL, [stage("maxpool1d:3,s=2,p=1")], Settings(rank=1), at=[(4,), (1,)])
    text = render(steps_renderable(t))
    assert "output (4): input positions 7..9" in text
    assert "max(3, 0, −∞) = 3" in text and "  *3   0 ·−∞" in text
    assert "2 of 5 positions shown; use --at N or --limit N for others" in text


def test_volume_steps_name_the_slices_a_dilated_window_reads() -> None:
    x = np.arange(5 * 3 * 3).reshape(5, 3, 3)
    t = trace(x, [stage("maxpool3d:2,d=2x1x1,s=1")], Settings(rank=3), at=[(0, 1, 1)])
    text = render(steps_renderable(t))
    assert "input slices 0..2 every 2, rows 1..2, columns 1..2" in text
    assert "window, slice 0    window, slice 2" in text
    assert "dilation 2x1x1" in text
    assert "1 of 12 positions shown; use --at D,ROW,COL or --limit N for others" in text


# -- signals drawn --------------------------------------------------------------------


def test_signal_plot_draws_bars_from_the_minimum_in_eighths() -> None:
    lines = [line.plain for line in signal_plot(np.array([0.0, 1, 4, 1, 0]), 8, rows=2)]
    # 16 levels: 0 → 1/8 of the bottom row, 1 → 1 + round(15/4) = 5/8, 4 → full
    assert lines == ["4 ┤  █  ", "0 ┤▁▅█▅▁"]


def test_a_signed_signal_labels_zero_and_a_constant_one_draws_half_bars() -> None:
    lines = [line.plain for line in signal_plot(np.array([-3.0, 3.0]), 20, rows=4)]
    labels = [line[:3].strip() for line in lines if line[3] in "┤┼"]
    assert labels == ["3", "0", "-3"]
    flat = [line.plain for line in signal_plot(np.full(3, 2.0), 6, rows=2)]
    assert flat == ["2 ┤   ", "2 ┤███"]


def signed_heights(lines: list[str], values: int) -> list[float]:
    """Each value's bar read back from the plot, in cells: up from the zero line
    (eighths of ``▁▂▃▄▅▆▇█``) or down from it (``▔`` an eighth, ``▀`` a half, ``█``)."""
    axis = next(k for k, line in enumerate(lines) if "┼" in line)
    start = lines[axis].index("┼") + 1
    zoom = (len(lines[axis]) - start) // values  # columns per value
    heights = []
    for c in range(start, start + values * zoom, zoom):
        up = sum(" ▁▂▃▄▅▆▇█".index(line[c]) / 8 for line in lines[:axis])
        down = sum({" ": 0, "▔": 1 / 8, "▀": 1 / 2, "█": 1}[line[c]] for line in lines[axis + 1 :])
        assert lines[axis][c] == "─" and not (up and down)
        heights.append(up - down)
    return heights


@pytest.mark.parametrize(
    "values",
    [[-1, -5, 0, 5, 1, -3, 0], [100, -1, 50, 0, -0.5], [1, -100, 50, -20], [0.1, -0.1]],
)
def test_a_signed_signal_is_drawn_from_zero_up_and_down(values: list[float]) -> None:
    v = np.array(values, dtype=float)
    lines = [line.plain for line in signal_plot(v, 40, rows=4)]
    assert all(len(line) == len(lines[0]) for line in lines)
    heights = signed_heights(lines, len(values))
    assert np.array_equal(np.sign(heights), np.sign(v))  # up for positive, down for negative
    # one scale on both sides, to the nearest half cell (hanging bars end in halves)
    scale = max(np.abs(heights)) / max(np.abs(v))
    assert np.allclose(heights, v * scale, atol=0.5)
    order = np.argsort(np.abs(v), kind="stable")
    assert np.all(np.diff(np.abs(np.array(heights))[order]) >= -1 / 8)


def test_the_readme_example_draws_minus_one_as_a_short_bar_below_zero() -> None:
    y = np.array([-1.0, -5, 0, 5, 1, -3, 0])
    text = render(show_signal(np.zeros(9), y, width=40), width=40)
    plot = text.split("output 7\n")[1].splitlines()
    assert [line[:4] for line in plot] == [" 5 ┤", "   │", " 0 ┼", "   │", "-5 ┤"]
    assert signed_heights(plot, 7) == [-0.5, -2, 0, 2, 0.375, -1.125, 0]


def test_a_long_signal_is_averaged_to_the_width_and_says_so() -> None:
    x = np.sin(np.arange(1000) / 30)
    text = render(show_signal(x, x[::2], width=60), width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "input 1000, each column the mean of ~" in text
    assert "output 500, each column the mean of ~" in text


def test_a_short_signal_is_zoomed_and_channels_drawn_one_by_one() -> None:
    x = np.stack([SIGNAL, -SIGNAL], axis=1).astype(float)
    text = render(show_signal(x, x[:, :1], width=80))
    assert "input 9x2" in text and "channel 0" in text and "channel 1" in text
    assert "output 9" in text
    bottom = next(line for line in text.splitlines() if line.startswith("0 ┤"))
    assert len(bottom) == len("0 ┤") + 4 * 9  # each value 4 columns wide


# -- volumes drawn --------------------------------------------------------------------


def test_small_volume_slices_are_heatmaps_on_one_scale() -> None:
    text = render(show_volume(VOLUME, VOLUME[:2], width=100, color_system=None))
    assert "input 3x3x3" in text and "output 2x3x3" in text
    assert "slice 0" in text and "slice 2" in text
    legends = [line for line in text.splitlines() if "████" in line]
    assert all(line.split()[0] == "0" and line.split()[2] == "4" for line in legends)


@pytest.mark.parametrize("color_system", [None, "truecolor"])
def test_a_deep_volume_draws_a_bounded_number_of_slices_within_the_width(color_system) -> None:
    z, y, x = np.mgrid[0:20, 0:40, 0:40]
    volume = np.exp(-((z - 10) ** 2 + (y - 20) ** 2 + (x - 20) ** 2) / 100.0)[..., None]
    volume = np.concatenate([volume, -volume], axis=-1)
    text = render(show_volume(volume, volume[:3], width=90, color_system=color_system), 90)
    assert max(len(line) for line in text.splitlines()) <= 90
    shown = chosen_slices(20)
    assert len(shown) == MAX_SLICES and shown[0] == 0 and shown[-1] == 19
    assert f"8 of 20 slices drawn ({', '.join(map(str, shown))})" in text
    assert "channel 1, minmax −1…−" in text.replace("-", "−")
    assert text.count("slice 19") == 2  # both channels


def test_global_pooling_of_a_signal_names_the_whole_signal() -> None:
    t = trace(SIGNAL, [stage("gmp")], Settings(rank=1))
    text = render(steps_renderable(t))
    assert "one value per channel from its whole signal" in text
    assert "output (0): the whole signal (9 positions)" in text
    assert "max(0, 0, 1, 5, 1, 0, 0, 3, 0) = 5" in text
