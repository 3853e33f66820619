"""convcalc.present.frames: what the frames show, the sampling and the cap, bad requests."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import AnimKind, ChannelMode, PadMode, PadRule, PoolKind
from convcalc.compute import ops
from convcalc.errors import ConvcalcError
from convcalc.present.frames import AnimationRequest, plan, states, value_text
from tests.conftest import CS231N_X as CS231N

UFLDL = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)
CROSS = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])


# -- sampling and the cap ----------------------------------------------------------------


def test_big_outputs_are_sampled_with_the_last_position_kept_and_a_note() -> None:
    request = AnimationRequest(np.arange(40 * 40).reshape(40, 40), CROSS)
    p = plan(request, max_frames=50)
    indices = [s.index for s in p.steps]
    assert p.positions == 38 * 38
    assert len(indices) + 1 <= 50
    assert indices[-1] == 38 * 38 - 1 and indices[0] == 0
    assert len(set(np.diff(indices[:-1]))) == 1
    assert any("every 31st" in n and "at most 50" in n for n in p.notes)


@pytest.mark.parametrize(("max_frames", "count"), [(10, 10), (9, 6), (3, 3)])
def test_the_cap_counts_the_final_frame(max_frames: int, count: int) -> None:
    p = plan(AnimationRequest(UFLDL, CROSS), max_frames=max_frames)
    assert len(p.steps) + 1 == count
    assert p.steps[-1].index == 8


# -- what the frames show ----------------------------------------------------------------


def test_captions_add_up_to_the_output_of_ops() -> None:
    request = AnimationRequest(UFLDL, SOBEL, stride=(2, 2), padding=(1, 1))
    p = plan(request)
    expected = ops.correlate(UFLDL, SOBEL, stride=(2, 2), padding=(1, 1))[..., 0]
    np.testing.assert_array_equal(p.right, expected)
    for step in p.steps:
        found = re.fullmatch(r"(out\[\d,\d\]) = (.*) = (-?\d+)", step.caption)
        assert found is not None
        lhs, terms, result = found.groups()
        products = [
            a * b for a, b in (map(float, re.findall(r"-?\d+", t)) for t in terms.split(" + "))
        ]
        assert lhs == "out[{},{}]".format(*step.position)
        assert sum(products) == float(result) == expected[step.position]
    assert p.steps[0].caption == (
        "out[0,0] = 0·1 + 0·0 + 0·(-1) + 0·2 + 1·0 + 1·(-2) + 0·1 + 0·0 + 1·(-1) = -3"
    )


def test_pooling_captions() -> None:
    x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    p = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_MAX))
    assert [s.caption for s in p.steps] == [
        "out[0,0] = max(1, 3, 2, 9) = 9",
        "out[0,1] = max(2, 1, 1, 1) = 2",
        "out[1,0] = max(1, 3, 5, 6) = 6",
        "out[1,1] = max(2, 3, 1, 2) = 3",
    ]
    padded = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_MAX, padding=(1, 1)))
    assert padded.steps[0].caption == "out[0,0] = max(1) = 1"  # padding never wins
    avg = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_AVG, padding=(1, 1)))
    assert avg.steps[0].caption == "out[0,0] = (0 + 0 + 0 + 1)/4 = 0.25"
    assert avg.right[0, 0] == ops.pool(x, PoolKind.AVG, (2, 2), padding=(1, 1))[0, 0, 0]


def test_transposed_accumulates_to_the_output_of_ops() -> None:
    x, w = np.array([[1, 2, 0], [3, -1, 2]]), np.array([[1, 2], [0, -1]])
    request = AnimationRequest(
        x,
        w,
        kind=AnimKind.TRANSPOSED,
        stride=(2, 2),
        padding=(1, 1),
        dilation=(2, 1),
        output_padding=(1, 0),
    )
    p = plan(request)
    expected = ops.conv_transpose(
        x, w, stride=(2, 2), padding=(1, 1), dilation=(2, 1), output_padding=(1, 0)
    )[..., 0]
    *_, (last, accumulated, touched) = states(p)
    top, left, h, wd = p.right_box
    np.testing.assert_array_equal(accumulated[top : top + h, left : left + wd], expected)
    np.testing.assert_array_equal(p.right[top : top + h, left : left + wd], expected)
    assert last.index == x.size - 1 and touched.any()
    assert p.steps[1].target == ((0, 2), (0, 3), (2, 2), (2, 3))
    assert p.steps[1].caption == "in[0,1] = 2: out rows -1 to 1 step 2, cols 1 to 2 += 2·kernel"
    assert "cropped" in p.final_caption


def test_colour_input_with_a_2d_kernel_filters_each_channel_as_apply_does() -> None:
    x = np.stack([UFLDL, UFLDL * 3, UFLDL * 2], axis=2)
    p = plan(AnimationRequest(x, CROSS))
    expected = ops.correlate(UFLDL, CROSS)[..., 0]
    assert p.right_slices == 3 and p.sees == ((0,), (1,), (2,))
    for c, factor in enumerate((1, 3, 2)):
        np.testing.assert_array_equal(p.right[:, 4 * c : 4 * c + 3], factor * expected)
    assert np.isnan(p.right[:, 3]).all()


def test_same_padding_and_reflect_mode_are_in_the_title() -> None:
    p = plan(
        AnimationRequest(
            UFLDL, CROSS, padding=(PadRule.SAME, PadRule.SAME), pad_mode=PadMode.REFLECT
        )
    )
    assert p.title == "conv 3x3 · stride 1 · reflect padding same 1"
    assert p.left[0, 0] == UFLDL[1, 1]
    pooled = plan(
        AnimationRequest(
            UFLDL, (2, 2), kind=AnimKind.POOL_AVG, padding=(1, 1), pad_mode=PadMode.REFLECT
        )
    )
    assert pooled.title == "avg pool 2x2 · stride 2 · padding 1"
    assert any("reflect does not apply to pooling" in n for n in pooled.notes)


# -- bad requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plan(AnimationRequest(UFLDL, np.ones((7, 7)))), "kernel 7"),
        (lambda: plan(AnimationRequest(UFLDL, np.ones((3, 3, 2)))), "depth 2"),
        (lambda: plan(AnimationRequest(UFLDL, CROSS), max_frames=2), "max frames 2"),
        (
            lambda: plan(AnimationRequest(np.zeros((300, 4)), CROSS, region=(0, 0, 300, 4))),
            "at most 256",
        ),
        (lambda: plan(AnimationRequest(UFLDL, CROSS, region=(3, 3, 3, 3))), "region 3,3,3,3"),
        (
            lambda: plan(AnimationRequest(UFLDL, np.ones((2, 2, 2)), kind=AnimKind.POOL_MAX)),
            "window",
        ),
        (
            lambda: plan(AnimationRequest(UFLDL, CROSS, kind="blur")),  # type: ignore[arg-type]
            "kind 'blur' .*conv, pool-max",
        ),
    ],
)
def test_bad_values_raise_convcalc_errors(call: Any, message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        call()


# -- several channels and filters: the values apply computes -----------------------------

RNG = np.random.default_rng(15)


def _apply(x: Any, request: AnimationRequest) -> Any:
    """What `convcalc apply` computes for the request's layer."""
    from convcalc.calc.layers import Conv, Spec
    from convcalc.compute.pipeline import Settings, Stage, run

    kernels = request.kernel if isinstance(request.kernel, tuple) else (request.kernel,)
    layer = Conv(
        out=len(kernels),
        kernel=kernels[0].shape[:2],
        stride=request.stride or (1, 1),
        padding=request.padding,
    )
    stage = Stage(Spec(text="conv", layer=layer), tuple(kernels), request.bias)
    return run(x, [stage], Settings(channels=request.channels)).output


