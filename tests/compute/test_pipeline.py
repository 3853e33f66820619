"""The apply pipeline: kernel banks, channel modes, stages in order."""

import numpy as np
import pytest
from scipy import ndimage

from convcalc.calc.choices import ChannelMode, PoolKind
from convcalc.calc.grammar import parse_spec
from convcalc.calc.layers import Conv, Pool, Spec
from convcalc.compute import pipeline
from convcalc.compute.kernels import get_preset
from convcalc.compute.pipeline import Settings, Stage, filter_major, kernel_bank, run
from convcalc.errors import ConvcalcError

UFLDL = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)


def conv_stage(*kernels, bias=None, **layer):
    return Stage(
        Spec("conv", Conv(None, None, **layer)), tuple(np.asarray(k, float) for k in kernels), bias
    )


def test_textbook_ufldl_example():
    out = run(UFLDL[:, :, None], [conv_stage([[1, 0, 1], [0, 1, 0], [1, 0, 1]])]).output
    assert out[:, :, 0].tolist() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]


def test_textbook_vertical_edge():
    image = np.array([[10] * 3 + [0] * 3] * 6)[:, :, None]
    out = run(image, [conv_stage(get_preset("edge-v"))]).output
    assert out[:, :, 0].tolist() == [[0, 30, 30, 0]] * 4


def test_textbook_max_pool():
    x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])[:, :, None]
    out = run(x, [Stage(Spec("maxpool:2", Pool(PoolKind.MAX, (2,))))]).output
    assert out[:, :, 0].tolist() == [[9, 2], [6, 3]]


def test_each_filters_every_channel_like_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 8, 3))
    k = rng.normal(size=(3, 3))
    out = run(x, [conv_stage(k, padding=(1,))]).output
    for c in range(3):
        expected = ndimage.correlate(x[:, :, c], k, mode="constant")
        np.testing.assert_allclose(out[:, :, c], expected, atol=1e-12)


def test_sum_mode_and_matching_depth_sum_over_channels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 7, 3))
    k = rng.normal(size=(3, 3))
    summed = run(x, [conv_stage(k)], Settings(channels=ChannelMode.SUM)).output
    deep = run(x, [conv_stage(np.repeat(k[:, :, None], 3, axis=2))]).output
    expected = sum(ndimage.correlate(x[:, :, c], k, mode="constant")[1:-1, 1:-1] for c in range(3))
    np.testing.assert_allclose(summed[:, :, 0], expected, atol=1e-12)
    np.testing.assert_allclose(deep, summed, atol=1e-12)


def test_several_filters_with_bias_are_filter_major():
    x = np.arange(25.0).reshape(5, 5)[:, :, None].repeat(2, axis=2)
    x[:, :, 1] *= -1
    ones, ident = np.ones((3, 3)), get_preset("identity")
    out = run(x, [conv_stage(ones, ident, bias=(1.0, 10.0))]).output
    assert out.shape == (3, 3, 4)
    np.testing.assert_allclose(out[:, :, 0], ndimage.correlate(x[:, :, 0], ones)[1:-1, 1:-1] + 1)
    np.testing.assert_allclose(out[:, :, 1], -out[:, :, 0] + 2)
    np.testing.assert_allclose(out[:, :, 2], x[1:-1, 1:-1, 0] + 10)
    np.testing.assert_allclose(out[:, :, 3], x[1:-1, 1:-1, 1] + 10)


def test_filter_major_reorders_channels():
    y = np.arange(2 * 3)[None, None, :].astype(float)  # c·F + f with C=2, F=3
    assert filter_major(y, 2)[0, 0].tolist() == [0, 3, 1, 4, 2, 5]


def test_kernel_bank_errors():
    with pytest.raises(ConvcalcError, match="depth 2 does not match the input's 3"):
        kernel_bank([np.ones((3, 3, 2))], 3, ChannelMode.EACH)
    with pytest.raises(ConvcalcError, match="same size"):
        kernel_bank([np.ones((3, 3)), np.ones((5, 5))], 1, ChannelMode.EACH)


