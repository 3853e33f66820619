"""Per-axis output sizes against brute-force window counts and the classic numbers."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcalc.calc.choices import Convention, PadRule
from convcalc.calc.geometry import (
    conv_axis,
    effective_kernel,
    find_targets,
    pool_axis,
    same_padding,
    transposed_axis,
)
from convcalc.errors import ConvcalcError

sizes = st.integers(1, 40)
kernels = st.integers(1, 7)
strides = st.integers(1, 5)
dilations = st.integers(1, 3)


def window_starts(padded: int, span: int, stride: int) -> list[int]:
    """Every start position of a window of `span` that fits in `padded` cells."""
    return [i for i in range(padded) if i % stride == 0 and i + span <= padded]


def covered(n: int, lo: int, span: int, stride: int, dilation: int, count: int) -> set[int]:
    """Input indices (0..n-1) touched by any tap of any of `count` windows."""
    taps = range(0, span, dilation)
    return {i * stride + t - lo for i in range(count) for t in taps} & set(range(n))


@given(sizes, kernels, strides, st.integers(0, 4), dilations)
def test_conv_size_is_the_number_of_window_starts(n, k, s, p, d):
    span = effective_kernel(k, d)
    if span > n + 2 * p:
        with pytest.raises(ConvcalcError, match="larger than the padded input"):
            conv_axis(n, k, stride=s, padding=p, dilation=d)
        return
    ax = conv_axis(n, k, stride=s, padding=p, dilation=d)
    starts = window_starts(n + 2 * p, span, s)
    assert ax.size == len(starts)
    assert ax.exact == (starts[-1] + span == n + 2 * p)
    last_end = starts[-1] + span - p  # first input index past the last window
    assert ax.uncovered == min(n, max(0, n - last_end))


@given(sizes, kernels, strides, st.integers(0, 3), dilations)
def test_pool_ceil_matches_pytorch_rule_by_enumeration(n, k, s, p, d):
    """ceil_mode: add windows until the padded input is covered, none starting in the
    right padding."""
    p = min(p, k // 2)
    span = effective_kernel(k, d)
    padded = n + 2 * p
    if span > padded:
        return
    starts = []
    start = 0
    while start + span <= padded or (starts and starts[-1] + span < padded):
        if start >= n + p and start + span > padded:
            break
        starts.append(start)
        start += s
    ax = pool_axis(n, k, stride=s, padding=p, dilation=d, ceil=True)
    assert ax.size == len(starts)


@given(sizes, kernels, strides, dilations)
def test_same_gives_ceil_n_over_s_and_covers_every_input(n, k, s, d):
    ax = conv_axis(n, k, stride=s, padding=PadRule.SAME, dilation=d)
    assert ax.size == math.ceil(n / s)
    assert ax.pad_hi - ax.pad_lo in (0, 1)
    span = effective_kernel(k, d)
    padded = n + ax.pad_lo + ax.pad_hi
    assert len(window_starts(padded, span, s)) == ax.size
    if d == 1 and span >= s:  # no holes: every input but the trailing uncovered is seen
        assert covered(n, ax.pad_lo, span, s, d, ax.size) >= set(range(n)) - set(
            range(n - ax.uncovered, n)
        )


@given(sizes, kernels, strides, dilations)
def test_valid_is_tensorflow_ceil_formula(n, k, s, d):
    span = effective_kernel(k, d)
    if span > n:
        return
    ax = conv_axis(n, k, stride=s, padding=PadRule.VALID, dilation=d)
    assert ax.size == math.ceil((n - span + 1) / s)
    assert (ax.pad_lo, ax.pad_hi) == (0, 0)


@given(sizes, kernels, dilations)
def test_full_padding_grows_by_the_span(n, k, d):
    ax = conv_axis(n, k, padding=PadRule.FULL, dilation=d)
    assert ax.size == n + effective_kernel(k, d) - 1


@given(sizes, kernels, strides, st.integers(0, 3), dilations, st.data())
def test_transposed_inverts_conv(n, k, s, p, d, data):
    """A transposed conv with matching output_padding gives back the conv's input size."""
    span = effective_kernel(k, d)
    if span > n + 2 * p:
        return
    forward = conv_axis(n, k, stride=s, padding=p, dilation=d)
    reach = n + 2 * p - span
    output_padding = reach % s
    if output_padding >= max(s, d):
        return
    back = transposed_axis(
        forward.size, k, stride=s, padding=p, dilation=d, output_padding=output_padding
    )
    assert back.size == n