def _check_against_apply(request: AnimationRequest) -> None:
    p = plan(request, max_frames=2_000)
    expected = _apply(request.image, request)
    h, w, f = expected.shape
    assert p.right_slices == f and p.positions == h * w * f == len(p.steps)
    for step in p.steps:
        o, (r, c) = step.panel, step.position
        head = step.caption.split("\n")[0]
        found = re.fullmatch(r"out\[(\d+),(\d+),(\d+)\] \(.*\) = (.*) = (\S+)", head)
        assert found is not None, head
        assert tuple(map(int, found.groups()[:3])) == (r, c, o)
        assert float(found.group(5)) == pytest.approx(expected[r, c, o])
        assert p.right[r, c * 1 + o * (w + 1)] == expected[r, c, o]
        sums = [float(t.strip("()")) for t in found.group(4).replace("bias ", "").split(" + ")]
        assert sum(sums) == pytest.approx(expected[r, c, o])
        assert len(step.source) == len(step.weights) == 9 * len(p.sees[o])


def test_the_cs231n_layer_shows_what_apply_computes() -> None:
    w0 = RNG.integers(-1, 2, size=(3, 3, 3)).astype(float)
    w1 = RNG.integers(-1, 2, size=(3, 3, 3)).astype(float)
    request = AnimationRequest(CS231N, (w0, w1), stride=(2, 2), padding=(1, 1), bias=(1.0, 0.0))
    _check_against_apply(request)
    p = plan(request)
    assert p.left_slices == 3 and p.left.shape == (7, 23)
    assert p.steps[0].caption.count("\n") == 3  # the sum, then one line per channel
    assert "filter 0 (3x3x3, bias 1)" in p.steps[0].caption
    assert [s.panel for s in p.steps] == [0] * 9 + [1] * 9


