"""ops against scipy, brute-force loops, PyTorch's rules and the textbook examples."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import ndimage, signal

from convcalc.calc.choices import Activation, Convention, Method, PadMode, PadRule, PoolKind
from convcalc.calc.geometry import transposed_axis
from convcalc.compute.ops import (
    activate,
    auto_method,
    conv_transpose,
    correlate,
    global_pool,
    pad,
    pool,
)
from convcalc.compute.windows import avg_counts, pool_axes, transposed_full_size
from convcalc.errors import ConvcalcError
from tests.reference import brute_correlate

SCIPY_MODE = {
    PadMode.ZERO: "constant",
    PadMode.REFLECT: "mirror",
    PadMode.REPLICATE: "nearest",
    PadMode.WRAP: "wrap",
}
UFLDL = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def brute_conv(
    x: NDArray[Any],
    w: NDArray[Any],
    stride: tuple[int, int],
    pads: tuple[tuple[int, int], ...],
    dilation: tuple[int, int],
    groups: int,
    bias: NDArray[Any] | None = None,
) -> NDArray[np.float64]:
    """Zero-pad, then the defining sum one output value at a time, then the bias."""
    out = brute_correlate(np.pad(x.astype(float), (*pads, (0, 0))), w, stride, dilation, groups)
    return out if bias is None else out + bias


def brute_pool(
    x: NDArray[Any],
    kind: PoolKind,
    k: int,
    s: int,
    p: int,
    d: int,
    ceil: bool,
    exclude_pad: bool,
) -> NDArray[np.float64] | None:
    """Square windows, PyTorch's rules, one output value at a time (sizes as torch).

    None when some window holds no input cell at all.
    """
    n = x.shape[0]
    span = d * (k - 1) + 1
    reach = n + 2 * p - span
    size = (-(-reach // s) if ceil else reach // s) + 1
    if ceil and (size - 1) * s >= n + p:
        size -= 1
    out = np.zeros((size, size, x.shape[2]))
    for r in range(size):
        for c in range(size):
            cells = [(r * s + i * d - p, c * s + j * d - p) for i in range(k) for j in range(k)]
            inside = [(a, b) for a, b in cells if -p <= a < n + p and -p <= b < n + p]
            real = [(a, b) for a, b in inside if 0 <= a < n and 0 <= b < n]
            if not real:
                return None
            values = np.array([x[a, b] for a, b in real])
            if kind == PoolKind.MAX:
                out[r, c] = values.max(axis=0)
            elif kind == PoolKind.AVG:
                out[r, c] = values.sum(axis=0) / len(real if exclude_pad else inside)
            else:
                out[r, c] = np.sqrt((values**2).sum(axis=0))
    return out


# -- padding and pad modes against scipy.ndimage ------------------------------


@pytest.mark.parametrize("mode", list(PadMode))
@pytest.mark.parametrize("k", [(1, 3), (3, 3), (5, 3), (3, 7)])
def test_same_correlation_matches_scipy_for_every_pad_mode(
    mode: PadMode, k: tuple[int, int]
) -> None:
    x = rng(1).normal(size=(6, 8))
    w = rng(2).normal(size=k)
    got = correlate(x, w, padding=(PadRule.SAME, PadRule.SAME), pad_mode=mode)
    expected = ndimage.correlate(x, w, mode=SCIPY_MODE[mode])
    np.testing.assert_allclose(got[..., 0], expected, atol=1e-12)


@pytest.mark.parametrize("mode", list(PadMode))
def test_pad_matches_scipy_on_channels(mode: PadMode) -> None:
    """A one-hot kernel at a corner of a 5x5 window reads back the padded input."""
    x = rng(3).integers(0, 9, size=(4, 5, 2))
    got = pad(x, [(2, 2), (2, 2)], mode)
    assert got.dtype == x.dtype
    for dr in range(5):
        for dc in range(5):
            probe = np.zeros((5, 5, 1))
            probe[dr, dc] = 1
            shifted = ndimage.correlate(x, probe, mode=SCIPY_MODE[mode])
            np.testing.assert_array_equal(got[dr : dr + 4, dc : dc + 5], shifted)


def test_wrap_is_periodic_beyond_the_input_and_zero_uses_value() -> None:
    x = np.arange(3)[:, None]
    np.testing.assert_array_equal(pad(x, [(4, 5)], PadMode.WRAP)[:, 0], np.arange(-4, 8) % 3)
    np.testing.assert_array_equal(pad(x, [(1, 0)], value=-1)[:, 0], [-1, 0, 1, 2])
    np.testing.assert_array_equal(pad(x, [(2, 2)], PadMode.REFLECT)[:, 0], [2, 1, 0, 1, 2, 1, 0])
    np.testing.assert_array_equal(pad(x, [(2, 1)], PadMode.REPLICATE)[:, 0], [0, 0, 0, 1, 2, 2])


@pytest.mark.parametrize(
    ("pads", "mode", "message"),
    [
        ([(3, 0)], PadMode.REFLECT, "reflect padding 3 is not smaller than the 3 rows"),
        ([(0, 0), (0, 4)], PadMode.REFLECT, "reflect padding 4 is not smaller than the 2 columns"),
        ([(-1, 0)], PadMode.ZERO, "padding -1 of the rows is negative"),
        ([(0, 0)] * 3, PadMode.ZERO, "3 padding pairs for a 2-axis array"),
    ],
)
def test_bad_pads_raise(pads: list[tuple[int, int]], mode: PadMode, message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        pad(np.ones((3, 2)), pads, mode)


def test_reflect_too_large_through_correlate() -> None:
    with pytest.raises(ConvcalcError, match="reflect padding 2 is not smaller than the 2 rows"):
        correlate(
            np.ones((2, 9)), np.ones((5, 1)), padding=(PadRule.SAME, 0), pad_mode=PadMode.REFLECT
        )


# -- convolution against brute force ---------------------------------------------


@st.composite
def conv_cases(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.sampled_from([1, 2, 3]))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    size = [
        max(1, dilation[a] * (k[a] - 1) + 1 - sum(pads[a])) + draw(st.integers(0, 6))
        for a in range(2)
    ]
    r = rng(draw(st.integers(0, 2**32 - 1)))
    return {
        "x": r.integers(-5, 6, size=(*size, groups * cg)),
        "w": r.integers(-3, 4, size=(*k, cg, groups * fg)).astype(float),
        "bias": r.integers(-3, 4, size=groups * fg).astype(float),
        "stride": stride,
        "dilation": dilation,
        "pads": pads,
        "groups": groups,
        "method": draw(st.sampled_from([Method.AUTO, Method.DIRECT, Method.IM2COL])),
    }


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_correlate_matches_brute_force(case: dict[str, Any]) -> None:
    """Stride, dilation, asymmetric padding, groups, channel sums and bias, exactly."""
    got = correlate(
        case["x"],
        case["w"],
        stride=case["stride"],
        padding=case["pads"],
        dilation=case["dilation"],
        groups=case["groups"],
        bias=list(case["bias"]),
        method=case["method"],
    )
    expected = brute_conv(
        case["x"],
        case["w"],
        case["stride"],
        case["pads"],
        case["dilation"],
        case["groups"],
        case["bias"],
    )
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_depthwise_multichannel_and_dense_sum() -> None:
    x = rng(4).normal(size=(7, 6, 4))
    w = rng(5).normal(size=(3, 3, 1, 8))  # depthwise, multiplier 2
    got = correlate(x, w, groups=4, padding=(1, (0, 2)))
    np.testing.assert_allclose(
        got, brute_conv(x, w, (1, 1), ((1, 1), (0, 2)), (1, 1), 4), atol=1e-12
    )
    dense = rng(6).normal(size=(2, 3, 4, 3))
    np.testing.assert_allclose(
        correlate(x, dense, stride=(2, 1)),
        brute_conv(x, dense, (2, 1), ((0, 0), (0, 0)), (1, 1), 1),
        atol=1e-12,
    )


@pytest.mark.parametrize("method", [Method.DIRECT, Method.IM2COL, Method.FFT])
def test_flip_is_true_convolution(method: Method) -> None:
    x = rng(7).normal(size=(9, 8))
    w = rng(8).normal(size=(3, 4))
    got = correlate(x, w, flip=True, method=method)
    np.testing.assert_allclose(got[..., 0], signal.convolve2d(x, w, mode="valid"), atol=1e-12)
    full = correlate(x, w, flip=True, padding=(PadRule.FULL, PadRule.FULL), method=method)
    np.testing.assert_allclose(full[..., 0], signal.convolve2d(x, w, mode="full"), atol=1e-12)


def test_activation_follows_bias() -> None:
    x = np.array([[1.0, -2.0], [3.0, -4.0]])
    w = np.ones((1, 1))
    np.testing.assert_array_equal(
        correlate(x, w, bias=[1.0], activation=Activation.RELU)[..., 0], [[2, 0], [4, 0]]
    )
    np.testing.assert_allclose(
        correlate(x, w, bias=[1.0], activation=Activation.LRELU)[..., 0],
        [[2, -0.01], [4, -0.03]],
    )


# -- textbook examples and dtype policy ---------------------------------------------


def test_ufldl_example() -> None:
    got = correlate(UFLDL, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(got[..., 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_max_pool_example() -> None:
    x = [[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]]
    np.testing.assert_array_equal(pool(x, PoolKind.MAX, (2, 2))[..., 0], [[9, 2], [6, 3]])


def test_vertical_edge_example() -> None:
    x = np.array([[10, 10, 10, 0, 0, 0]] * 6)
    got = correlate(x, [[1, 0, -1]] * 3)
    np.testing.assert_array_equal(got[..., 0], [[0, 30, 30, 0]] * 4)


def test_dtype_policy() -> None:
    ints = np.arange(36, dtype=np.int32).reshape(6, 6)
    for result in (
        correlate(ints, np.ones((3, 3), int)),
        pool(ints, PoolKind.AVG, (2, 2)),
        conv_transpose(ints, np.ones((2, 2), int)),
        activate(ints, Activation.RELU),
        global_pool(ints, PoolKind.MAX),
        pad(ints.astype(float), [(1, 1)]),
    ):
        assert result.dtype == np.float64
    assert correlate(ints, np.ones((3, 3)))[0, 0, 0] == sum(range(0, 3)) * 3 + 6 * 3 * 3
    pixels = ints.astype(np.uint8)  # 8-bit images compute in float32, exactly here
    assert correlate(pixels, np.ones((3, 3), int)).dtype == np.float32
    assert np.array_equal(
        correlate(pixels, np.ones((3, 3), int)), correlate(ints, np.ones((3, 3), int))
    )
    f32 = ints.astype(np.float32)
    for method in Method:
        if method != Method.WINOGRAD:
            assert correlate(f32, np.ones((2, 2)), method=method).dtype == np.float32
    assert correlate(f32, np.ones((3, 3)), method=Method.WINOGRAD).dtype == np.float32
    for kind in PoolKind:
        assert pool(f32, kind, (2, 2), padding=(1, 1)).dtype == np.float32
        assert global_pool(f32, kind).dtype == np.float32
    assert conv_transpose(f32, np.ones((2, 2)), stride=(2, 2)).dtype == np.float32
    for act in Activation:
        assert activate(f32, act).dtype == np.float32


# -- errors -------------------------------------------------------------------------


def test_bias_length_must_match_filters() -> None:
    with pytest.raises(ConvcalcError, match="2 bias value"):
        correlate(np.ones((4, 4)), np.ones((3, 3, 1, 3)), bias=[1.0, 2.0])
    with pytest.raises(ConvcalcError, match="1 bias value"):
        conv_transpose(np.ones((4, 4)), np.ones((3, 3, 1, 2)), bias=[1.0])


def test_kernel_larger_than_input() -> None:
    with pytest.raises(ConvcalcError, match="larger than the padded input"):
        correlate(np.ones((4, 4)), np.ones((5, 5)))
    with pytest.raises(ConvcalcError, match="larger than the padded input"):
        correlate(np.ones((4, 4)), np.ones((3, 3)), dilation=(2, 1))
    assert correlate(np.ones((4, 4)), np.ones((5, 5)), padding=(1, 1)).shape == (2, 2, 1)


def test_bad_shapes() -> None:
    with pytest.raises(ConvcalcError, match="an input of shape 2x2x2x2"):
        correlate(np.ones((2, 2, 2, 2)), np.ones((1, 1)))
    with pytest.raises(ConvcalcError, match="a kernel of shape 3x3x1"):
        correlate(np.ones((4, 4)), np.ones((3, 3, 1)))
    with pytest.raises(ConvcalcError, match=r"depth 2 .* does not fit 3 input channels"):
        conv_transpose(np.ones((4, 4, 3)), np.ones((3, 3, 2, 1)))


def test_transposed_full_size_is_the_output_and_its_cropped_padding() -> None:
    for n, k, s, p, d in [(3, 3, 2, 1, 1), (4, 2, 3, 0, 2), (2, 3, 1, (0, 2), 1)]:
        ax = transposed_axis(n, k, stride=s, padding=p, dilation=d)
        assert transposed_full_size(ax) == ax.pad_lo + ax.size + ax.pad_hi
    # output_padding asks for a row past the last tap: the full output holds it too
    ax = transposed_axis(2, 1, stride=2, output_padding=1)
    assert (transposed_full_size(ax), ax.size) == (4, 4)
    assert conv_transpose(
        np.ones((2, 2)), np.ones((1, 1)), stride=(2, 2), output_padding=(1, 1)
    ).shape == (4, 4, 1)


# -- pooling ------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    kind=st.sampled_from(list(PoolKind)),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    ceil=st.booleans(),
    exclude=st.booleans(),
    extra=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_pool_matches_brute_force(
    kind: PoolKind,
    k: int,
    s: int,
    d: int,
    ceil: bool,
    exclude: bool,
    extra: int,
    seed: int,
    data: st.DataObject,
) -> None:
    p = data.draw(st.integers(0, k // 2))
    n = max(1, d * (k - 1) + 1 - 2 * p - (s - 1 if ceil else 0)) + extra  # ceil may overhang
    x = rng(seed).normal(size=(n, n, 2))
    expected = brute_pool(x, kind, k, s, p, d, ceil, exclude)
    if expected is None:  # a dilated window would see only padding: refused
        with pytest.raises(ConvcalcError, match="covers only padding"):
            pool(x, kind, (k, k), stride=(s, s), padding=(p, p), dilation=(d, d), ceil=ceil)
        return
    got = pool(
        x,
        kind,
        (k, k),
        stride=(s, s),
        padding=(p, p),
        dilation=(d, d),
        ceil=ceil,
        exclude_pad=exclude,
    )
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_pytorch_ceil_mode_example() -> None:
    """n=5, k=2, s=3, p=1, ceil_mode: 2 outputs (a third would start in the padding)."""
    x = np.arange(1.0, 6.0)[None, :]
    args: dict[str, Any] = {"stride": (1, 3), "padding": (0, 1), "ceil": True}
    np.testing.assert_array_equal(pool(x, PoolKind.MAX, (1, 2), **args)[0, :, 0], [1, 4])
    # torch: window 1 covers (pad, 1): count_include_pad divides by 2
    np.testing.assert_array_equal(pool(x, PoolKind.AVG, (1, 2), **args)[0, :, 0], [0.5, 3.5])
    np.testing.assert_array_equal(
        pool(x, PoolKind.AVG, (1, 2), exclude_pad=True, **args)[0, :, 0], [1, 3.5]
    )


def test_avg_divisor_with_ceil_overrun() -> None:
    """n=6, k=4, s=3, p=1, ceil: the last window holds x5, one pad cell, two cells past.

    torch: hend = min(5 + 4, 6 + 1) = 7, so it divides by 2, not by 4.
    """
    x = np.arange(1.0, 7.0)[None, :]
    args: dict[str, Any] = {"stride": (1, 3), "padding": (0, 1), "ceil": True}
    np.testing.assert_array_equal(pool(x, PoolKind.AVG, (1, 4), **args)[0, :, 0], [1.5, 4.5, 3])
    np.testing.assert_array_equal(
        pool(x, PoolKind.AVG, (1, 4), exclude_pad=True, **args)[0, :, 0], [2, 4.5, 6]
    )
    np.testing.assert_array_equal(pool(x, PoolKind.MAX, (1, 4), **args)[0, :, 0], [3, 6, 6])


def test_avg_counts_are_the_divisors_of_the_ceil_overrun_example() -> None:
    """As above: torch divides by 4, 4, 2; excluding padding (or tf) by 3, 4, 1."""
    axes = pool_axes((1, 6), (1, 4), stride=(1, 3), padding=(0, 1), ceil=True)
    rows, cols = avg_counts(axes)
    assert (rows.tolist(), cols.tolist()) == ([1], [4, 4, 2])
    assert avg_counts(axes, exclude_pad=True)[1].tolist() == [3, 4, 1]
    assert avg_counts(axes, convention=Convention.TF)[1].tolist() == [3, 4, 1]


def test_ceil_window_may_overhang_a_small_input() -> None:
    """torch: MaxPool2d(2, ceil_mode=True) takes a 1x1 map to 1x1; AvgPool divides by 1."""
    for kind, value in [(PoolKind.MAX, -3), (PoolKind.AVG, -3), (PoolKind.L2, 3)]:
        np.testing.assert_array_equal(pool([[-3.0]], kind, (2, 2), ceil=True), [[[value]]])
    with pytest.raises(ConvcalcError, match="larger than the padded input"):
        pool([[-3.0]], PoolKind.MAX, (2, 2))


def test_tf_same_average_excludes_padding() -> None:
    ones = np.ones((3, 3, 2))
    same = (PadRule.SAME, PadRule.SAME)
    tf = pool(ones, PoolKind.AVG, (2, 2), padding=same, convention=Convention.TF)
    np.testing.assert_array_equal(tf, np.ones((2, 2, 2)))
    torch = pool(ones, PoolKind.AVG, (2, 2), padding=same)
    np.testing.assert_array_equal(torch[..., 0], [[1, 0.5], [0.5, 0.25]])


def test_max_pool_ignores_padding_and_l2_counts_it_zero() -> None:
    x = -np.ones((2, 2))
    np.testing.assert_array_equal(
        pool(x, PoolKind.MAX, (2, 2), stride=(1, 1), padding=(1, 1)), -np.ones((3, 3, 1))
    )
    l2 = pool(np.full((2, 2), 2.0), PoolKind.L2, (2, 2), stride=(1, 1), padding=(1, 1))
    np.testing.assert_array_equal(
        l2[..., 0], [[2, np.sqrt(8), 2], [np.sqrt(8), 4, np.sqrt(8)], [2, np.sqrt(8), 2]]
    )


def test_pool_padding_over_half_kernel_raises() -> None:
    with pytest.raises(ConvcalcError, match="more than half the kernel"):
        pool(np.ones((5, 5)), PoolKind.MAX, (2, 2), padding=(2, 2))


def test_dilated_pool_window_of_only_padding_raises() -> None:
    """n=1, k=2, d=2, p=1: the only window reads the two padding cells (torch gives -inf)."""
    with pytest.raises(ConvcalcError, match="window of 2 rows with dilation 2 covers only"):
        pool(np.ones((1, 3)), PoolKind.MAX, (2, 1), stride=(1, 1), padding=(1, 0), dilation=(2, 1))


def test_global_pool() -> None:
    x = rng(9).normal(size=(4, 5, 3))
    np.testing.assert_allclose(global_pool(x, PoolKind.MAX), x.max(axis=(0, 1))[None, None])
    np.testing.assert_allclose(global_pool(x, PoolKind.AVG), x.mean(axis=(0, 1))[None, None])
    np.testing.assert_allclose(
        global_pool(x, PoolKind.L2), np.sqrt((x**2).sum(axis=(0, 1)))[None, None]
    )
    assert global_pool(x, PoolKind.AVG).shape == (1, 1, 3)
    np.testing.assert_allclose(global_pool(x, PoolKind.AVG), pool(x, PoolKind.AVG, (4, 5)))


# -- transposed convolution --------------------------------------------------------


def brute_transpose(
    x: NDArray[Any],
    w: NDArray[Any],
    s: tuple[int, int],
    p: tuple[int, int],
    d: tuple[int, int],
    op: tuple[int, int],
    groups: int,
) -> NDArray[np.float64]:
    """Scatter every input value, then crop p from the start (PyTorch's definition)."""
    (h, wd, c), (kh, kw, _, fg) = x.shape, w.shape
    cg = c // groups
    size = [
        (n - 1) * s[a] - 2 * p[a] + d[a] * (k - 1) + op[a] + 1
        for a, (n, k) in enumerate([(h, kh), (wd, kw)])
    ]
    full = np.zeros((size[0] + 2 * p[0] + 10, size[1] + 2 * p[1] + 10, fg * groups))
    for r in range(h):
        for q in range(wd):
            for ch in range(c):
                g = ch // cg
                for i in range(kh):
                    for j in range(kw):
                        for f in range(fg):
                            full[r * s[0] + i * d[0], q * s[1] + j * d[1], g * fg + f] += (
                                x[r, q, ch] * w[i, j, ch, f]
                            )
    return full[p[0] : p[0] + size[0], p[1] : p[1] + size[1]]


@settings(max_examples=40, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    p=st.integers(0, 2),
    n=st.integers(1, 4),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv_transpose_matches_scatter(
    groups: int, k: int, s: int, d: int, p: int, n: int, data: st.DataObject, seed: int
) -> None:
    op = data.draw(st.integers(0, max(s, d) - 1))
    if (n - 1) * s - 2 * p + d * (k - 1) + op + 1 < 1:
        return
    r = rng(seed)
    x = r.integers(-4, 5, size=(n, n + 1, 2 * groups))
    w = r.integers(-3, 4, size=(k, k + 1, 2 * groups, 2)).astype(float)
    got = conv_transpose(
        x, w, stride=(s, s), padding=(p, p), dilation=(d, d), output_padding=(op, op), groups=groups
    )
    expected = brute_transpose(x, w, (s, s), (p, p), (d, d), (op, op), groups)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(("n", "p"), [(7, 0), (8, 1), (9, 2)])
def test_conv_transpose_is_adjoint_of_correlate(groups: int, n: int, p: int) -> None:
    x = rng(10).normal(size=(n, n + 1, 4))
    w = rng(11).normal(size=(3, 4, 4 // groups, 6))
    y_shape = correlate(x, w, stride=(2, 2), padding=(p, p), groups=groups).shape
    y = rng(12).normal(size=y_shape)
    ops = tuple((n + a + 2 * p - k) % 2 for a, k in ((0, 3), (1, 4)))
    back = conv_transpose(
        y,
        w.swapaxes(2, 3),
        stride=(2, 2),
        padding=(p, p),
        output_padding=(ops[0], ops[1]),
        groups=groups,
    )
    assert back.shape == x.shape
    lhs = np.vdot(correlate(x, w, stride=(2, 2), padding=(p, p), groups=groups), y)
    np.testing.assert_allclose(lhs, np.vdot(x, back), rtol=1e-12)


def test_conv_transpose_sizes_and_bias() -> None:
    x = np.ones((3, 3))
    assert conv_transpose(x, np.ones((3, 3)), stride=(2, 2)).shape == (7, 7, 1)
    same = conv_transpose(x, np.ones((3, 3)), stride=(2, 2), padding=(PadRule.SAME,) * 2)
    assert same.shape == (6, 6, 1)
    biased = conv_transpose(x, np.ones((1, 1, 1, 2)), bias=[1.0, -1.0])
    np.testing.assert_array_equal(biased[0, 0], [2, 0])


# -- activations ---------------------------------------------------------------------


def test_activations() -> None:
    x = np.array([-1000.0, -1.0, 0.0, 2.0, 1000.0])
    np.testing.assert_array_equal(activate(x, Activation.NONE), x)
    np.testing.assert_array_equal(activate(x, Activation.RELU), [0, 0, 0, 2, 1000])
    np.testing.assert_allclose(activate(x, Activation.LRELU), [-10, -0.01, 0, 2, 1000])
    np.testing.assert_allclose(
        activate(x, Activation.SIGMOID), [0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2)), 1]
    )
    np.testing.assert_allclose(activate(x, Activation.TANH), np.tanh(x))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(1, 3),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=2, max_size=2),
    st.sampled_from(list(PadMode)),
)
def test_pad_in_another_dtype_equals_numpy_pad(h, w, c, widths, mode):
    names = {
        PadMode.ZERO: "constant",
        PadMode.REFLECT: "reflect",
        PadMode.REPLICATE: "edge",
        PadMode.WRAP: "wrap",
    }
    if mode == PadMode.REFLECT:
        widths = [
            (min(lo, n - 1), min(hi, n - 1)) for (lo, hi), n in zip(widths, (h, w), strict=True)
        ]
    x = np.arange(h * w * c, dtype=np.uint8).reshape(h, w, c)
    got = pad(x, widths, mode, dtype=np.float32)
    want = np.pad(x.astype(np.float32), [*widths, (0, 0)], mode=names[mode])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from([PadMode.ZERO, PadMode.REFLECT, PadMode.REPLICATE]),
    st.data(),
)
def test_padded_bands_equal_rows_of_the_padded_array(h, w, top, bottom, left, right, mode, data):
    from convcalc.compute.padding import PaddedInput

    if mode == PadMode.REFLECT:
        top, bottom, left, right = (
            min(top, h - 1),
            min(bottom, h - 1),
            min(left, w - 1),
            min(right, w - 1),
        )
    x = np.arange(h * w * 2, dtype=np.uint8).reshape(h, w, 2)
    pads = [(top, bottom), (left, right)]
    whole = pad(x, pads, mode, value=0.0, dtype=np.float32)
    bands = PaddedInput(x, pads, mode, dtype=np.float32)
    assert bands.shape == whole.shape
    start = data.draw(st.integers(0, whole.shape[0] - 1))
    stop = data.draw(st.integers(start + 1, whole.shape[0]))
    np.testing.assert_array_equal(bands.rows(start, stop), whole[start:stop])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 9),
    st.integers(2, 9),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.floats(-5, 5),
    st.data(),
)
def test_pooling_invariants(h, w, c, k, s, shift, data):
    """On the same windows: l2 >= max >= avg >= min for non-negative values; max and
    avg move with a constant shift; global pooling is pooling with the whole map."""
    k = min(k, h, w)
    x = data.draw(hnp_arrays((h, w, c)))
    nonneg = np.abs(x)
    mx = pool(nonneg, PoolKind.MAX, (k, k), stride=(s, s))
    av = pool(nonneg, PoolKind.AVG, (k, k), stride=(s, s))
    l2 = pool(nonneg, PoolKind.L2, (k, k), stride=(s, s))
    assert np.all(l2 >= mx - 1e-12) and np.all(mx >= av - 1e-12)
    np.testing.assert_allclose(
        pool(x + shift, PoolKind.MAX, (k, k), stride=(s, s)),
        pool(x, PoolKind.MAX, (k, k), stride=(s, s)) + shift,
    )
    np.testing.assert_allclose(
        pool(x + shift, PoolKind.AVG, (k, k), stride=(s, s)),
        pool(x, PoolKind.AVG, (k, k), stride=(s, s)) + shift,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        global_pool(x, PoolKind.AVG), pool(x, PoolKind.AVG, (h, w)), atol=1e-12
    )
    np.testing.assert_array_equal(global_pool(x, PoolKind.MAX), pool(x, PoolKind.MAX, (h, w)))


