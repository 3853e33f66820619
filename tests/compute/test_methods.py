"""The four convolution algorithms agree, and their fast paths equal the plain ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from convcalc.calc.choices import Method
from convcalc.compute import fftconv, methods
from convcalc.compute.methods import (
    correlate_direct,
    correlate_fft,
    correlate_im2col,
    correlate_padded,
    correlate_winograd,
)
from convcalc.errors import ConvcalcError
from tests.reference import brute_correlate

UFLDL = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)[:, :, None]
X_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])[:, :, None, None]
UFLDL_OUT = np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]])[:, :, None]


@st.composite
def problems(draw: st.DrawFn, winograd: bool = False) -> dict[str, Any]:
    """A random input, kernel bank, stride, dilation and groups that fit together."""
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    if winograd:
        (kh, kw), stride, dilation = (3, 3), (1, 1), (1, 1)
    else:
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = dilation[0] * (kh - 1) + 1 + draw(st.integers(0, 9))
    w = dilation[1] * (kw - 1) + 1 + draw(st.integers(0, 9))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {
        "x": rng.normal(size=(h, w, groups * cg)).astype(dtype),
        "w": rng.normal(size=(kh, kw, cg, groups * fg)).astype(dtype),
        "stride": stride,
        "dilation": dilation,
        "groups": groups,
    }


def _tolerance(p: dict[str, Any]) -> float:
    """Absolute tolerance: eps-scaled bound of the largest possible sum."""
    eps = 1e-4 if p["x"].dtype == np.float32 else 1e-10
    bound = np.abs(p["x"]).max() * np.abs(p["w"]).sum(axis=(0, 1, 2)).max()
    return float(eps * max(bound, 1.0))


def _run(method: Method, p: dict[str, Any]) -> NDArray[Any]:
    return correlate_padded(
        p["x"],
        p["w"],
        stride=p["stride"],
        dilation=p["dilation"],
        groups=p["groups"],
        method=method,
    )


@settings(max_examples=60, deadline=None)
@given(problems())
def test_methods_agree_with_each_other_and_the_defining_sum(p: dict[str, Any]) -> None:
    expected = brute_correlate(
        p["x"].astype(np.float64),
        p["w"].astype(np.float64),
        p["stride"],
        p["dilation"],
        p["groups"],
    )
    for method in (Method.DIRECT, Method.IM2COL, Method.FFT, Method.AUTO):
        got = _run(method, p)
        assert got.dtype == p["x"].dtype, method
        assert got.shape == expected.shape, method
        np.testing.assert_allclose(got, expected, rtol=0, atol=_tolerance(p), err_msg=method)


@settings(max_examples=30, deadline=None)
@given(problems(winograd=True))
def test_winograd_agrees_on_3x3(p: dict[str, Any]) -> None:
    got = _run(Method.WINOGRAD, p)
    assert got.dtype == p["x"].dtype
    np.testing.assert_allclose(got, _run(Method.DIRECT, p), rtol=0, atol=_tolerance(p))


@pytest.mark.parametrize("method", [Method.DIRECT, Method.IM2COL, Method.WINOGRAD])
def test_integer_textbook_example_is_exact(method: Method) -> None:
    got = correlate_padded(UFLDL, X_KERNEL, method=method)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, UFLDL_OUT)


def test_fft_rounds_integer_results_to_exact() -> None:
    np.testing.assert_array_equal(correlate_padded(UFLDL, X_KERNEL, method=Method.FFT), UFLDL_OUT)
    x = np.random.default_rng(13).integers(0, 256, size=(97, 131, 2))
    w = np.random.default_rng(14).integers(-9, 10, size=(6, 5, 2, 3))
    np.testing.assert_array_equal(
        correlate_fft(x, w, stride=(2, 1)), correlate_direct(x, w, stride=(2, 1))
    )
    halves = correlate_fft(x, w / 2)  # not integers: left as computed
    np.testing.assert_allclose(halves, correlate_direct(x, w / 2), atol=1e-8)
    assert not np.array_equal(halves, np.rint(halves))


def _big_image() -> NDArray[np.float64]:
    return np.random.default_rng(7).normal(size=(300, 200, 3))


@pytest.mark.parametrize(
    ("channels", "mult", "shared"), [(1, 1, False), (3, 2, False), (3, 1, True), (4, 1, False)]
)
@pytest.mark.parametrize(
    ("stride", "dilation"), [((1, 1), (1, 1)), ((2, 3), (2, 1)), ((1, 2), (1, 3))]
)
def test_depth_one_row_products_equal_the_defining_sum_in_any_strips(
    channels: int, mult: int, shared: bool, stride: tuple[int, int], dilation: tuple[int, int]
) -> None:
    # depth-1 kernels run as row products: one gray plane, a depthwise bank with two
    # filters a channel, one kernel shared by every channel (HxWxC rows as they are)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(61, 47, channels))
    if shared:
        w = np.repeat(rng.normal(size=(4, 5, 1, 1)), channels, axis=3)
    else:
        w = rng.normal(size=(4, 5, 1, channels * mult))
    whole = correlate_direct(
        x, w, stride=stride, dilation=dilation, groups=channels, tile_rows=10**6, workers=1
    )
    expected = brute_correlate(x, w, stride, dilation, channels)
    np.testing.assert_allclose(whole, expected, rtol=1e-12, atol=1e-12)
    # each output row is the same products whatever strip it falls in: bit for bit
    for rows in (1, 7):
        tiled = correlate_direct(
            x, w, stride=stride, dilation=dilation, groups=channels, tile_rows=rows, workers=2
        )
        np.testing.assert_array_equal(tiled, whole)


def test_depth_one_integer_kernels_are_exact_on_images() -> None:
    x = np.random.default_rng(9).integers(0, 256, size=(200, 150, 3), dtype=np.uint8)
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    bank = np.repeat(sobel[:, :, None, None], 3, axis=3)
    got = correlate_direct(x, bank, groups=3)
    assert got.dtype == np.float32
    expected = brute_correlate(x.astype(np.int64), bank, (1, 1), (1, 1), 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("groups", [1, 3])
def test_strip_tiling_and_threads_equal_one_strip(groups: int) -> None:
    x = _big_image()
    w = np.random.default_rng(10).normal(size=(3, 4, 3 // groups, 6))
    whole = correlate_direct(x, w, groups=groups, stride=(2, 1), tile_rows=10**6, workers=1)
    tiled = correlate_direct(x, w, groups=groups, stride=(2, 1), tile_rows=7, workers=2)
    np.testing.assert_allclose(tiled, whole, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("groups", [1, 3])
def test_chunked_im2col_fft_winograd_equal_unchunked(groups: int) -> None:
    x = np.random.default_rng(11).normal(size=(23, 17, 6))
    w = np.random.default_rng(12).normal(size=(3, 3, 6 // groups, 6))
    for fn in (correlate_im2col, correlate_fft, correlate_winograd):
        whole = fn(x, w, groups=groups)
        np.testing.assert_allclose(fn(x, w, groups=groups, chunk_bytes=1), whole, atol=1e-12)
    np.testing.assert_allclose(
        correlate_im2col(x, w, groups=groups), correlate_direct(x, w, groups=groups), atol=1e-12
    )


@pytest.mark.parametrize(
    ("shape", "stride", "dilation", "got"),
    [
        ((5, 5, 1, 1), (1, 1), (1, 1), "got 5x5"),
        ((3, 3, 1, 1), (2, 2), (1, 1), "got 3x3 with stride 2x2"),
        ((3, 3, 1, 1), (1, 1), (2, 1), "got 3x3 with dilation 2x1"),
        ((1, 3, 1, 1), (1, 1), (1, 1), "got 1x3"),
    ],
)
def test_winograd_refuses_other_kernels(
    shape: tuple[int, ...], stride: tuple[int, int], dilation: tuple[int, int], got: str
) -> None:
    with pytest.raises(
        ConvcalcError, match=f"winograd needs a 3x3 kernel with stride 1 and dilation 1; {got}"
    ):
        correlate_padded(
            np.ones((12, 12, 1)),
            np.ones(shape),
            stride=stride,
            dilation=dilation,
            method=Method.WINOGRAD,
        )


def test_choose_method_rules() -> None:
    assert methods.choose_method((7, 7, 1), (3, 3, 1, 1)) == Method.DIRECT  # small: exact
    assert methods.choose_method((512, 512, 1), (3, 3, 1, 1)) == Method.DIRECT
    assert methods.choose_method((512, 512, 1), (15, 15, 1, 1)) == Method.DIRECT
    assert methods.choose_method((512, 512, 1), (16, 16, 1, 1)) == Method.FFT
    assert methods.choose_method((512, 512, 1), (17, 17, 1, 1), stride=(2, 1)) == Method.DIRECT
    assert methods.choose_method((4096, 4096, 1), (7, 7, 1, 1)) == Method.DIRECT  # big image
    assert methods.choose_method((4096, 4096, 1), (31, 31, 1, 1)) == Method.FFT
    assert methods.choose_method((512, 512, 3), (9, 9, 3, 8)) == Method.FFT
    assert methods.choose_method((512, 512, 3), (7, 7, 3, 8)) == Method.DIRECT
    assert methods.choose_method((512, 512, 64), (7, 7, 64, 64)) == Method.DIRECT
    assert methods.choose_method((512, 512, 64), (9, 9, 64, 64)) == Method.FFT
    # a kernel larger than an unpadded input is no error here
    assert methods.choose_method((3, 3, 1), (5, 5, 1, 1)) == Method.DIRECT


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "groups", "message"),
    [
        ((5, 5, 4), (3, 3, 2, 3), 2, "groups 2 does not divide"),
        ((5, 5, 4), (3, 3, 3, 2), 1, "kernel depth 3 does not fit 4 input channels"),
        ((5, 5, 4), (3, 3, 4, 2), 0, "groups 0"),
        ((5, 5), (3, 3, 1, 1), 1, "HxWxC input"),
        ((2, 5, 1), (3, 3, 1, 1), 1, "larger than the padded input"),
    ],
)
def test_bad_shapes_raise(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], groups: int, message: str
) -> None:
    with pytest.raises(ConvcalcError, match=message):
        correlate_padded(np.ones(x_shape), np.ones(w_shape), groups=groups)


def test_complex_input_is_refused() -> None:
    with pytest.raises(ConvcalcError, match="complex128 are not valid"):
        correlate_padded(np.ones((3, 3, 1), complex), np.ones((1, 1, 1, 1)))


def test_next_smooth() -> None:
    assert [fftconv._next_smooth(n) for n in (1, 7, 11, 13, 17, 97, 121)] == [
        1,
        8,
        12,
        15,
        18,
        100,
        125,
    ]