def test_pipeline_runs_stages_in_order():
    x = np.random.default_rng(2).normal(size=(12, 12, 1))
    stages = [
        Stage(parse_spec("conv:k=laplace4"), (get_preset("laplace4"),)),
        Stage(parse_spec("relu")),
        Stage(parse_spec("maxpool:2")),
    ]
    out = run(x, stages).output
    lap = ndimage.correlate(x[:, :, 0], get_preset("laplace4"))[1:-1, 1:-1]
    relu = np.maximum(lap, 0)
    expected = relu.reshape(5, 2, 5, 2).max(axis=(1, 3))
    np.testing.assert_allclose(out[:, :, 0], expected, atol=1e-12)


def test_layers_apply_cannot_run_are_refused():
    with pytest.raises(ConvcalcError, match="cannot be applied"):
        run(np.ones((4, 4, 1)), [Stage(parse_spec("fc:10"))])


def test_mixed_kernel_depths_are_refused():
    with pytest.raises(ConvcalcError, match="mixes 2-D kernels"):
        kernel_bank([np.ones((3, 3)), np.ones((3, 3, 3))], 3, ChannelMode.EACH)


def test_a_two_d_input_is_one_channel():
    out = run(UFLDL, [conv_stage([[1, 0, 1], [0, 1, 0], [1, 0, 1]])]).output
    assert out.shape == (3, 3, 1)


def test_stays_8bit_only_for_blurs_of_8bit_input():
    x = np.zeros((4, 4, 3), np.uint8)
    each, summed = Settings(), Settings(channels=ChannelMode.SUM)
    gauss = conv_stage(get_preset("gauss5"))
    assert pipeline.stays_8bit(x, [gauss], each)
    assert pipeline.stays_8bit(x, [conv_stage(np.ones((3, 3, 3)) / 27)], each)
    assert not pipeline.stays_8bit(x, [gauss], summed)  # three channels summed: up to 765
    assert pipeline.stays_8bit(x[..., :1], [gauss], summed)
    assert not pipeline.stays_8bit(x.astype(np.float32), [gauss], each)
    assert not pipeline.stays_8bit(x, [conv_stage(get_preset("sharpen"))], each)
    assert not pipeline.stays_8bit(x, [conv_stage(get_preset("gauss5"), bias=[1.0])], each)
    assert not pipeline.stays_8bit(x, [gauss, gauss], each)
    assert not pipeline.stays_8bit(x, [Stage(parse_spec("maxpool:2"))], each)


def preset_stage(text):
    spec = parse_spec(text)
    source = getattr(spec.layer, "source", None)
    return Stage(spec, tuple(get_preset(text) for text in source or ()))


@pytest.mark.parametrize(
    "specs", [["conv:k=gauss5,p=same"], ["conv:k=sharpen", "maxpool:2"], ["maxpool:2"], ["relu"]]
)
def test_run_with_out_dtype_saturates_the_float_result(specs):
    x = np.random.default_rng(5).integers(0, 256, (60, 50, 3), dtype=np.uint8)
    stages = [preset_stage(text) for text in specs]
    float_result = run(x, stages).output
    result = run(x, stages, out_dtype=np.uint8).output
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, np.clip(np.rint(float_result), 0, 255))


def test_values_that_overflow_are_counted_even_when_their_sum_would_hide_them() -> None:
    # 3e38 + 3e38 overflows float32 in the sum only: every value is finite
    big = np.full((4, 4, 1), 1.5e38, dtype=np.float32)
    assert pipeline.not_finite(big) == 0
    big[1, 2, 0], big[3, 3, 0] = np.inf, np.nan
    assert pipeline.not_finite(big) == 2
    assert pipeline.not_finite(np.array([[np.inf, -np.inf]])) == 2
    assert pipeline.not_finite(np.arange(4)) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_the_smooth_activations_are_pytorchs(dtype: type) -> None:
    from scipy.special import erf

    x = np.linspace(-6, 6, 49).reshape(7, 7, 1).astype(dtype)
    v = x.astype(np.float64)
    sigmoid = 1 / (1 + np.exp(-v))
    expected = {
        "gelu": 0.5 * v * (1 + erf(v / np.sqrt(2))),
        "silu": v * sigmoid,
        "swish": v * sigmoid,
        "hardswish": v * np.clip(v + 3, 0, 6) / 6,
        "hsigmoid": np.clip(v + 3, 0, 6) / 6,
        "identity": v,
    }
    for name, values in expected.items():
        out = run(x, [Stage(parse_spec(name))]).output
        assert out.dtype == (np.float32 if dtype == np.float32 else np.float64), name
        tolerance = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out, values, rtol=tolerance, atol=tolerance, err_msg=name)
