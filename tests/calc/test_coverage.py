"""`shape --coverage`: how many windows read each input cell, against a brute-force count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from convcalc.calc.coverage import axis_coverage, coverage_grid
from convcalc.calc.geometry import conv_axis, pool_axis
from tests.conftest import run, run_json


def brute_force(n: int, k: int, s: int, p: int, d: int) -> list[int]:
    """Slide every window over the zero-padded input and count the real cells it reads."""
    padded = n + 2 * p
    counts = [0] * n
    start = 0
    while start + d * (k - 1) < padded:
        for tap in range(k):
            cell = start + tap * d - p
            if 0 <= cell < n:
                counts[cell] += 1
        start += s
    return counts


@given(
    st.integers(1, 30), st.integers(1, 5), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3)
)
def test_axis_coverage_equals_a_brute_force_count(n, k, s, p, d):
    if d * (k - 1) + 1 > n + 2 * p:
        return
    assert axis_coverage(conv_axis(n, k, stride=s, padding=p, dilation=d)) == brute_force(
        n, k, s, p, d
    )


def test_border_cells_are_read_less_and_a_large_stride_skips_cells():
    assert axis_coverage(conv_axis(6, 3)) == [1, 2, 3, 3, 2, 1]
    assert axis_coverage(conv_axis(6, 3, padding=1)) == [2, 3, 3, 3, 3, 2]
    assert axis_coverage(pool_axis(7, 2, stride=3)) == [1, 1, 0, 1, 1, 0, 0]
    assert coverage_grid([conv_axis(3, 3), conv_axis(4, 2, stride=2)]) == [[1, 1, 1, 1]] * 3


def test_the_cli_gives_the_grid_as_json_and_draws_it():
    doc = run_json("shape", "6x6", "-k", "3", "--coverage")
    assert doc["coverage"][0] == [1, 2, 3, 3, 2, 1] and doc["coverage"][2][2] == 9
    text = run("shape", "7x7", "-k", "2", "-s", "3", "--coverage", "--show").stdout
    assert "33 of 49 cells never read" in text


def test_coverage_needs_one_window_layer():
    for args in (
        ["32x32x3", "conv:6,5", "--coverage"],
        ["7", "-k", "3", "--show"],
        ["7", "-k", "3", "--transposed", "--coverage"],
    ):
        result = run("shape", *args)
        assert result.exit_code == 2, args