def hnp_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[NDArray[np.float64]]:
    from hypothesis.extra import numpy as hnp

    return hnp.arrays(np.float64, shape, elements=st.floats(-100, 100, width=32))


# -- integer output: rounded and saturated (OpenCV's saturate_cast) ------------------


def saturated(values: NDArray[Any], dtype: Any) -> NDArray[Any]:
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype)


@pytest.mark.parametrize("method", [Method.DIRECT, Method.FFT, Method.IM2COL])
@pytest.mark.parametrize("pad_mode", list(PadMode))
@pytest.mark.parametrize("kernel", ["blur", "sharpen", "depth3"])
def test_integer_out_dtype_rounds_and_saturates_the_float_result(
    method: Method, pad_mode: PadMode, kernel: str
) -> None:
    x = rng(1).integers(0, 256, (150, 140, 3), dtype=np.uint8)
    w = {
        "blur": np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256,  # separable, in range
        "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),  # leaves 0-255
        "depth3": rng(2).normal(size=(3, 3, 3, 2)) * 60,  # sums channels, both signs
    }[kernel]
    bank = w if w.ndim == 4 else np.broadcast_to(w[:, :, None, None], (*w.shape, 1, 3))
    groups = 1 if kernel == "depth3" else 3
    options: dict[str, Any] = dict(
        padding=("same", "same"), pad_mode=pad_mode, groups=groups, method=method
    )
    y = correlate(x, bank, out_dtype=np.uint8, **options)
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, saturated(correlate(x, bank, **options), np.uint8))
    if kernel != "blur":  # both ends of the range are reached and clipped
        assert y.min() == 0 and y.max() == 255


