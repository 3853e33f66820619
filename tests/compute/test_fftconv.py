"""Overlap-save FFT correlation: the tiles agree with scipy and the defining sums
wherever the tile boundaries fall."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import signal

from convcalc.compute import fftconv
from convcalc.compute.arrays import WORKERS
from convcalc.compute.fftconv import correlate_fft
from tests.reference import brute_correlate


def scipy_correlate(
    x: NDArray[Any],
    w: NDArray[Any],
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> NDArray[np.float64]:
    """scipy.signal.correlate per (input channel, filter) pair in float64, the kernel
    dilated with zeros, summed over each group's channels, taken at the stride."""
    kh, kw, cg, f = w.shape
    fg = f // groups
    dilated = np.zeros((dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1, cg, f))
    dilated[:: dilation[0], :: dilation[1]] = w
    planes = [
        sum(
            signal.correlate(
                x[:, :, o // fg * cg + k].astype(np.float64),
                dilated[:, :, k, o],
                mode="valid",
                method="direct",
            )
            for k in range(cg)
        )
        for o in range(f)
    ]
    return np.stack(planes, axis=-1)[:: stride[0], :: stride[1]]


@pytest.fixture
def tiny_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles of the smallest FFT sizes (about twice the kernel's span): small inputs make many."""
    monkeypatch.setattr(fftconv, "TILE_BYTES", 1)


def _problem(
    seed: int,
    h: int,
    w: int,
    c: int,
    k: tuple[int, int],
    f: int,
    groups: int,
    dtype: type[np.floating[Any]],
) -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(h, w, c)).astype(dtype),
        rng.normal(size=(*k, c // groups, f)).astype(dtype),
    )


CASES = [
    # (H, W, C), (KH, KW), F, stride, dilation, groups
    ((61, 47, 1), (5, 7), 1, (1, 1), (1, 1), 1),  # sizes no multiple of any tile
    ((40, 41, 1), (13, 12), 1, (1, 1), (1, 1), 1),
    ((50, 38, 2), (4, 3), 3, (2, 3), (1, 1), 1),  # stride: tiles start on strided outputs
    ((45, 52, 1), (3, 3), 2, (3, 2), (1, 1), 1),
    ((39, 44, 2), (3, 4), 2, (1, 2), (3, 2), 1),  # dilation
    ((33, 29, 6), (5, 3), 4, (2, 1), (2, 1), 2),  # groups, several filters
    ((25, 27, 4), (3, 3), 4, (1, 1), (1, 1), 4),  # depthwise
    ((31, 33, 1), (31, 30), 1, (1, 1), (1, 1), 1),  # kernel nearly the input: one tile
    ((70, 9, 1), (9, 9), 1, (1, 1), (1, 1), 1),  # one column of outputs
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "k", "f", "stride", "dilation", "groups"), CASES)
@pytest.mark.usefixtures("tiny_tiles")
def test_many_tiles_agree_with_scipy(
    shape: tuple[int, int, int],
    k: tuple[int, int],
    f: int,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    dtype: type[np.floating[Any]],
) -> None:
    x, w = _problem(1, *shape, k, f, groups, dtype)
    got = correlate_fft(x, w, stride=stride, dilation=dilation, groups=groups)
    assert got.dtype == dtype
    tolerance = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(
        got, scipy_correlate(x, w, stride, dilation, groups), rtol=tolerance, atol=tolerance
    )


@pytest.mark.parametrize("extra", [0, 1, 2, 5])
@pytest.mark.parametrize("stride", [(1, 1), (2, 3), (3, 2)])
def test_tiles_barely_larger_than_the_kernel(
    monkeypatch: pytest.MonkeyPatch, extra: int, stride: tuple[int, int]
) -> None:
    """Below the size the module would pick: a tile ``extra`` wider than the kernel's
    span gives ``extra // stride + 1`` outputs per axis (odd sizes too)."""
    x, w = _problem(2, 37, 43, 2, (6, 5), 2, 1, np.float64)
    monkeypatch.setattr(fftconv, "_tile_size", lambda _out, span, _stride, _edge: span + extra)
    np.testing.assert_allclose(
        correlate_fft(x, w, stride=stride), brute_correlate(x, w, stride, (1, 1), 1), atol=1e-10
    )


@pytest.mark.usefixtures("tiny_tiles")
def test_filter_blocks_of_one_equal_all_filters() -> None:
    x, w = _problem(3, 30, 26, 4, (3, 4), 6, 2, np.float64)
    whole = correlate_fft(x, w, groups=2, stride=(1, 2))
    np.testing.assert_allclose(
        correlate_fft(x, w, groups=2, stride=(1, 2), chunk_bytes=1), whole, atol=1e-12
    )
    np.testing.assert_allclose(whole, scipy_correlate(x, w, (1, 2), (1, 1), 2), atol=1e-10)


@pytest.mark.usefixtures("tiny_tiles")
def test_integer_valued_float64_is_exact_in_every_tile() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(47, 53, 2)).astype(np.float64)
    w = rng.integers(-9, 10, size=(7, 6, 2, 3)).astype(np.float64)
    got = correlate_fft(x, w, stride=(2, 1), dilation=(1, 2))
    np.testing.assert_array_equal(got, brute_correlate(x, w, (2, 1), (1, 2), 1))
    x[-1, -1, -1] += 0.5  # one value in the last band of rows: no longer integers
    assert not fftconv._integer_valued(x, w)
    halves = correlate_fft(x, w)
    assert not np.array_equal(halves, np.rint(halves))


