"""convcalc.present.frames: what the frames show, the sampling and the cap, bad requests."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import AnimKind, PadMode, PadRule, PoolKind
from convcalc.compute import ops
from convcalc.errors import ConvcalcError
from convcalc.present.frames import AnimationRequest, plan, states

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


def test_colour_input_animates_the_channel_mean() -> None:
    x = np.stack([UFLDL, UFLDL * 3, UFLDL * 2], axis=2)
    p = plan(AnimationRequest(x, CROSS))
    np.testing.assert_array_equal(p.right, 2 * ops.correlate(UFLDL, CROSS)[..., 0])
    assert any("3 channels" in n for n in p.notes)


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
        (lambda: plan(AnimationRequest(UFLDL, np.ones((3, 3, 2)))), "KHxKW"),
        (lambda: plan(AnimationRequest(UFLDL, CROSS), max_frames=2), "max frames 2"),
        (lambda: plan(AnimationRequest(np.zeros((300, 4)), CROSS)), "at most 256"),
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
