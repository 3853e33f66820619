"""Shared array rules (`convcalc.compute.arrays`): the quick finiteness check."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.compute.arrays import sum_is_finite


@settings(max_examples=80, deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple),
    dtype=st.sampled_from([np.float32, np.float64]),
    bad=st.sampled_from([np.nan, np.inf, -np.inf, None]),
    where=st.integers(0, 10**6),
    strided=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_sum_is_finite_exactly_when_every_value_is(
    shape: tuple[int, ...],
    dtype: type,
    bad: float | None,
    where: int,
    strided: bool,
    seed: int,
) -> None:
    x = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    if bad is not None:
        x.flat[where % x.size] = bad
    view = x[..., ::2] if strided else x
    assert sum_is_finite(view) == bool(np.isfinite(view).all())


def test_an_overflowing_sum_of_finite_values_says_look_closer() -> None:
    x = np.full((4, 4), 3e38, np.float32)
    assert np.isfinite(x).all() and not sum_is_finite(x)


def test_integer_arrays_are_finite() -> None:
    assert sum_is_finite(np.array([[2**62, 2**62]]))


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 3 * 4096 + 100),
    rows=st.sampled_from([1, 3]),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.integers(0, 10**6),
)
def test_a_bad_value_is_found_in_the_blocks_and_in_the_rest(
    size: int, rows: int, bad: float, where: int
) -> None:
    # long rows are summed in blocks of values, the remainder apart: both must see it
    x = np.ones((rows, size), np.float32)
    assert sum_is_finite(x)
    x.flat[where % x.size] = bad
    assert not sum_is_finite(x)
    assert not sum_is_finite(x.reshape(-1))
