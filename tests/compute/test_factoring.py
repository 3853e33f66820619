"""Exact separable factoring (`convcalc.compute.factoring`)."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcalc.compute.factoring import separable_factors
from convcalc.compute.kernels import get_preset
from convcalc.io.kernels import parse_kernel
from tests.compute.test_kernels import NOT_RANK_ONE, RANK_ONE


@pytest.mark.parametrize("name", RANK_ONE)
def test_rank_one_presets_are_separated(name):
    kernel = get_preset(name)
    factors = separable_factors(kernel)
    assert factors is not None
    column, row = factors
    assert column.shape == (kernel.shape[0],)
    assert row.shape == (kernel.shape[1],)
    np.testing.assert_allclose(np.outer(column, row), kernel, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", NOT_RANK_ONE)
def test_other_presets_are_not_separable(name):
    assert separable_factors(get_preset(name)) is None


def test_sobel_factors_are_smoothing_times_derivative():
    column, row = separable_factors(get_preset("sobel-x"))
    np.testing.assert_array_equal(column, [1, 2, 1])
    np.testing.assert_array_equal(row, [-1, 0, 1])
    assert not np.signbit(row[1])


def test_dyadic_kernels_get_exact_factors():
    column, row = separable_factors(get_preset("gauss5"))
    np.testing.assert_array_equal(column, [1, 4, 6, 4, 1])
    np.testing.assert_array_equal(row, np.array([1, 4, 6, 4, 1]) / 256)
    for kernel in (np.outer([3, -6, 9], [2, 0, -5]) / 64, np.outer([-1, -2], [4, 8, 4])):
        column, row = separable_factors(kernel)
        np.testing.assert_array_equal(np.outer(column, row), kernel)  # exactly
        assert column[int(np.abs(column).argmax())] > 0
    column, row = separable_factors(np.ones((3, 3)) / 9)  # not dyadic: the pivot's factors
    np.testing.assert_allclose(np.outer(column, row), np.ones((3, 3)) / 9, rtol=1e-15)


def test_separable_edge_cases():
    assert separable_factors(parse_kernel("gauss:sigma=1.3")) is not None
    assert separable_factors(np.ones((3, 3, 2))) is None
    column, row = separable_factors(np.zeros((2, 3)))
    np.testing.assert_array_equal(np.outer(column, row), np.zeros((2, 3)))
    nearly = np.outer([1.0, 2.0], [3.0, 4.0]) + np.array([[0, 0], [0, 1e-6]])
    assert separable_factors(nearly) is None
    assert separable_factors(nearly, rtol=1e-5) is not None


magnitudes = st.one_of(st.just(0.0), st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3))


def vectors(length):
    return hnp.arrays(np.float64, length, elements=magnitudes).filter(lambda v: bool(v.any()))


@st.composite
def outer_pairs(draw, count):
    """`count` pairs of non-zero vectors, all columns of one length, all rows of another."""
    rows, cols = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    return [(draw(vectors(rows)), draw(vectors(cols))) for _ in range(count)]


@given(outer_pairs(1))
def test_outer_products_are_recognised_and_reproduced(pairs):
    ((u, v),) = pairs
    kernel = np.outer(u, v)
    factors = separable_factors(kernel)
    assert factors is not None
    column, row = factors
    scale = np.abs(kernel).max()
    np.testing.assert_allclose(np.outer(column, row), kernel, rtol=0, atol=1e-12 * scale)


@given(outer_pairs(2))
def test_sums_of_two_independent_outer_products_are_not_separable(pairs):
    (a, b), (c, d) = pairs
    kernel = np.outer(a, b) + np.outer(c, d)
    singular = np.linalg.svd(kernel, compute_uv=False)
    assume(singular.size > 1 and singular[1] > 1e-6 * singular[0])
    assert separable_factors(kernel) is None
