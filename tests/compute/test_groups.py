"""Grouped convolution (``g=``, ``--groups``) in apply's pipeline, its gradients and steps.

The reference is the defining sum, filter by filter, with PyTorch's rule written out
here: filter f of F is in group g = f // (F/G) and reads input channels g·C/G + k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import ChannelMode, Method
from convcalc.calc.layers import Conv, Deconv, Spec
from convcalc.compute.backward_traces import backward_trace, backward_trace_json
from convcalc.compute.gradients import backward
from convcalc.compute.pipeline import (
    Settings,
    Stage,
    group_channels,
    group_text,
    kernel_bank,
    run,
)
from convcalc.compute.traces import trace, trace_json
from convcalc.errors import ConvcalcError

RNG = np.random.default_rng(15)


def grouped_stage(
    kernels: list[Any],
    groups: int,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    bias: tuple[float, ...] | None = None,
    rank: int = 2,
) -> Stage:
    layer = Conv(
        out=None,
        kernel=None,
        stride=(stride,),
        padding=(padding,),
        dilation=(dilation,),
        groups=groups,
        rank=rank,
    )
    return Stage(Spec(text=f"conv:k=…,g={groups}", layer=layer), tuple(kernels), bias)


def brute(
    x: Any,
    kernels: list[Any],
    groups: int,
    stride: int,
    padding: int,
    dilation: int,
    bias: tuple[float, ...] | None,
    g_out: Any = None,
) -> tuple[Any, Any, list[Any], list[float]]:
    """Output, dL/dX, dL/dW per filter and dL/db of a grouped layer (zero padding, any
    rank), one value at a time; ``g_out`` is dL/dY (all ones by default)."""
    *spatial, c = x.shape
    rank, f_count = len(spatial), len(kernels)
    cg, per_group = c // groups, f_count // groups
    xp = np.pad(x, [(padding, padding)] * rank + [(0, 0)])
    shape = [
        (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        for n, k in zip(spatial, kernels[0].shape[:rank], strict=True)
    ]
    y = np.zeros((*shape, f_count))
    g_out = np.ones_like(y) if g_out is None else g_out
    dxp, dw = np.zeros_like(xp, dtype=float), [np.zeros(k.shape) for k in kernels]
    for f, kernel in enumerate(kernels):
        w = kernel.reshape(*kernel.shape[:rank], cg)
        first = (f // per_group) * cg
        for o in np.ndindex(*shape):
            total = 0.0 if bias is None else bias[f]
            for t in np.ndindex(*w.shape[:rank]):
                at = tuple(i * stride + j * dilation for i, j in zip(o, t, strict=True))
                for k in range(cg):
                    total += xp[(*at, first + k)] * w[(*t, k)]
                    dw[f].reshape(w.shape)[(*t, k)] += g_out[(*o, f)] * xp[(*at, first + k)]
                    dxp[(*at, first + k)] += g_out[(*o, f)] * w[(*t, k)]
            y[(*o, f)] = total
    inner = tuple(slice(padding, padding + n) for n in spatial)
    db = [float(g_out[..., f].sum()) for f in range(f_count)]
    return y, dxp[inner], dw, db


CASES = [
    # rank, input shape, groups, filters, kernel taps, 2-D kernels when depth 1, s, p, d
    (2, (6, 7, 4), 2, 4, (3, 2), False, 2, 1, 1),
    (2, (5, 5, 6), 3, 3, (2, 2), False, 1, 0, 2),
    (2, (5, 6, 3), 3, 6, (3, 3), True, 1, 1, 1),  # depthwise with a multiplier of 2
    (1, (9, 4), 2, 2, (3,), False, 2, 2, 1),
    (3, (4, 5, 4, 4), 4, 4, (2, 3, 2), True, 1, 1, 1),
]


@pytest.mark.parametrize(
    ("rank", "shape", "groups", "filters", "taps", "flat", "s", "p", "d"), CASES
)
def test_a_grouped_layer_is_the_defining_sum_forward_and_backward(
    rank: int,
    shape: tuple[int, ...],
    groups: int,
    filters: int,
    taps: tuple[int, ...],
    flat: bool,
    s: int,
    p: int,
    d: int,
) -> None:
    x = RNG.integers(-3, 4, size=shape).astype(float)
    depth = shape[-1] // groups
    kshape = taps if flat and depth == 1 else (*taps, depth)
    kernels = [RNG.integers(-2, 3, size=kshape).astype(float) for _ in range(filters)]
    bias = tuple(float(v) for v in RNG.integers(-2, 3, size=filters))
    stage = grouped_stage(kernels, groups, stride=s, padding=p, dilation=d, bias=bias, rank=rank)
    settings = Settings(rank=rank)
    out = run(x, [stage], settings).output
    g_out = RNG.integers(-2, 3, size=out.shape).astype(float)
    y, dx, dw, db = brute(x, kernels, groups, s, p, d, bias, g_out)
    np.testing.assert_array_equal(out, y)
    grads = backward(x, [stage], settings, g_out)
    np.testing.assert_array_equal(grads.grad_input, dx)
    layer = grads.layers[0]
    assert layer is not None and layer.bias == tuple(db)
    for mine, theirs in zip(layer.kernels, dw, strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_array_equal(mine, theirs)


def test_each_step_shows_the_filters_group_and_equals_the_output() -> None:
    x = RNG.integers(0, 4, size=(4, 5, 4)).astype(float)
    kernels = [RNG.integers(-1, 2, size=(2, 2, 2)).astype(float) for _ in range(4)]
    stage = grouped_stage(kernels, 2, padding=1, bias=(1.0, 0.0, -1.0, 2.0))
    out = run(x, [stage], Settings()).output
    t = trace(x, [stage], Settings(), at=[(0, 0), (2, 3)])
    assert t.groups == 2 and len(t.steps) == 2 * 4
    for step in t.steps:
        assert [c.channel for c in step.channels] == list(group_channels(step.filter, 4, 4, 2))
        assert step.value == out[(*step.position, step.output_channel)]
        for part in step.channels:  # each channel's kernel is the filter's own slice
            slot = part.channel - 2 * (step.filter // 2)
            np.testing.assert_array_equal(part.kernel, kernels[step.filter][..., slot])
    doc = trace_json(t)
    assert doc["groups"] == 2
    assert [s["group"] for s in doc["steps"]] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_the_backward_steps_of_a_grouped_layer_add_up_to_its_gradients() -> None:
    x = RNG.integers(-2, 3, size=(4, 4, 6)).astype(float)
    kernels = [RNG.integers(-1, 2, size=(2, 2, 2)).astype(float) for _ in range(6)]
    stage = grouped_stage(kernels, 3, stride=2, padding=1)
    g_out = RNG.integers(-2, 3, size=(3, 3, 6)).astype(float)
    grads = backward(x, [stage], Settings(), g_out)
    t = backward_trace(x, [stage], Settings(), g_out, at=[(1, 1)])
    layer = grads.layers[0]
    assert t.groups == 3 and layer is not None
    for step in t.steps:
        assert step.value == float(np.sum(step.terms[:, 0] * step.terms[:, 1]))
        if step.grad == "kernel":
            assert step.filter is not None and step.channel is not None
            assert step.value == layer.kernels[step.filter][(*step.position, step.channel)]
        else:
            assert step.value == grads.grad_input[(*step.position, step.channel)]
    doc = backward_trace_json(t)
    kernel_steps = [s for s in doc["backward_steps"] if s["grad"] == "kernel"]
    assert [(s["filter"], s["group"], s["input_channel"]) for s in kernel_steps[:4]] == [
        (0, 0, 0),
        (0, 0, 1),
        (1, 0, 0),
        (1, 0, 1),
    ]
    assert [(s["filter"], s["input_channel"]) for s in kernel_steps[-2:]] == [(5, 4), (5, 5)]
    inputs = [s for s in doc["backward_steps"] if s["grad"] == "input"]
    assert [s["group"] for s in inputs] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("kernels", "channels", "groups", "message"),
    [
        (
            [np.ones((3, 3, 2))] * 4,
            3,
            2,
            "g=2 does not divide the input's 3 channels; valid: g= one of 1, 3",
        ),
        ([np.ones((3, 3, 2))] * 3, 4, 2, "g=2 needs a filter count divisible by 2 .*got 3 filters"),
        (
            [np.ones((3, 3))] * 2,
            4,
            2,
            "depth 1 does not fit g=2 on 4 channels: each filter sees 2; valid: KHxKWx2",
        ),
        ([np.ones((3, 3, 4))] * 2, 4, 2, "a kernel of depth 4 does not fit g=2"),
    ],
)
def test_a_grouped_bank_refuses_what_pytorch_refuses(
    kernels: list[Any], channels: int, groups: int, message: str
) -> None:
    with pytest.raises(ConvcalcError, match=message):
        kernel_bank(kernels, channels, ChannelMode.EACH, groups=groups)


def test_g_on_a_transposed_layer_is_refused_and_g1_is_the_ungrouped_layer() -> None:
    x = np.ones((4, 4, 2))
    layer = Deconv(out=None, kernel=None, groups=2)
    stage = Stage(Spec(text="deconv:k=box3,g=2", layer=layer), (np.ones((3, 3)),) * 2)
    with pytest.raises(ConvcalcError, match="g=2 on a transposed convolution is not run"):
        run(x, [stage], Settings())
    kernel = RNG.normal(size=(3, 3, 2))
    grouped = run(x, [grouped_stage([kernel], 1)], Settings()).output
    summed = run(x, [Stage(Spec(text="conv", layer=Conv(None, None)), (kernel,))], Settings())
    np.testing.assert_array_equal(grouped, summed.output)


def test_group_text_names_the_channels_a_filter_sees() -> None:
    assert group_text(3, 4, 4, 2) == "sees channels 2-3 (group 1)"
    assert group_text(1, 3, 3, 3) == "sees channel 1 (group 1)"


@pytest.mark.parametrize("method", list(Method))
def test_every_method_runs_a_grouped_layer_as_the_sum(method: Method) -> None:
    x = RNG.normal(size=(9, 8, 4))
    kernels = [RNG.normal(size=(3, 3, 2)) for _ in range(4)]
    y = run(x, [grouped_stage(kernels, 2, padding=1)], Settings(method=method)).output
    np.testing.assert_allclose(y, brute(x, kernels, 2, 1, 1, 1, None)[0], atol=1e-12)