def test_integer_out_dtype_applies_bias_and_activation_first() -> None:
    x = rng(3).integers(0, 256, (40, 30, 1), dtype=np.uint8)
    k = np.ones((3, 3)) / 9
    y = correlate(x, k, bias=[-100.0], activation=Activation.RELU, out_dtype=np.uint16)
    expected = saturated(
        np.maximum(ndimage.correlate(x[..., 0] / 1.0, k)[1:-1, 1:-1] - 100, 0), np.uint16
    )
    np.testing.assert_array_equal(y[..., 0], expected)


def test_uint8_blur_equals_opencv_filter2d() -> None:
    cv2 = pytest.importorskip("cv2")
    x = rng(4).integers(0, 256, (300, 280, 3), dtype=np.uint8)
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
    bank = np.broadcast_to(g[:, :, None, None], (5, 5, 1, 3))
    ours = correlate(
        x, bank, padding=("same", "same"), pad_mode=PadMode.REPLICATE, groups=3, out_dtype=np.uint8
    )
    theirs = cv2.filter2D(x, -1, g, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(ours, theirs)


@settings(max_examples=15, deadline=None)
@given(
    size=st.tuples(st.integers(130, 140), st.integers(121, 130)),
    k=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    rank_one=st.booleans(),
    channels=st.integers(1, 4),
)
def test_one_kernel_shared_by_every_channel_matches_brute_force(
    size: tuple[int, int],
    k: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    rank_one: bool,
    channels: int,
) -> None:
    # direct runs these on the HxWxC layout (column stride 1), separably when rank 1
    r = rng(sum(size))
    x = r.integers(0, 256, (*size, channels)).astype(np.float32)
    kernel = np.outer(r.normal(size=k[0]), r.normal(size=k[1])) if rank_one else r.normal(size=k)
    bank = np.broadcast_to(kernel[:, :, None, None], (*k, 1, channels)).astype(np.float32)
    y = correlate(x, bank, stride=stride, dilation=dilation, groups=channels, method=Method.DIRECT)
    expected = brute_correlate(x.astype(float), bank.astype(float), stride, dilation, channels)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())