@pytest.mark.parametrize("channels", list(ChannelMode))
def test_a_2d_kernel_on_colour_input_follows_channels(channels: ChannelMode) -> None:
    x = RNG.integers(0, 5, size=(5, 6, 3))
    request = AnimationRequest(x, (SOBEL.astype(float), CROSS.astype(float)), channels=channels)
    _check_against_apply(request)
    p = plan(request)
    if channels == ChannelMode.EACH:  # grouped: each output channel sees one input channel
        assert p.sees == ((0,), (1,), (2,)) * 2
        assert p.names[4] == "filter 1 on channel 1"
    else:
        assert p.sees == ((0, 1, 2),) * 2


def test_pooling_a_colour_input_pools_each_channel() -> None:
    x = RNG.integers(0, 9, size=(4, 4, 2))
    p = plan(AnimationRequest(x, (2, 2), kind=AnimKind.POOL_MAX))
    expected = ops.pool(x, PoolKind.MAX, (2, 2))
    np.testing.assert_array_equal(p.right[:, :2], expected[..., 0])
    np.testing.assert_array_equal(p.right[:, 3:], expected[..., 1])
    last = p.steps[-1]
    assert last.caption.startswith("out[1,1,1] = max(") and last.panel == 1
    assert last.caption.endswith(f"= {value_text(expected[1, 1, 1])}")


def test_a_large_input_animates_a_centre_crop_with_a_note() -> None:
    x = np.arange(100 * 90).reshape(100, 90)
    p = plan(AnimationRequest(x, CROSS))
    assert p.left_box[2:] == (8, 8)
    assert any("--region 46,41,8,8" in n for n in p.notes)
    np.testing.assert_array_equal(p.right, ops.correlate(x[46:54, 41:49], CROSS)[..., 0])
    chosen = plan(AnimationRequest(x, CROSS, region=(0, 0, 5, 4)))
    assert chosen.left.shape == (5, 4) and not chosen.notes


# -- a transposed convolution of several channels: what apply computes -------------------

SPAN = r"(-?\d+) to (-?\d+)(?: step (\d+))?"


def _deconv_apply(request: AnimationRequest) -> Any:
    """What `convcalc apply` computes for the request's transposed convolution."""
    from convcalc.calc.layers import Deconv, Spec
    from convcalc.compute.pipeline import Settings, Stage, run

    kernels = request.kernel if isinstance(request.kernel, tuple) else (request.kernel,)
    layer = Deconv(
        out=len(kernels),
        kernel=kernels[0].shape[:2],
        stride=request.stride or (1, 1),
        padding=request.padding,
        dilation=request.dilation,
        output_padding=request.output_padding,
    )
    stage = Stage(Spec(text="deconv", layer=layer), tuple(kernels), request.bias)
    return run(request.image, [stage], Settings(channels=request.channels)).output