def test_memory_is_the_output_and_a_few_tiles() -> None:
    x, w = _problem(5, 2048, 1024, 1, (31, 31), 1, 1, np.float32)  # whole-image FFTs: 40 MiB
    tracemalloc.start()
    try:
        out = correlate_fft(x, w)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # each worker's tile and its transforms, the kernel spectra
    assert peak - out.nbytes < (WORKERS + 1) * 2 * fftconv.TILE_BYTES, peak


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    """A random small input, kernel bank, stride, dilation, groups and tile budget."""
    groups, cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h, w = draw(st.integers(span[0], span[0] + 30)), draw(st.integers(span[1], span[1] + 30))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x, bank = _problem(
        draw(st.integers(0, 2**16)), h, w, groups * cg, (kh, kw), groups * fg, groups, dtype
    )
    return {
        "x": x,
        "w": bank,
        "groups": groups,
        "dilation": dilation,
        "stride": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "tile_bytes": draw(st.sampled_from([1, 2**12, fftconv.TILE_BYTES])),
    }


@settings(max_examples=60, deadline=None)
@given(problems())
def test_tiled_equals_scipy_on_random_shapes(p: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fftconv, "TILE_BYTES", p["tile_bytes"])
        got = correlate_fft(
            p["x"], p["w"], stride=p["stride"], dilation=p["dilation"], groups=p["groups"]
        )
    tolerance = 2e-4 if p["x"].dtype == np.float32 else 1e-10
    np.testing.assert_allclose(
        got,
        scipy_correlate(p["x"], p["w"], p["stride"], p["dilation"], p["groups"]),
        rtol=tolerance,
        atol=tolerance,
    )


def test_tile_size_splits_the_outputs_evenly() -> None:
    assert fftconv._tile_size(2018, 31, 1, 418) == 375  # 6 tiles of 337 outputs, not 432
    assert fftconv._tile_size(10**5, 301, 1, 1) == 625  # twice the span, 5-smooth
    assert fftconv._tile_size(1000, 5, 2, 400) == 360  # 6 tiles of 167 strided outputs
    assert fftconv._tile_size(40, 31, 1, 418) == 72  # all 40 outputs (70 inputs): one tile
