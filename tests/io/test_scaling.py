"""Mapping values to 0-255 / 0-65535: every scale, non-finite values, 16-bit sources."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from convcalc.calc.choices import Scale
from convcalc.io.scaling import to_uint8, to_uint16


def test_clip_rounds_and_clips() -> None:
    scaled = to_uint8(np.array([-10.0, 0.0, 100.4, 100.6, 300.0]), Scale.CLIP)
    assert scaled.array.tolist() == [0, 0, 100, 101, 255]
    assert (scaled.scale, scaled.lo, scaled.hi) == (Scale.CLIP, 0.0, 255.0)
    assert scaled.notes == ("clip: 1 values below 0 and 1 above 255 clipped",)


def test_abs_takes_magnitude_then_clips() -> None:
    scaled = to_uint8(np.array([-10.0, 3.0, -300.0]), Scale.ABS)
    assert scaled.array.tolist() == [10, 3, 255] and scaled.scale == Scale.ABS


def test_minmax_maps_range_linearly() -> None:
    scaled = to_uint8(np.array([-4.0, -2.0, 0.0, 2.0, 4.0]), Scale.MINMAX)
    assert scaled.array.tolist() == [0, 64, 128, 191, 255]
    assert (scaled.lo, scaled.hi) == (-4.0, 4.0)


def test_minmax_of_a_constant_is_zero_with_a_note() -> None:
    scaled = to_uint8(np.full((2, 2), 7.0), Scale.MINMAX)
    assert scaled.array.tolist() == [[0, 0], [0, 0]]
    assert scaled.notes == ("minmax: every value is 7, written as 0",)


def test_auto_clips_in_range_and_minmaxes_otherwise() -> None:
    inside = to_uint8(np.array([0.0, 12.0, 255.0]))
    assert inside.scale == Scale.CLIP and inside.array.tolist() == [0, 12, 255]
    outside = to_uint8(np.array([-1.0, 1.0]))
    assert outside.scale == Scale.MINMAX and outside.array.tolist() == [0, 255]


def test_auto_with_a_16bit_source() -> None:
    values = np.array([0.0, 257.0 * 100, 65535.0])
    eight = to_uint8(values, max_value=65535.0)
    assert eight.scale == Scale.CLIP and eight.array.tolist() == [0, 100, 255]
    sixteen = to_uint16(values)
    assert sixteen.array.dtype == np.uint16 and sixteen.array.tolist() == [0, 25700, 65535]


def test_non_finite_values() -> None:
    scaled = to_uint8(np.array([np.nan, np.inf, -np.inf, 1.0, 2.0]), Scale.MINMAX)
    assert scaled.array.tolist() == [0, 255, 0, 0, 255] and (scaled.lo, scaled.hi) == (1, 2)
    assert "3 NaN/inf values" in scaled.notes[-1]


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_minmax_preserves_order_and_spans_the_range(values: NDArray[np.float64]) -> None:
    out = to_uint8(values, Scale.MINMAX).array.astype(int)
    order = np.argsort(values, kind="stable")
    assert (np.diff(out[order]) >= 0).all()
    if values.max() > values.min():
        assert out.min() == 0 and out.max() == 255


# ----------------------------------------------------------------- writing


def test_minmax_of_a_tiny_range_does_not_overflow() -> None:
    for values in (np.array([0.0, 1.28894709e-307]), np.array([0.0, 1e-40], np.float32)):
        assert to_uint8(values, Scale.MINMAX).array.tolist() == [0, 255]


def test_8bit_values_to_an_8bit_image_are_kept_as_they_are() -> None:
    values = np.array([[0, 7, 255]], dtype=np.uint8)
    for scale in (Scale.AUTO, Scale.CLIP):
        scaled = to_uint8(values, scale)
        assert scaled.array is values  # no copy
        assert (scaled.scale, scaled.lo, scaled.hi, scaled.notes) == (Scale.CLIP, 0, 255, ())
    assert to_uint8(values, Scale.MINMAX).array.tolist() == [[0, 7, 255]]
    assert to_uint8(np.array([[0, 7, 28]], np.uint8), Scale.MINMAX).array.tolist() == [[0, 64, 255]]
