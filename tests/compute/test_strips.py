"""Strips: a pipeline computed a band of rows at a time equals the whole run's result."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.calc.choices import Convention, Method, PadMode, PadRule, PoolKind
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pointwise, Pool, Spec
from convcalc.compute.pipeline import Settings, Stage, estimate_bytes, run
from convcalc.compute.strip_runner import StripRunner, StripStats
from convcalc.compute.strips import (
    NotRowLocal,
    Rows,
    plan_strip,
    plan_strips,
    rows_needed,
    stage_rows,
    strip_height,
)
from convcalc.errors import ConvcalcError


def conv(kernel, text="conv", bias=None, **layer):
    return Stage(Spec(text, Conv(None, None, **layer)), (np.asarray(kernel, float),), bias)


def pool(kind, size, text="pool", **layer):
    return Stage(Spec(text, Pool(kind, (size,), **layer)))


def pointwise(name):
    return Stage(Spec(name, Pointwise(name)))


def streamed(x, stages, how, height):
    """The strips' result, the runner, and every run of input rows read."""
    geometry = stage_rows(stages, how, x.shape)
    runner = StripRunner(geometry, how)
    reads = []

    def read(rows):
        reads.append(rows)
        return x[rows.lo : rows.hi]

    parts = [runner.run(strip, read) for strip in plan_strips(geometry, height)]
    return np.concatenate(parts), runner, reads


def whole_or_error(x, stages, how):
    try:
        return run(x, stages, how).output, None
    except ConvcalcError as exc:
        return None, str(exc)


PADDINGS = st.sampled_from([0, 1, 2, 3, (0, 2), (2, 1), PadRule.SAME, PadRule.VALID, PadRule.FULL])


@st.composite
def conv_stages(draw, position):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(-3, 3), min_size=kh * kw, max_size=kh * kw))
    return conv(
        np.reshape(kernel, (kh, kw)) + 0.25,
        text=f"conv{position}",
        bias=draw(st.sampled_from([None, (0.5,)])),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 2))),
        padding=(draw(PADDINGS), draw(PADDINGS)),
        dilation=(draw(st.integers(1, 2)),),
    )


@st.composite
def pool_stages(draw, position):
    size = draw(st.integers(1, 3))
    padding = draw(st.sampled_from([0, size // 2, PadRule.SAME, PadRule.VALID]))
    return pool(
        draw(st.sampled_from(list(PoolKind))),
        size,
        text=f"pool{position}",
        stride=(draw(st.integers(1, 3)),),
        padding=(padding,),
        dilation=(draw(st.integers(1, 2)),),
        ceil=draw(st.booleans()),
    )


@st.composite
def pipelines(draw):
    count = draw(st.integers(1, 3))
    stages = []
    for position in range(1, count + 1):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "relu"]))
        if kind == "conv":
            stages.append(draw(conv_stages(position)))
        elif kind == "pool":
            stages.append(draw(pool_stages(position)))
        else:
            stages.append(pointwise(draw(st.sampled_from(["relu", "sigmoid", "softmax"]))))
    return stages


HOW = st.builds(
    Settings,
    pad_mode=st.sampled_from(list(PadMode)),
    method=st.just(Method.DIRECT),
    exclude_pad=st.booleans(),
    convention=st.sampled_from(list(Convention)),
)