def test_auto_method_judges_the_padded_input() -> None:
    x, k = np.zeros((120, 120)), rng().normal(size=(16, 16))  # 120²·256 MACs: below the limit
    assert auto_method(x, k) == Method.DIRECT
    assert auto_method(x, k, padding=("same", "same")) == Method.FFT  # 135²·256: above
    assert auto_method(x, k, padding=("same", "same"), stride=(2, 1)) == Method.DIRECT
    sobel = np.outer([1, 2, 1], [1, 0, -1]).astype(float)
    assert auto_method(np.zeros((999, 999, 3)), np.dstack([sobel] * 3)[..., None]) == Method.DIRECT


def test_pooling_reads_the_input_itself_when_no_window_reaches_past_it() -> None:
    from convcalc.compute.ops_nd import _pool_input
    from convcalc.compute.windows import pool_axes_nd

    x = np.arange(2 * 8 * 6, dtype=np.float32).reshape(8, 6, 2)
    fits = pool_axes_nd(x.shape[:2], (2, 3), padding=(0, 0), dilation=(1, 1))
    assert _pool_input(x, fits, PoolKind.MAX) is x
    assert _pool_input(x, fits, PoolKind.AVG) is x
    squared = _pool_input(x, fits, PoolKind.L2)
    assert squared is not x and np.array_equal(squared, x**2)
    over = pool_axes_nd((7, 6), (2, 3), padding=(0, 0), dilation=(1, 1), ceil=True)
    padded = _pool_input(x[:7], over, PoolKind.MAX)
    assert padded.shape == (8, 6, 2) and np.all(padded[7] == -np.inf)