@given(sizes, kernels, strides)
def test_transposed_tensorflow_same_and_valid(n, k, s):
    assert transposed_axis(n, k, stride=s, padding=PadRule.SAME).size == n * s
    assert transposed_axis(n, k, stride=s, padding=PadRule.VALID).size == n * s + max(k - s, 0)


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "expected"),
    [
        (7, 3, 1, 0, 5),  # the classic 7x7 with 3x3
        (7, 3, 2, 0, 3),
        (5, 3, 1, 1, 5),  # padding 1 keeps 5
        (32, 5, 1, 0, 28),
        (28, 5, 1, 0, 24),
        (32, 5, 1, 2, 32),
        (100, 10, 1, 0, 91),
        (227, 11, 4, 0, 55),
        (5, 3, 2, 1, 3),
        (224, 7, 2, 3, 112),
    ],
)
def test_classic_worked_numbers(n, k, s, p, expected):
    assert conv_axis(n, k, stride=s, padding=p).size == expected


def test_formula_is_filled_in():
    assert conv_axis(7, 3, stride=2).formula == "(7 + 2·0 − 3)/2 + 1 = 3"
    assert conv_axis(8, 3, stride=2).formula == "⌊(8 + 2·0 − 3)/2⌋ + 1 = 3"


def test_inexact_reports_uncovered_rows():
    ax = conv_axis(8, 3, stride=2)
    assert not ax.exact
    assert ax.uncovered == 1


def test_pytorch_ceil_example_gives_two_not_three():
    ax = pool_axis(5, 2, stride=3, padding=1, ceil=True)
    assert ax.size == 2
    assert pool_axis(5, 2, stride=3, padding=1).size == 2
    assert pool_axis(6, 2, stride=3, padding=0, ceil=True).size == 2
    assert pool_axis(7, 2, stride=2, ceil=True).size == 4
    assert pool_axis(7, 2, stride=2).size == 3


def test_caffe_pooling_rounds_up():
    assert pool_axis(7, 2, convention=Convention.CAFFE).size == 4
    assert pool_axis(112, 3, stride=2, convention=Convention.CAFFE).size == 56
    assert pool_axis(112, 3, stride=2).size == 55


def test_same_pooling_28_to_14():
    ax = pool_axis(28, 2, padding=PadRule.SAME)
    assert ax.size == 14
    assert (ax.pad_lo, ax.pad_hi) == (0, 0)


def test_same_split_puts_the_extra_one_after():
    assert same_padding(28, 3, 2) == (0, 1)
    assert same_padding(7, 4, 1) == (1, 2)
    assert same_padding(224, 7, 2) == (2, 3)


def test_same_with_dilation_and_stride_notes_tensorflow_refusal():
    ax = conv_axis(32, 3, stride=2, dilation=2, padding=PadRule.SAME, convention=Convention.TF)
    assert any("TensorFlow rejects" in note for note in ax.notes)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: conv_axis(7, 9), "kernel 9"),
        (lambda: conv_axis(7, 3, stride=0), "stride 0"),
        (lambda: conv_axis(7, 3, padding=-1), "padding -1"),
        (lambda: conv_axis(0, 3), "n 0"),
        (lambda: pool_axis(7, 2, padding=2), "pooling padding 2"),
        (lambda: transposed_axis(3, 3, stride=2, output_padding=2), "output_padding 2"),
        (lambda: conv_axis(5, 3, dilation=3), "dilation 3"),
    ],
)
def test_impossible_layers_name_the_value(call, fragment):
    with pytest.raises(ConvcalcError, match=fragment):
        call()


def test_find_targets_includes_the_classic_stride_two():
    solutions = find_targets(224, 112, kernels=[3])
    assert any(sol.stride == 2 and sol.padding == 1 and sol.dilation == 1 for sol in solutions)
    for sol in solutions:
        ax = conv_axis(
            224, sol.kernel, stride=sol.stride, padding=sol.padding, dilation=sol.dilation
        )
        assert ax.size == 112


def test_find_targets_upsampling_uses_transposed():
    solutions = find_targets(7, 14, kernels=[3], strides=[2])
    transposed = [sol for sol in solutions if sol.transposed]
    assert transposed
    for sol in transposed:
        ax = transposed_axis(
            7,
            sol.kernel,
            stride=sol.stride,
            padding=sol.padding,
            dilation=sol.dilation,
            output_padding=sol.output_padding,
        )
        assert ax.size == 14


def test_convention_rules_for_padding_and_same():
    assert pool_axis(7, 3, padding=2, convention=Convention.CAFFE).size == 3  # Caffe: p < k
    with pytest.raises(ConvcalcError, match="Caffe"):
        pool_axis(7, 3, padding=3, convention=Convention.CAFFE)
    with pytest.raises(ConvcalcError, match="more than half"):
        pool_axis(7, 3, padding=2)
    torch_same = conv_axis(28, 3, stride=2, padding=PadRule.SAME)
    assert any("PyTorch has no SAME" in note for note in torch_same.notes)
    assert not conv_axis(28, 3, stride=2, padding=PadRule.SAME, convention=Convention.TF).notes
    caffe_same = pool_axis(28, 2, padding=PadRule.SAME, convention=Convention.CAFFE)
    assert any("Caffe has no SAME" in note for note in caffe_same.notes)