@settings(max_examples=250, deadline=None)
@given(
    st.integers(1, 24),
    st.integers(1, 9),
    st.integers(1, 2),
    pipelines(),
    HOW,
    st.integers(1, 4),
    st.sampled_from([np.float64, np.float32]),
)
def test_strips_equal_the_whole_run_exactly(h, w, c, stages, how, height, dtype):
    x = np.random.default_rng(h * 100 + w).normal(size=(h, w, c)).astype(dtype)
    expected, error = whole_or_error(x, stages, how)
    try:
        got, _, _ = streamed(x, stages, how, height)
    except NotRowLocal as exc:  # computed in memory: wrap after a window layer, or SAME
        # pooling padding over half the window (dilated), which explicit padding may not be
        assert "wrap padding" in str(exc) or "(pooling padding" in str(exc)
        return
    except ConvcalcError as exc:
        assert str(exc) == error
        return
    assert error is None
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(6, 20),
    st.integers(6, 12),
    st.integers(1, 3),
    st.sampled_from([Method.FFT, Method.IM2COL, Method.WINOGRAD, Method.AUTO]),
    st.sampled_from(list(PadMode)),
)
def test_other_methods_agree_to_tolerance(h, w, height, method, pad_mode):
    x = np.random.default_rng(h).normal(size=(h, w, 2))
    stages = [conv(np.arange(9.0).reshape(3, 3), padding=(1,)), pool(PoolKind.MAX, 2)]
    how = Settings(method=method, pad_mode=pad_mode)
    got, _, _ = streamed(x, stages, how, height)
    np.testing.assert_allclose(got, run(x, stages, how).output, rtol=1e-9, atol=1e-9)


def test_a_strip_reads_its_rows_and_one_halo_row_each_side():
    geometry = stage_rows([conv(np.ones((3, 3)), padding=(1,))], Settings(), (10, 4, 1))
    top, middle, bottom = (plan_strip(geometry, lo, hi) for lo, hi in [(0, 3), (3, 6), (7, 10)])
    assert top.spans[0].rows_in == (Rows(0, 4),) and (top.spans[0].top, top.spans[0].bottom) == (
        1,
        0,
    )
    assert middle.spans[0].rows_in == (Rows(2, 7),) and middle.spans[0].top == 0
    assert bottom.spans[0].rows_in == (Rows(6, 10),) and bottom.spans[0].bottom == 1


def test_halo_goes_back_through_every_layer():
    # conv 3x3 (halo 1 each side), then maxpool 2 (rows 2r, 2r+1): output rows [2, 4) of
    # the pool need conv rows [4, 8), which need input rows [3, 9)
    stages = [conv(np.ones((3, 3))), pool(PoolKind.MAX, 2)]
    strip = plan_strip(stage_rows(stages, Settings(), (20, 6, 1)), 2, 4)
    assert [span.rows_out for span in strip.spans] == [(Rows(4, 8),), (Rows(2, 4),)]
    assert strip.spans[0].rows_in == (Rows(4, 10),)
    assert rows_needed(stage_rows(stages, Settings(), (20, 6, 1)), 2) == 6


def test_reflect_padding_wider_than_the_strip_widens_it_at_the_edges():
    # full padding (2 rows of a 3x3) with reflect needs rows 0-2 at the top
    x = np.random.default_rng(3).normal(size=(9, 5, 1))
    stages = [conv(np.arange(9.0).reshape(3, 3), padding=(PadRule.FULL,))]
    how = Settings(pad_mode=PadMode.REFLECT)
    got, _, reads = streamed(x, stages, how, 1)
    np.testing.assert_array_equal(got, run(x, stages, how).output)
    assert reads[0] == Rows(0, 3)


def test_wrap_padding_reads_the_far_edge_rows():
    x = np.random.default_rng(4).normal(size=(8, 5, 1))
    stages = [pointwise("relu"), conv(np.arange(9.0).reshape(3, 3), padding=(2,))]
    how = Settings(pad_mode=PadMode.WRAP)
    got, _, reads = streamed(x, stages, how, 2)
    np.testing.assert_array_equal(got, run(x, stages, how).output)
    assert reads[:2] == [Rows(6, 8, far=True), Rows(0, 2)]  # padded rows -2..1


def test_layers_that_need_the_whole_input_are_not_row_local():
    shape = (8, 8, 1)
    for stage in [
        Stage(Spec("gap", GlobalPool(PoolKind.AVG))),
        Stage(Spec("deconv", Deconv(None, None)), (np.ones((2, 2)),)),
    ]:
        with pytest.raises(NotRowLocal, match="needs the whole input"):
            stage_rows([stage], Settings(), shape)
    wrapped = [pool(PoolKind.MAX, 2), conv(np.ones((3, 3)), padding=(1,))]
    with pytest.raises(NotRowLocal, match="wrap padding"):
        stage_rows(wrapped, Settings(pad_mode=PadMode.WRAP), shape)


