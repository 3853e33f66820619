"""`backward_trace`: each traced gradient value equals `backward`'s, its terms add up."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convcalc.calc.choices import Activation, ChannelMode, PadMode
from convcalc.calc.layers import Conv, Deconv, Pointwise, Spec
from convcalc.compute.backward_traces import backward_trace, backward_trace_json
from convcalc.compute.gradients import backward
from convcalc.compute.pipeline import Settings, Stage
from convcalc.errors import ConvcalcError
from tests.conftest import CROSS, UFLDL


def conv(*kernels: Any, s: int = 1, p: int = 0, d: int = 1, **kw: Any) -> Stage:
    layer = Conv(None, None, (s,), (p,), (d,))
    return Stage(Spec("conv", layer), tuple(np.asarray(k, float) for k in kernels), **kw)


def assert_traced(x: Any, stage: Stage, settings: Settings, upstream: Any = None) -> None:
    """Every kernel tap and input cell traced: value = Σ products = convcalc's gradient."""
    xa = np.asarray(x)
    big = max(xa.shape[0] * xa.shape[1], 36)
    at = [(r, c) for r in range(xa.shape[0]) for c in range(xa.shape[1])]
    t = backward_trace(xa, [stage], settings, upstream, at=at, limit=big)
    want = backward(xa, [stage], settings, upstream)
    layer = want.layers[0]
    assert layer is not None
    seen = 0
    for step in t.steps:
        assert step.value == pytest.approx(float(np.sum(step.terms[:, 0] * step.terms[:, 1])))
        if step.grad == "kernel":
            assert step.filter is not None
            k = layer.kernels[step.filter]
            index = step.position if step.channel is None else (*step.position, step.channel)
            assert step.value == pytest.approx(float(k[index]), abs=1e-9)
        else:
            assert step.channel is not None
            cell = want.grad_input[(*step.position, step.channel)]
            assert step.value == pytest.approx(float(cell), abs=1e-9)
        seen += 1
    assert t.kernel_omitted == 0 and t.input_omitted == 0
    assert seen > 0


def test_ufldl_with_ones() -> None:
    t = backward_trace(UFLDL, [conv(CROSS)], Settings())
    first = t.steps[0]
    assert (first.grad, first.filter, first.position, first.value) == ("kernel", 0, (0, 0), 6)
    assert first.terms.tolist() == [[1, v] for v in UFLDL[:3, :3].ravel()]
    assert_traced(UFLDL, conv(CROSS), Settings())


@pytest.mark.parametrize(
    ("s", "p", "d", "mode"),
    [
        (1, 1, 1, PadMode.ZERO),
        (2, 1, 1, PadMode.ZERO),
        (1, 0, 2, PadMode.ZERO),
        (2, 2, 2, PadMode.ZERO),
        (1, 1, 1, PadMode.REFLECT),
        (1, 2, 1, PadMode.REPLICATE),
        (2, 1, 1, PadMode.WRAP),
    ],
)
def test_geometry_and_padding(s: int, p: int, d: int, mode: PadMode) -> None:
    rng = np.random.default_rng(s * 100 + p * 10 + d)
    x = rng.integers(-3, 4, (6, 7))
    k = rng.integers(-2, 3, (3, 2))
    stage = conv(k, s=s, p=p, d=d)
    y_shape = backward(x, [stage], Settings(pad_mode=mode)).output.shape
    upstream = rng.integers(-2, 3, y_shape)
    assert_traced(x, stage, Settings(pad_mode=mode), upstream)


def test_channels_filters_bias_flip_and_activation() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (5, 5, 3))
    w0, w1 = rng.integers(-1, 2, (3, 3, 3)), rng.integers(-1, 2, (3, 3, 3))
    stage = conv(w0, w1, s=2, p=1, bias=(1.0, 0.0), activation=Activation.RELU)
    assert_traced(x, stage, Settings())
    assert_traced(x, conv(w0, s=1, p=1), Settings(flip=True))


@pytest.mark.parametrize("mode", [ChannelMode.EACH, ChannelMode.SUM])
def test_a_2d_kernel_on_several_channels(mode: ChannelMode) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, (4, 5, 2))
    stage = conv([[1, 2], [3, 4]], [[0, -1], [1, 0]], p=1)
    assert_traced(x, stage, Settings(channels=mode))


def test_at_limit_and_json() -> None:
    t = backward_trace(UFLDL, [conv(CROSS)], Settings(), at=[(4, 4), (1, 2)], limit=5)
    kernel = [s.position for s in t.steps if s.grad == "kernel"]
    cells = [s.position for s in t.steps if s.grad == "input"]
    assert kernel == [(1, 2)] and cells == [(4, 4), (1, 2)]
    doc = backward_trace_json(backward_trace(UFLDL, [conv(CROSS)], Settings(), limit=1))
    assert doc["kernel_omitted"] == 8 and doc["input_omitted"] == 24
    assert doc["backward_steps"] == [
        {
            "grad": "kernel",
            "filter": 0,
            "position": [0, 0],
            "terms": [[1, v] for v in UFLDL[:3, :3].ravel().tolist()],
            "value": 6,
        },
        {"grad": "input", "channel": 0, "position": [0, 0], "terms": [[1, 1]], "value": 1},
    ]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"at": [(9, 9)]}, "outside both the 3x3 kernel and the 5x5 input"),
        ({"limit": 0}, "limit 0 is not valid"),
    ],
)
def test_refusals(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConvcalcError, match=message):
        backward_trace(UFLDL, [conv(CROSS)], Settings(), **kw)


def test_a_layer_without_traced_gradients_is_refused_naming_those_that_are() -> None:
    relu = Stage(Spec("relu", Pointwise("relu")))
    with pytest.raises(ConvcalcError, match=r"layer 2 is 'relu' .*--steps-layer 1 or 3"):
        backward_trace(UFLDL, [conv(CROSS), relu, conv(CROSS)], Settings(), layer=2)
    with pytest.raises(ConvcalcError, match="layer 4 is not valid; valid: 1 to 3"):
        backward_trace(UFLDL, [conv(CROSS), relu, conv(CROSS)], Settings(), layer=4)
    deconv = Stage(Spec("deconv:k=cross", Deconv(None, None)), (CROSS.astype(float),))
    with pytest.raises(ConvcalcError, match=r"got 'deconv:k=cross' .*drop --steps"):
        backward_trace(UFLDL, [deconv], Settings())