def _rebuilt_from_captions(p: Any, shape: tuple[int, ...]) -> Any:
    """The output the captions describe: each output channel's bias, plus every
    caption's added matrix at the rows and columns it names (cropped ones dropped)."""
    h, w = shape[:2]
    out = np.zeros(shape)
    for step in p.steps:
        head, *rest = step.caption.split("\n")
        for line in rest:
            bias = re.fullmatch(r"  out\[:,:,(\d+)\] starts at its bias (\S+)", line)
            if bias is not None:
                out[:, :, int(bias.group(1))] += float(bias.group(2))
        found = re.fullmatch(
            rf"in\[(\d+),(\d+)(?:,\d+)?\] into out\[:,:,(\d+)\], rows {SPAN}, "
            rf"cols {SPAN} \(.*\)",
            head,
        )
        assert found is not None, head
        r, c, o = map(int, found.groups()[:3])
        assert (step.position, step.panel) == ((r, c), o)
        r0, _, rd, c0, _, cd = found.groups()[3:]
        added = re.fullmatch(r"  \+= .* = \[(.*)\]", rest[-1])
        assert added is not None, rest
        matrix = np.array([[float(v) for v in row.split()] for row in added.group(1).split("; ")])
        for (i, j), v in np.ndenumerate(matrix):
            a, b = int(r0) + i * int(rd or 1), int(c0) + j * int(cd or 1)
            if 0 <= a < h and 0 <= b < w:
                out[a, b, o] += v
    return out


def _check_transposed_against_apply(request: AnimationRequest) -> Any:
    p = plan(request, max_frames=2_000)
    expected = _deconv_apply(request)
    h, w, f = expected.shape
    x = np.asarray(request.image)
    assert p.right_slices == f and p.positions == x.shape[0] * x.shape[1] * f == len(p.steps)
    np.testing.assert_allclose(_rebuilt_from_captions(p, expected.shape), expected, atol=1e-9)
    top, left = p.right_box[:2]
    width = (p.right.shape[1] - f + 1) // f
    *_, (last, values, touched) = states(p)
    for o in range(f):
        at = o * (width + 1) + left
        np.testing.assert_array_equal(p.right[top : top + h, at : at + w], expected[..., o])
        np.testing.assert_allclose(values[top : top + h, at : at + w], expected[..., o])
    assert touched.any() and last.index == p.positions - 1
    return p


def test_a_transposed_filter_of_depth_c_sums_the_channels_and_adds_the_bias() -> None:
    w0 = RNG.integers(-1, 2, size=(3, 3, 3)).astype(float)
    w1 = RNG.integers(-1, 2, size=(3, 3, 3)).astype(float)
    request = AnimationRequest(
        CS231N,
        (w0, w1),
        kind=AnimKind.TRANSPOSED,
        stride=(2, 2),
        padding=(1, 1),
        bias=(1.0, -2.0),
    )
    p = _check_transposed_against_apply(request)
    assert p.sees == ((0, 1, 2),) * 2 and p.left.shape == (5, 17)
    first = p.steps[0]
    assert first.caption.split("\n")[1] == "  out[:,:,0] starts at its bias 1"
    assert "+= " + " + ".join(f"{v:g}·slice {c}" for c, v in enumerate(CS231N[0, 0])) in (
        first.caption
    )
    assert first.source == ((0, 0), (0, 6), (0, 12))  # the cell in every channel slice
    added = np.einsum("ijc,c->ij", w0, CS231N[0, 0])
    assert first.weights == tuple(added.ravel())
    assert [s.panel for s in p.steps] == [0] * 25 + [1] * 25
    assert "cropped" in p.final_caption and p.final_caption.startswith("the whole output: 9x9x2")


@pytest.mark.parametrize("channels", list(ChannelMode))
def test_a_transposed_2d_kernel_on_colour_input_follows_channels(channels: ChannelMode) -> None:
    x = RNG.integers(0, 4, size=(3, 4, 2))
    kernels = (np.array([[1.0, 2.0], [0.0, -1.0]]), np.ones((2, 2)))
    request = AnimationRequest(
        x, kernels, kind=AnimKind.TRANSPOSED, stride=(2, 1), dilation=(1, 2), channels=channels
    )
    p = _check_transposed_against_apply(request)
    if channels == ChannelMode.EACH:  # output channel f·C + c is filter f on channel c
        assert p.sees == ((0,), (1,)) * 2
        assert p.names[1] == "filter 0 on channel 1"
        assert p.steps[12].caption.startswith("in[0,0,1] into out[:,:,1], rows 0 to 1, cols 0 to 2")
    else:
        assert p.sees == ((0, 1),) * 2


def test_a_transposed_bias_on_one_channel_and_output_padding() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    request = AnimationRequest(
        x,
        np.array([[1.0, -1.0], [2.0, 0.0]]),
        kind=AnimKind.TRANSPOSED,
        stride=(2, 2),
        output_padding=(1, 1),
        bias=(0.5,),
    )
    p = _check_transposed_against_apply(request)
    assert p.right[-1, -1] == 0.5  # past the last kernel's reach: the bias alone