def test_layer_errors_are_named_as_the_whole_run_names_them():
    stages = [pointwise("relu"), conv(np.ones((5, 5)))]
    x = np.zeros((3, 8, 1))
    _, error = whole_or_error(x, stages, Settings())
    with pytest.raises(ConvcalcError) as exc:
        stage_rows(stages, Settings(), x.shape)
    assert str(exc.value) == error and error.startswith("layer 2 (conv): ")


def test_strips_of_one_row_equal_the_whole_run_bit_for_bit():
    x = np.random.default_rng(5).normal(size=(140, 130, 1)).astype(np.float32)
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
    stages = [conv(g, padding=(2,)), conv(np.outer([1, 2, 1], [1, 0, -1]), padding=(1,))]
    how = Settings(method=Method.DIRECT)
    got, _, _ = streamed(x, stages, how, 1)
    np.testing.assert_array_equal(got, run(x, stages, how).output)


def test_at_most_a_strip_and_its_halo_is_read_at_once():
    x = np.random.default_rng(6).normal(size=(50, 7, 1))
    stages = [conv(np.ones((3, 3)), padding=(1,)), conv(np.ones((5, 1)), padding=(2, 0))]
    _, _, reads = streamed(x, stages, Settings(), 4)
    assert max(r.hi - r.lo for r in reads) <= 4 + 2 + 4  # the strip, then each layer's halo
    assert sum(r.hi - r.lo for r in reads) <= 50 + 6 * len(reads)
    assert [r.lo for r in reads] == sorted(r.lo for r in reads)


def test_strip_height_keeps_the_working_set_within_the_budget():
    stages = [conv(np.ones((3, 3)), padding=(1,)), pool(PoolKind.AVG, 2)]
    how = Settings()
    geometry = stage_rows(stages, how, (1000, 300, 2))

    def working(shape):
        return estimate_bytes(shape, stages, how, 8)

    for budget in (1, 10**5, 10**6, 10**7):
        height = strip_height(geometry, budget, working)
        assert height >= 1
        fits = working((rows_needed(geometry, height), 300, 2)) <= budget
        assert fits or height == 1
        if height < 500:
            assert working((rows_needed(geometry, height + 1), 300, 2)) > budget


def test_auto_picks_the_method_for_the_whole_input_once():
    # auto picks FFT for 230x230 and a 17x17 kernel, and direct for a strip of 40 rows
    x = np.random.default_rng(7).normal(size=(230, 230, 1))
    stages = [conv(np.random.default_rng(8).normal(size=(17, 17)), text="big", padding=(8,))]
    got, runner, _ = streamed(x, stages, Settings(), 40)
    whole = run(x, stages, Settings())
    assert runner.notes == [n for n in whole.notes if "auto" in n] == ["big: method fft (auto)"]
    np.testing.assert_allclose(got, whole.output, atol=1e-9)


def test_not_finite_values_are_counted_over_the_strips():
    x = np.ones((10, 4, 1))
    x[3, 1] = np.inf
    stages = [conv(np.ones((3, 3)), padding=(1,))]
    _, runner, _ = streamed(x, stages, Settings(), 2)
    whole = run(x, stages, Settings())
    assert runner.missing == int((~np.isfinite(whole.output)).sum()) == 9
    assert runner.values == whole.output.size


def test_strip_stats_are_the_whole_arrays():
    rng = np.random.default_rng(9)
    a = rng.normal(size=(37, 11, 2)).astype(np.float32)
    stats = StripStats()
    for lo in range(0, 37, 5):
        stats.add(a[lo : lo + 5])
    got = stats.stats()
    assert got["min"] == float(a.min()) and got["max"] == float(a.max())
    assert got["mean"] == pytest.approx(float(a.mean(dtype=np.float64)), rel=1e-12)
    a[20, 3, 1] = np.nan
    stats = StripStats()
    for lo in range(0, 37, 5):
        stats.add(a[lo : lo + 5])
    assert all(np.isnan(v) for v in stats.stats().values())
